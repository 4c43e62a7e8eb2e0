"""What the organiser reads in Danish on the page of `hearing start`: the page's own words (``PAGE``, sent
to it as they are), why a recording cannot be used, why a field cannot be saved, and how a run ended.

Pure: values in, sentences out. Every message is a sentence the organiser can act on.
"""

from __future__ import annotations

import re

# The page's words, by the key the page asks for. Sent to the page as JSON; the page escapes nothing
# itself (it sets them as text, never as HTML).
PAGE: dict[str, str] = {
    "title": "Forbered mødet",
    "intro": (
        "Udfyld mødet, indlæggene og opfølgningen, og tryk på »Gem og start«. Alt gemmes i meeting.yaml i "
        "mødemappen; den forrige udgave gemmes ved siden af."
    ),
    "steps": "Trin",
    "step_meeting": "1. Mødet",
    "step_statements": "2. Indlæggene",
    "step_follow_up": "3. Opfølgning",
    "step_run": "4. Kør",
    "step_review": "5. Gennemsyn",
    "step_delivery": "6. Leverance",
    "meeting": "Mødet",
    "title_field": "Mødets titel",
    "date": "Mødets dato",
    "place": "Sted",
    "organiser": "Arrangør",
    "committee": "Udvalg, der får høringssvaret",
    "committee_meeting": "Dato for udvalgets møde",
    "date_hint": "Skriv datoen som år-måned-dag, fx 2026-11-24.",
    "statements": "Indlæggene",
    "statements_intro": (
        "Hver optagelse i mødemappen står her i den rækkefølge, den får i klippet. Sæt kun flueben ved "
        "et samtykke, som står på deltagerens samtykkeerklæring."
    ),
    "recording": "Optagelse",
    "length": "Længde",
    "sound_only": "Lydoptagelse (intet billede)",
    "still_of": "Afspil optagelsen",
    "usable": "Kan bruges.",
    "speaker": "Taler",
    "group": "Gruppe",
    "topic": "Emne",
    "consents": "Samtykke",
    "consent_committee": "Må vises for udvalget",
    "consent_archive": "Må arkiveres",
    "consent_name_on_screen": "Navnet må vises på skærmen",
    "consent_publish": "Må offentliggøres",
    "no_committee": "Uden samtykke til udvalget kommer optagelsen hverken med i klippet eller i udskriften.",
    "trim_in": "Start ved (sekunder)",
    "trim_out": "Slut ved (sekunder)",
    "trim_hint": "Lad felterne stå tomme for at bruge hele indlægget.",
    "move_up": "Flyt op",
    "move_down": "Flyt ned",
    "missing_file": (
        "Filen står i meeting.yaml, men findes ikke i mødemappen. Den fjernes fra meeting.yaml, når du "
        "gemmer; læg filen tilbage i mappen først, hvis den skal med."
    ),
    "follow_up": "Opfølgning",
    "contact": "Kontaktperson for deltagerne",
    "contact_name": "Navn",
    "contact_role": "Rolle",
    "contact_email": "E-mail",
    "contact_phone": "Telefon",
    "groups": "Grupper og netværk fra mødet",
    "group_name": "Gruppens navn",
    "coordinator": "Tovholder",
    "meets": "Hvor og hvornår gruppen mødes",
    "costs": "Udgifter",
    "costs_covered_by": "Hvem dækker udgifterne",
    "add_group": "Tilføj en gruppe",
    "remove_group": "Fjern gruppen",
    "agreements": "Aftaler",
    "who": "Hvem",
    "what": "Gør hvad",
    "by": "Senest (dato)",
    "add_agreement": "Tilføj en aftale",
    "remove_agreement": "Fjern aftalen",
    "next_meeting": "Næste borgermøde (dato)",
    "next_meeting_place": "Næste borgermødes sted",
    "save": "Gem meeting.yaml",
    "saving": "Gemmer …",
    "saved": "Gemt i meeting.yaml.",
    "saved_previous": "Gemt i meeting.yaml. Den forrige udgave ligger ved siden af som {name}.",
    "not_saved": "Ikke gemt: ret felterne, der er markeret, og gem igen.",
    "unsaved": "Der er ændringer, som ikke er gemt endnu.",
    "start": "Gem og start",
    "running": "Kører …",
    "time_left": "ca. {time} tilbage",
    "done_step": "færdig",
    "command_line": "Det samme fra kommandolinjen:",
    "review": "Gennemsyn",
    "review_intro": (
        "Læs og ret teksten til hvert indlæg, og godkend dem på gennemsynssiden. Lav derefter leverancen "
        "dér, og kom tilbage hertil."
    ),
    "open_review": "Åbn gennemsynssiden",
    "delivery": "Leverance",
    "delivery_intro": "Leverancen ligger i denne mappe:",
    "no_delivery": "Der er ingen leverance endnu: godkend alle indlæg på gennemsynssiden, og lav leverancen.",
    "open_folder": "Åbn mappen",
    "folder_opened": "Mappen er åbnet i filhåndteringen.",
    "folder_not_opened": "Mappen kunne ikke åbnes herfra; åbn den selv i filhåndteringen.",
    "make_zip": "Lav ZIP-fil til afsendelse",
    "zip_made": "ZIP-filen er lavet: {name}",
    "details": "Detaljer fra kørslen",
    "recordings_none": (
        "Der er ingen optagelser i mødemappen. Kopiér optagelserne ind i mappen, og genindlæs siden."
    ),
    "field_problem": "Ret dette felt:",
    "recordings_changed": (
        "Optagelserne i mødemappen er ændret, siden siden blev åbnet. Genindlæs siden for at se dem "
        "alle; det, du har skrevet her, er ikke gemt."
    ),
    "load_failed": "Siden kunne ikke hente mødet; genindlæs siden.",
    "conflict": (
        "meeting.yaml er ændret et andet sted, siden siden blev åbnet. Genindlæs siden for at se den "
        "gemte udgave; dine ændringer her gemmes ikke."
    ),
}

_RUN_ENDED = {
    0: "Leverancen er lavet.",
    5: "Leverancen er lavet, men nogle optagelser kom ikke med; se hvorfor ved hver optagelse.",
    6: "Kladden er lavet. Læs, ret og godkend hvert indlæg på gennemsynssiden.",
    1: "Kørslen stoppede. Læs detaljerne nedenfor, ret årsagen, og tryk på »Gem og start« igen.",
    2: "Kørslen kunne ikke starte: mødemappen eller leverancemappen kan ikke bruges. Se detaljerne.",
    3: "meeting.yaml eller formularen kan ikke bruges. Ret feltet, der står i detaljerne, og start igen.",
    4: (
        "En talemodel eller et værktøj mangler. Hent det med kommandoen i detaljerne, eller start "
        "siden med --model base, hvis den lille model er nok."
    ),
    130: "Kørslen blev afbrudt. Tryk på »Gem og start« igen for at fortsætte, hvor den slap.",
}


def run_ended(code: int) -> str:
    """How a run (or the ZIP's render) ended, for the organiser."""
    return _RUN_ENDED.get(code, _RUN_ENDED[1])


def duration(ms: int) -> str:
    """61500 -> "1 min 2 s"; 4200 -> "4 s"."""
    seconds = round(ms / 1000)
    minutes, seconds = divmod(seconds, 60)
    return f"{minutes} min {seconds} s" if minutes else f"{seconds} s"


# Why a recording cannot be used, as ingest says it (English, for the log and run.json), in Danish. The
# first pattern that matches names the reason; one nobody foresaw still gets a sentence to act on.
_REASONS: tuple[tuple[str, str], ...] = (
    (r"^no audio stream", "Optagelsen har ingen lyd. Et indlæg skal have lyd; brug en anden optagelse."),
    (r"^no audio or video stream", "Filen indeholder hverken lyd eller billede. Kopiér optagelsen igen."),
    (r"^too short", "Optagelsen er for kort (under et halvt sekund) til at rumme et indlæg."),
    (r"cannot be decoded", "Lyden i optagelsen kan ikke afspilles. Kopiér optagelsen igen fra telefonen."),
    (r"audio channels", "Optagelsen har for mange lydkanaler til at blive blandet til én lyd."),
    (r"sample rate", "Lydkvaliteten er for lav til tale. Brug en anden optagelse."),
    (r"link to a file outside", "Filen er en genvej til en fil uden for mødemappen. Kopiér selve filen ind."),
    (r"letters encoded in different ways", "To filer har samme navn, stavet på to måder. Omdøb den ene."),
    (r"folder that cannot be read", "En mappe kan ikke læses; optagelserne i den kommer ikke med."),
    (r"not valid UTF-8|not UTF-8|control character|too long", "Filnavnet kan ikke bruges. Omdøb filen."),
    (r"no consent to show it", "Uden samtykke til udvalget kommer optagelsen ikke med i klippet."),
    (
        r"not a (regular|ordinary) file|a folder|named pipe|socket|device|loop",
        "Det er ikke en almindelig fil.",
    ),
    (r"cannot be read", "Filen kan ikke læses. Kopiér den ind i mødemappen igen."),
    (r"holes|sparse|not been copied|incomplete", "Filen er ikke kopieret helt. Kopiér den igen."),
)
_SOME_REASON = "Optagelsen kan ikke bruges. Kopiér den igen, eller se grunden i kørslens rapport."


def unusable(reason: str) -> str:
    """Why ingest left a recording out, in Danish."""
    for pattern, sentence in _REASONS:
        if re.search(pattern, reason, re.IGNORECASE):
            return sentence
    return _SOME_REASON


def field_problem(kind: str, message: str, context: dict[str, object] | None = None) -> str:
    """Why the page cannot save a field (pydantic's error ``kind`` and English ``message``), in Danish."""
    context = context or {}
    message = message.removeprefix("Value error, ")
    if kind == "missing":
        return "Skal udfyldes, når resten af rækken er udfyldt."
    if kind.startswith("date") or kind == "datetime_from_date_parsing":
        return "Skriv datoen som år-måned-dag, fx 2026-11-24."
    if kind.startswith(("float", "int")) or kind in ("greater_than", "greater_than_equal"):
        return "Skriv et antal sekunder, 0 eller mere, fx 3,5."
    if "must be after" in message:
        return "Slut skal ligge efter start."
    if kind == "string_pattern_mismatch":
        return (
            "Skriv en e-mailadresse som navn@eksempel.dk."
            if "@" in str(context.get("pattern", ""))
            else ("Teksten har ikke den form, feltet kræver.")
        )
    if kind in ("string_too_short", "too_short") and isinstance(context.get("min_length"), int):
        return f"Skriv mindst {context.get('min_length', 1)} tegn."
    found = re.search(r"at most (\d+) are allowed", message)
    if found:
        return f"Teksten er for lang: højst {found[1]} tegn."
    if message.startswith("contains"):
        return "Teksten indeholder et usynligt tegn eller et styretegn. Skriv den igen i hånden."
    if "is empty" in message:
        return "Feltet er tomt; skriv noget eller lad det stå helt tomt."
    if kind == "too_long":
        return f"Der må højst være {context.get('max_length', '')} rækker her.".replace("  ", " ")
    return "Værdien kan ikke bruges her. Ret den."


def model_missing(command: str | None) -> str:
    """The form asks for a speech model fit for Danish, and none is installed."""
    get = (
        f"Hent den én gang med kommandoen {command}" if command else "Hent den én gang med hearing models get"
    )
    return (
        "Formularen beder om en talemodel, der passer til dansk, og den er ikke hentet på denne computer. "
        f"{get}, og start siden igen; eller start siden med --model base, hvis den lille model er nok."
    )


def existing_file_refused(name: str, field: str) -> str:
    """meeting.yaml in the folder is one the page cannot read: it is left as it is."""
    where = f" i feltet {field}" if field else ""
    return (
        f"{name} i mødemappen kan ikke læses{where}. Siden gemmer ikke ovenpå den, så intet går tabt: "
        f"ret filen i hånden (`hearing run --dry-run` viser fejlen), eller flyt den væk, og genindlæs siden."
    )
