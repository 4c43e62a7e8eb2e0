// hearing review: read, correct and approve every statement. Plain JavaScript, nothing from a network.
// Every change is sent to the local server as it is made; the server writes OUT/edits and answers with
// what the render will make of it: the rules each cue breaks and how a person's times were moved (one
// timing model and one set of rules, in the pipeline itself), the words still in doubt, and whether the
// approval still holds. Each save names the version it started from; one made over someone else's save
// is refused, and the person chooses.
"use strict";

// The session's token, which the server asks of every request: in a header of each call, and in the
// address of each recording and clip (a video element sends no header of its own).
const TOKEN = document.querySelector('meta[name="review-token"]').content;
const NUDGE_MS = 100;
const BACK_S = 3;
const SAVE_AFTER_MS = 500;
const RENDER_POLL_MS = 250; // bench/review_bench.py polls as often

const TEXT = {
  da: {
    title: "Gennemsyn indlæg", draft_clip: "Kladden (venter på godkendelse)", reviewer: "Godkendes af", find: "Find", replace_with: "Erstat med",
    replace_all: "Erstat alle", undo: "Fortryd", render: "Lav leverancen", new_clip: "Den nye leverance",
    keys: "Esc: afspil/pause · Alt+J: 3 s tilbage · Alt+↓/↑: langsommere/hurtigere · Alt+N/Alt+P: næste/forrige undertekst",
    speaker: "Taler", topic: "Emne", in: "Ind (s)", out: "Ud (s)", here: "her",
    statement: (n) => `Indlæg ${n}`, hidden_name: "navnet vises ikke i klippet", recording: "Optagelsen",
    approve_label: (label) => `Godkend ${label}`, cue_text: (label, k) => `${label}, undertekst ${k}`,
    play_from: (k) => `Afspil fra undertekst ${k}`, here_in: "Sæt ind-punktet, hvor afspilningen er nu",
    here_out: "Sæt ud-punktet, hvor afspilningen er nu", from_meeting: "tomt: værdien fra meeting.yaml",
    no_name: "Navnet vises ikke i klippet: der er ikke samtykke til navn på skærmen.",
    approved: "Godkendt", approve: "Jeg har læst og rettet teksten, og godkender den",
    not_approved: "ikke godkendt", void_again: "godkend igen",
    conflict: "Indlægget er gemt et andet sted (i en anden fane eller i filen), siden du åbnede det. Vælg hvilken udgave, der skal gælde.",
    mine: "Dine ændringer", theirs: "Den gemte udgave", keep_mine: "Behold mine", take_theirs: "Brug den gemte",
    only_mine: "kun hos dig", only_theirs: "kun i den gemte", same_text: "Teksten er den samme; felterne eller godkendelsen er forskellige.",
    fields_differ: (name, a, b) => `${name}: »${a || "–"}« / »${b || "–"}«`, blocked: "Leverancen kan ikke laves, før dette er rettet:",
    details: "detaljer", render_stopped: "Leverancen blev ikke lavet:",
    summary: (done, all, missing) => done === all ? `Alle ${all} indlæg er godkendt.`
      : `${done} af ${all} indlæg er godkendt. Mangler: ${missing}.`,
    more: (n) => ` og ${n} til`,
    split: "Del", merge: "Flet med næste", remove: "Slet", start: "start", end: "slut",
    no_cues: "Ingen undertekster: skriv teksten her.", add_cue: "Tilføj undertekst",
    saving: "Gemmer …", saved: "Gemt", save_failed: "Kunne ikke gemme: ",
    need_name: "Skriv først dit navn under “Godkendes af”.",
    replaced: (n) => `${n} erstatning${n === 1 ? "" : "er"}`,
    rendering: "Laver leverancen …", render_done: { 0: "Leveret.", 5: "Leveret; nogle optagelser er afvist.", 6: "Kladde: venter på godkendelse af alle indlæg." },
    render_failed: "Leverancen kunne ikke laves: ", speed: (r) => `hastighed ${r.toFixed(1)}×`,
    flags: { low_confidence: "usikre ord", repeated: "gentagelse", redecoded: "genlyttet", over_silence: "ord over stilhed", subtitle_credit: "mulig tekstnings-kredit" },
  },
  en: {
    title: "Review statements", draft_clip: "The draft (waiting for approval)", reviewer: "Approved by", find: "Find", replace_with: "Replace with",
    replace_all: "Replace all", undo: "Undo", render: "Make the delivery", new_clip: "The new delivery",
    keys: "Esc: play/pause · Alt+J: back 3 s · Alt+↓/↑: slower/faster · Alt+N/Alt+P: next/previous cue",
    speaker: "Speaker", topic: "Topic", in: "In (s)", out: "Out (s)", here: "here",
    statement: (n) => `Statement ${n}`, hidden_name: "the name is not shown in the clip", recording: "The recording",
    approve_label: (label) => `Approve ${label}`, cue_text: (label, k) => `${label}, subtitle ${k}`,
    play_from: (k) => `Play from subtitle ${k}`, here_in: "Set the in point where playback is now",
    here_out: "Set the out point where playback is now", from_meeting: "empty: the value in meeting.yaml",
    no_name: "The name is not shown in the clip: there is no consent to a name on screen.",
    approved: "Approved", approve: "I have read and corrected the text, and approve it",
    not_approved: "not approved", void_again: "approve again",
    conflict: "This statement was saved elsewhere (another tab, or its file) since you opened it. Choose which version stands.",
    mine: "Your changes", theirs: "The saved version", keep_mine: "Keep mine", take_theirs: "Use the saved one",
    only_mine: "only yours", only_theirs: "only in the saved one", same_text: "The text is the same; the fields or the approval differ.",
    fields_differ: (name, a, b) => `${name}: “${a || "–"}” / “${b || "–"}”`, blocked: "The delivery cannot be made until this is corrected:",
    details: "details", render_stopped: "The delivery was not made:",
    summary: (done, all, missing) => done === all ? `All ${all} statements are approved.`
      : `${done} of ${all} statements are approved. Still to approve: ${missing}.`,
    more: (n) => ` and ${n} more`,
    split: "Split", merge: "Merge with next", remove: "Delete", start: "start", end: "end",
    no_cues: "No subtitles: write the text here.", add_cue: "Add a cue",
    saving: "Saving …", saved: "Saved", save_failed: "Could not save: ",
    need_name: "First write your name under “Approved by”.",
    replaced: (n) => `${n} replacement${n === 1 ? "" : "s"}`,
    rendering: "Making the delivery …", render_done: { 0: "Delivered.", 5: "Delivered; some recordings were rejected.", 6: "A draft: waiting for every statement to be approved." },
    render_failed: "The delivery could not be made: ", speed: (r) => `speed ${r.toFixed(1)}×`,
    flags: { low_confidence: "doubtful words", repeated: "repetition", redecoded: "heard again", over_silence: "words over silence", subtitle_credit: "possible subtitle credit" },
  },
};
let T = TEXT.da;

const page = { statements: [], byId: new Map(), rules: {}, history: [], timers: new Map(), saving: new Map(), current: null };

// ------------------------------------------------------------------------------------------- server

class ApiError extends Error {
  constructor(message, status, data) {
    super(message);
    this.status = status;
    this.data = data;
  }
}

function withToken(path) {
  return `${path}${path.includes("?") ? "&" : "?"}token=${encodeURIComponent(TOKEN)}`;
}

async function api(method, path, body) {
  const response = await fetch(path, {
    method,
    headers: { "Content-Type": "application/json", "X-Review-Token": TOKEN },
    body: body === undefined ? undefined : JSON.stringify(body),
    keepalive: method === "POST",
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(data.error || response.statusText, response.status, data);
  return data;
}

function content(st) {
  return { cues: st.cues, speaker: st.speaker, topic: st.topic, in_ms: st.in_ms, out_ms: st.out_ms };
}

function saveSoon(st) {
  clearTimeout(page.timers.get(st.id));
  page.timers.set(st.id, setTimeout(() => save(st), SAVE_AFTER_MS));
  status(T.saving);
}

// The saves of one statement go one after another, each from the version the one before left: never
// two at once from the same version, which the server would rightly refuse.
function save(st, approval = "keep") {
  clearTimeout(page.timers.get(st.id));
  page.timers.delete(st.id);
  const send = async () => {
    if (st.conflict) return;
    const sent = snapshot(st);
    // Changed and changed back (a letter typed and taken away): nothing to write, so nothing written.
    if (approval === "keep" && sent === st.saved) {
      if (!page.timers.size) status(T.saved);
      return;
    }
    try {
      const fresh = await api("POST", `/api/statements/${encodeURIComponent(st.id)}`,
        { version: st.version, ...content(st), approval });
      st.saved = sent;
      adopt(st, fresh);
      if (!page.timers.size) status(T.saved);
    } catch (error) {
      if (error.status === 409 && error.data.current) showConflict(st, error.data.current, approval);
      else status(T.save_failed + error.message, true);
    }
  };
  const chain = (page.saving.get(st.id) || Promise.resolve()).then(send);
  page.saving.set(st.id, chain);
  return chain;
}

// What the server made of a save: the new version and everything it judged; the text stays as the
// person has it (they may have typed on while it was saved).
function adopt(st, fresh) {
  for (const name of ["version", "approval", "notes", "blocking", "flagged", "cut", "label"]) st[name] = fresh[name];
  showNotes(st);
  showHeading(st);
}

async function saveAll() {
  await Promise.all([...page.timers.keys()].map((id) => save(page.byId.get(id))));
  await Promise.all([...page.saving.values()]);
}

function status(text, error = false) {
  const node = document.getElementById("save-state");
  node.textContent = text;
  node.classList.toggle("error", error);
}

// ---------------------------------------------------------------------------------------- conflicts

function cueLine(cue) {
  return `${clock(cue.start_ms)}–${clock(cue.end_ms)} ${cue.text.replace(/\n/g, " ")}`;
}

function showConflict(st, current, approval) {
  st.conflict = current;
  const box = st.section.querySelector(".conflict");
  const mine = st.cues.map(cueLine);
  const theirs = current.cues.map(cueLine);
  const onlyMine = mine.filter((line) => !theirs.includes(line));
  const onlyTheirs = theirs.filter((line) => !mine.includes(line));
  const differences = el("ul", {});
  for (const line of onlyMine) differences.append(el("li", { class: "mine" }, `${T.only_mine}: ${line}`));
  for (const line of onlyTheirs) differences.append(el("li", { class: "theirs" }, `${T.only_theirs}: ${line}`));
  for (const [name, label] of [["speaker", T.speaker], ["topic", T.topic]]) {
    if ((st[name] || null) !== (current[name] || null)) differences.append(el("li", {}, T.fields_differ(label, st[name], current[name])));
  }
  for (const [name, label] of [["in_ms", T.in], ["out_ms", T.out]]) {
    if (st[name] !== current[name]) {
      const shown = (v) => (v === null || v === undefined ? "" : (v / 1000).toFixed(1));
      differences.append(el("li", {}, T.fields_differ(label, shown(st[name]), shown(current[name]))));
    }
  }
  if (!differences.childElementCount) differences.append(el("li", {}, T.same_text));
  box.replaceChildren(
    el("p", { role: "alert" }, T.conflict),
    differences,
    el("button", { type: "button", class: "keep-mine", onclick: () => {
      st.conflict = null;
      st.saved = null; // what is saved is theirs now: mine must be written over it
      st.version = current.version;
      box.replaceChildren();
      box.hidden = true;
      save(st, approval);
    } }, T.keep_mine),
    " ",
    el("button", { type: "button", class: "take-theirs", onclick: () => {
      st.conflict = null;
      Object.assign(st, current);
      st.saved = snapshot(st);
      box.replaceChildren();
      box.hidden = true;
      showStatement(st);
    } }, T.take_theirs),
  );
  box.hidden = false;
  status(T.save_failed + T.conflict, true);
}

// ------------------------------------------------------------------------------------------ history

function snapshot(st) {
  return JSON.stringify(content(st));
}

function remember(st) {
  const last = page.history[page.history.length - 1];
  const now = snapshot(st);
  if (!last || last.id !== st.id || last.state !== now) page.history.push({ id: st.id, state: now });
  if (page.history.length > 500) page.history.shift();
  document.getElementById("undo").disabled = false;
}

function undo() {
  const step = page.history.pop();
  document.getElementById("undo").disabled = !page.history.length;
  if (!step) return;
  const st = page.byId.get(step.id);
  Object.assign(st, JSON.parse(step.state));
  showStatement(st);
  save(st);
}

// ------------------------------------------------------------------------------------------ drawing

function clock(ms) {
  const s = Math.max(ms, 0) / 1000;
  const m = Math.floor(s / 60);
  return `${String(m).padStart(2, "0")}:${(s - 60 * m).toFixed(1).padStart(4, "0")}`;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (value !== null && value !== undefined && value !== false) node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children) node.append(child);
  return node;
}

function approved(st) {
  return Boolean(st.approval && st.approval.valid);
}

// How a statement is named on the page: its number in the clip and the speaker, where meeting.yaml or
// the organiser names one. The page is the organiser's own (this computer only, behind the session's
// token), and they wrote the name: it is shown here even without consent to a name on screen, marked
// so, because the organiser must know whose words they approve; the clip and the documents leave it out.
function speakerOf(st) {
  return shownValue(st, "speaker");
}

function headingText(st) {
  if (!st.meeting) return st.label; // a statement whose files cannot be read
  const who = speakerOf(st);
  return who ? `${T.statement(st.number)}: ${who}` : T.statement(st.number);
}

// A field shows what the render will use: the person's value (edits/), else meeting.yaml's. An empty
// field, or meeting.yaml's own value typed back, means "as in meeting.yaml" (null in edits/), as an
// empty field always has; only a value that differs from the one shown is a change worth saving.
function shownValue(st, name) {
  const own = st[name];
  if (own !== null && own !== undefined) return own;
  const meeting = st.meeting[name];
  return meeting === undefined ? null : meeting;
}

function tidy(text) {
  return (text || "").normalize("NFC").split(/\s+/).filter(Boolean).join(" ");
}

function fieldValue(st, name) {
  const value = shownValue(st, name);
  if (name === "in_ms" || name === "out_ms") return value === null ? "" : String(value / 1000);
  return value || "";
}

// What a field's new value means for the statement's own value: unchanged, back to meeting.yaml's
// (null), or the person's. ``same`` compares two values of the field.
function fieldAfter(st, name, typed, same) {
  if (same(typed, shownValue(st, name))) return st[name];
  if (typed === null || same(typed, st.meeting[name])) return null;
  return typed;
}

function buildStatement(st) {
  const section = el("section", { class: "statement", id: `st-${st.id}`, "data-id": st.id });
  section.append(el("h2", {}, el("span", { class: "label" }), el("span", { class: "speaker", translate: "no" }),
    el("span", { class: "hidden-name" }), el("span", { class: "file", translate: "no" }, st.file),
    el("span", { class: "state" })));
  // A recording without a picture gets a sound player: no black box the height of a video.
  const video = el(st.has_video ? "video" : "audio", { src: withToken(`/media/${encodeURIComponent(st.id)}`), controls: true, preload: "metadata", "aria-label": `${T.recording}: ${headingText(st)}` });
  video.addEventListener("timeupdate", () => highlight(st));
  video.addEventListener("play", () => { page.current = st; });
  const field = (label, name) => {
    const id = `${name}-${st.id}`;
    const input = el("input", { id, name, value: fieldValue(st, name), title: T.from_meeting, translate: "no" });
    const same = (a, b) => tidy(a) === tidy(b);
    input.addEventListener("input", () => {
      const typed = tidy(input.value) || null;
      const next = fieldAfter(st, name, typed, same);
      if (next === st[name]) return; // nothing changed: nothing to save
      remember(st);
      st[name] = next;
      showHeading(st);
      saveSoon(st);
    });
    // Emptied, the field shows again what it now means: meeting.yaml's value.
    input.addEventListener("change", () => { if (!tidy(input.value)) input.value = fieldValue(st, name); });
    return [el("label", { for: id }, label), input];
  };
  const trimInput = (label, name, hereTitle) => {
    const id = `${name}-${st.id}`;
    const input = el("input", {
      id, name, type: "number", step: "0.1", min: "0", max: String(st.duration_ms / 1000),
      value: fieldValue(st, name), title: T.from_meeting,
    });
    const same = (a, b) => (a === null || a === undefined ? null : a) === (b === null || b === undefined ? null : b);
    const apply = () => {
      const seconds = parseFloat(input.value);
      const typed = Number.isFinite(seconds) ? Math.round(seconds * 1000) : null;
      const next = fieldAfter(st, name, typed, same);
      if (next !== st[name]) {
        remember(st);
        st[name] = next;
        saveSoon(st);
      }
      // Emptied, the field shows again what it now means: meeting.yaml's point, if it has one.
      if (typed === null) input.value = fieldValue(st, name);
    };
    input.addEventListener("change", apply);
    const here = el("button", { type: "button", title: hereTitle, "aria-label": `${T.here}: ${hereTitle}`, onclick: () => {
      input.value = video.currentTime.toFixed(1);
      apply();
    } }, T.here);
    return [el("label", { for: id }, label), el("span", { class: "trim" }, input, here)];
  };
  const fields = el("div", { class: "fields" },
    ...field(T.speaker, "speaker"),
    ...(st.name_on_screen ? [] : [el("p", { class: "note" }, T.no_name)]),
    ...field(T.topic, "topic"),
    ...trimInput(T.in, "in_ms", T.here_in),
    ...trimInput(T.out, "out_ms", T.here_out));
  const tick = el("input", { type: "checkbox", class: "approved", checked: approved(st) });
  tick.addEventListener("change", () => {
    const who = document.getElementById("reviewer").value.trim();
    if (tick.checked && !who) {
      tick.checked = false;
      status(T.need_name, true);
      document.getElementById("reviewer").focus();
      return;
    }
    st.approval = tick.checked ? { by: who, at: null, valid: true, text: `${T.approved}: ${who}` } : null;
    showHeading(st);
    save(st, tick.checked ? { by: who } : false);
  });
  const player = el("div", { class: "player" }, video, fields, el("label", { class: "approve" }, tick, T.approve));
  const side = el("div", { class: "side" },
    el("div", { class: "conflict", hidden: true }),
    el("div", { class: "blocking", hidden: true }),
    el("ol", { class: "cues" }));
  section.append(player, side);
  st.video = video;
  st.section = section;
  return section;
}

// A statement whose files were edited by hand and cannot be read: why, and nothing to save over them.
function buildUnreadable(st) {
  const section = el("section", { class: "statement readonly", id: `st-${st.id}`, "data-id": st.id });
  section.append(el("h2", {}, el("span", { class: "label" }, st.label), el("span", { class: "file", translate: "no" }, st.file)),
    el("div", { class: "blocking" }, el("p", { role: "alert" }, T.blocked), el("ul", {}, ...st.blocking.map((text) => el("li", {}, text)))));
  st.section = section;
  st.cues = [];
  return section;
}

function showStatement(st) {
  showCues(st);
  showHeading(st);
  for (const name of ["speaker", "topic", "in_ms", "out_ms"]) {
    st.section.querySelector(`input[name="${name}"]`).value = fieldValue(st, name);
  }
}

function showHeading(st) {
  const who = speakerOf(st);
  st.section.querySelector("h2 .label").textContent = who ? `${T.statement(st.number)}:` : T.statement(st.number);
  st.section.querySelector("h2 .speaker").textContent = who || "";
  st.section.querySelector("h2 .hidden-name").textContent = who && !st.name_on_screen ? `(${T.hidden_name})` : "";
  const state = st.section.querySelector("h2 .state");
  const isVoid = Boolean(st.approval && !st.approval.valid);
  state.textContent = !st.approval ? T.not_approved : isVoid ? `${st.approval.text} · ${T.void_again}` : st.approval.text;
  st.section.classList.toggle("approved", approved(st));
  st.section.classList.toggle("void", isVoid);
  st.section.querySelector("input.approved").checked = approved(st);
  showSummary();
}

function showSummary() {
  const all = page.statements.length;
  if (!document.getElementById("toc")) return;
  const open = page.statements.filter((s) => !approved(s));
  const shown = open.slice(0, 3).map(headingText).join(", ") + (open.length > 3 ? T.more(open.length - 3) : "");
  const summary = document.getElementById("summary");
  summary.textContent = T.summary(all - open.length, all, shown);
  summary.classList.toggle("done", !open.length);
  // The strip of statements: where each one is, and which are still to approve.
  const toc = document.getElementById("toc");
  if (toc.childElementCount !== all) {
    toc.replaceChildren(...page.statements.map((s) => el("a", { href: `#st-${s.id}`, title: headingText(s) }, String(s.number || ""))));
  }
  page.statements.forEach((s, n) => toc.children[n].classList.toggle("approved", approved(s)));
}

function showCues(st) {
  const list = st.section.querySelector(".cues");
  list.replaceChildren();
  if (!st.cues.length) {
    list.append(el("li", { class: "empty" }, T.no_cues, " ",
      el("button", { type: "button", onclick: () => {
        remember(st);
        st.cues.push({ start_ms: 0, end_ms: Math.min(st.duration_ms, 3000), text: "" });
        showCues(st);
        saveSoon(st);
      } }, T.add_cue)));
  } else {
    st.cues.forEach((cue, k) => list.append(buildCue(st, cue, k)));
  }
  showNotes(st);
}

function buildCue(st, cue, k) {
  const text = el("textarea", { rows: String(Math.max(2, cue.text.split("\n").length)), spellcheck: "true", lang: page.language, "aria-label": T.cue_text(headingText(st), k + 1) });
  text.value = cue.text;
  text.addEventListener("focus", () => { page.current = st; page.focused = k; remember(st); });
  text.addEventListener("input", () => {
    cue.text = text.value;
    saveSoon(st);
  });
  const time = el("button", { type: "button", class: "time", title: T.play_from(k + 1), onclick: () => playFrom(st, k) },
    `${clock(cue.start_ms)}–${clock(cue.end_ms)}`);
  const nudge = (edge, by) => () => {
    remember(st);
    const limit = edge === "start_ms" ? [0, cue.end_ms - 1] : [cue.start_ms + 1, st.duration_ms + 60000];
    cue[edge] = Math.min(Math.max(cue[edge] + by, limit[0]), limit[1]);
    time.textContent = `${clock(cue.start_ms)}–${clock(cue.end_ms)}`;
    saveSoon(st);
  };
  const button = (label, title, action) => el("button", { type: "button", title, onclick: action }, label);
  const bar = el("div", { class: "bar" }, time,
    el("span", { class: "edge" }, T.start, button("−", `${T.start} −0,1 s`, nudge("start_ms", -NUDGE_MS)),
      button("+", `${T.start} +0,1 s`, nudge("start_ms", NUDGE_MS))),
    el("span", { class: "edge" }, T.end, button("−", `${T.end} −0,1 s`, nudge("end_ms", -NUDGE_MS)),
      button("+", `${T.end} +0,1 s`, nudge("end_ms", NUDGE_MS))),
    button(T.split, T.split, () => split(st, k, text.selectionStart)),
    ...(k + 1 < st.cues.length ? [button(T.merge, T.merge, () => merge(st, k))] : []),
    button(T.remove, T.remove, () => { remember(st); st.cues.splice(k, 1); showCues(st); saveSoon(st); }));
  return el("li", { class: "cue", "data-k": String(k) }, bar, text, el("div", { class: "flags" }), el("div", { class: "problems" }));
}

// What the render makes of each cue, as the server judged the last save: the rules it breaks, how a
// person's times were moved, and the words still in doubt. And what would stop the render.
function showNotes(st) {
  const items = st.section.querySelectorAll(".cue");
  items.forEach((item, k) => {
    const cue = st.cues[k];
    const notes = (st.notes || []).filter((n) => n.cue === k);
    item.querySelector(".problems").replaceChildren(...notes.map((n) =>
      el("div", { class: `${n.severity} ${n.kind}`, "data-rule": n.rule || n.kind }, n.text)));
    item.classList.toggle("broken", notes.some((n) => n.severity === "fail"));
    const flags = item.querySelector(".flags");
    const words = cue ? (st.flagged || []).filter((w) => (w.start_ms + w.end_ms) / 2 >= cue.start_ms && (w.start_ms + w.end_ms) / 2 < cue.end_ms) : [];
    if (words.length) {
      const kinds = [...new Set(words.flatMap((w) => w.flags))].map((f) => T.flags[f] || f);
      flags.replaceChildren(`⚑ ${kinds.join(", ")}: `, el("span", { translate: "no" }, words.map((w) => w.text).join(" ")));
    } else {
      flags.replaceChildren();
    }
  });
  const box = st.section.querySelector(".blocking");
  const blocking = st.blocking || [];
  box.hidden = !blocking.length;
  box.replaceChildren(...(blocking.length ? [el("p", { role: "alert" }, T.blocked), el("ul", {}, ...blocking.map((text) => el("li", {}, text)))] : []));
}

// ------------------------------------------------------------------------------------------ editing

function split(st, k, at) {
  const cue = st.cues[k];
  const text = cue.text;
  const cut = Math.max(1, Math.min(at || Math.floor(text.length / 2), text.length - 1));
  const gap = page.rules.min_gap_ms || 80;
  const middle = Math.round(cue.start_ms + ((cue.end_ms - cue.start_ms) * cut) / Math.max(text.length, 1));
  remember(st);
  const first = { start_ms: cue.start_ms, end_ms: Math.max(cue.start_ms + 1, middle - Math.floor(gap / 2)), text: text.slice(0, cut).trim() };
  const second = { start_ms: Math.min(cue.end_ms - 1, first.end_ms + gap), end_ms: cue.end_ms, text: text.slice(cut).trim() };
  st.cues.splice(k, 1, first, second);
  showCues(st);
  saveSoon(st);
}

function merge(st, k) {
  const [a, b] = [st.cues[k], st.cues[k + 1]];
  remember(st);
  st.cues.splice(k, 2, { start_ms: a.start_ms, end_ms: b.end_ms, text: `${a.text.replace(/\n/g, " ")} ${b.text.replace(/\n/g, " ")}`.trim() });
  showCues(st);
  saveSoon(st);
}

function replaceAll() {
  const find = document.getElementById("find").value;
  const by = document.getElementById("replace").value;
  if (!find) return;
  let count = 0;
  for (const st of page.statements) {
    let changed = false;
    const before = snapshot(st);
    for (const cue of st.cues) {
      const parts = cue.text.split(find);
      if (parts.length > 1) {
        count += parts.length - 1;
        cue.text = parts.join(by);
        changed = true;
      }
    }
    if (changed) {
      page.history.push({ id: st.id, state: before });
      document.getElementById("undo").disabled = false;
      showCues(st);
      save(st);
    }
  }
  status(T.replaced(count));
}

// ---------------------------------------------------------------------------------------- listening

function playFrom(st, k) {
  page.current = st;
  page.focused = k;
  st.video.currentTime = st.cues[k].start_ms / 1000;
  st.video.play().catch(() => {});
}

function highlight(st) {
  const ms = st.video.currentTime * 1000;
  const k = st.cues.findIndex((c) => c.start_ms <= ms && ms < c.end_ms);
  const list = st.section.querySelector(".cues");
  list.querySelectorAll(".cue.now").forEach((item) => { if (Number(item.dataset.k) !== k) item.classList.remove("now"); });
  if (k < 0) return;
  const item = list.querySelector(`.cue[data-k="${k}"]`);
  if (item && !item.classList.contains("now")) {
    item.classList.add("now");
    // Into view inside the list only: the page itself stays where the person is typing.
    const top = item.offsetTop - list.offsetTop;
    if (top < list.scrollTop || top + item.offsetHeight > list.scrollTop + list.clientHeight) {
      list.scrollTop = Math.max(0, top - list.clientHeight / 3);
    }
  }
}

function currentStatement() {
  const section = document.activeElement && document.activeElement.closest ? document.activeElement.closest(".statement") : null;
  if (section) return page.byId.get(section.dataset.id);
  return page.current || page.statements[0];
}

function keys(event) {
  const st = currentStatement();
  if (!st || !st.video) return;
  const video = st.video;
  const key = event.key.toLowerCase();
  if (event.key === "Escape") {
    if (video.paused) video.play().catch(() => {}); else video.pause();
  } else if (event.altKey && key === "j") {
    video.currentTime = Math.max(0, video.currentTime - BACK_S);
  } else if (event.altKey && (event.key === "ArrowDown" || event.key === "ArrowUp")) {
    const rate = Math.min(2, Math.max(0.5, video.playbackRate + (event.key === "ArrowUp" ? 0.1 : -0.1)));
    video.playbackRate = Math.round(rate * 10) / 10;
    status(T.speed(video.playbackRate));
  } else if (event.altKey && (key === "n" || key === "p")) {
    const from = page.focused === undefined ? -1 : page.focused;
    const k = Math.min(Math.max(from + (key === "n" ? 1 : -1), 0), st.cues.length - 1);
    const text = st.section.querySelector(`.cue[data-k="${k}"] textarea`);
    if (text) text.focus();
    page.focused = k;
    if (st.cues[k]) video.currentTime = st.cues[k].start_ms / 1000;
  } else if ((event.ctrlKey || event.metaKey) && key === "z" && !/^(TEXTAREA|INPUT)$/.test(document.activeElement.tagName)) {
    undo();
  } else {
    return;
  }
  event.preventDefault();
}

// ------------------------------------------------------------------------------------------- render

function showRenderFailure(shown, job) {
  shown.classList.add("error");
  const problems = job.problems && job.problems.length ? job.problems : [job.error || job.last || ""];
  shown.replaceChildren(
    el("span", {}, T.render_stopped),
    el("ul", { class: "render-problems" }, ...problems.filter(Boolean).map((text) => el("li", {}, text))),
    el("details", {}, el("summary", {}, T.details), el("pre", {}, (job.lines || []).join("\n"))),
  );
}

async function render() {
  const button = document.getElementById("render");
  const shown = document.getElementById("render-state");
  button.disabled = true;
  shown.classList.remove("error");
  shown.textContent = T.rendering;
  try {
    await saveAll();
    let job = await api("POST", "/api/render", {});
    while (job.state === "running") {
      shown.textContent = `${T.rendering} ${job.last}`;
      await new Promise((resolve) => setTimeout(resolve, RENDER_POLL_MS));
      job = await api("GET", "/api/render");
    }
    if (job.state === "done") {
      shown.textContent = T.render_done[job.exit_code] || T.render_done[0];
      const clip = document.getElementById("clip");
      clip.hidden = false;
      clip.querySelector("h2").textContent = job.exit_code === 6 ? T.draft_clip : T.new_clip;
      document.getElementById("clip-video").src = withToken(`/clip?made=${Date.now()}`);
      document.body.dataset.rendered = String(job.exit_code);
    } else {
      showRenderFailure(shown, job);
      document.body.dataset.rendered = "failed";
    }
  } catch (error) {
    shown.classList.add("error");
    shown.textContent = T.render_failed + error.message;
  } finally {
    button.disabled = false;
  }
}

// --------------------------------------------------------------------------------------------- start

async function start() {
  const data = await api("GET", "/api/state");
  T = data.language === "da" ? TEXT.da : TEXT.en;
  page.language = data.language;
  document.documentElement.lang = data.language;
  document.title = `${T.title}: ${data.meeting.title}`;
  document.querySelectorAll("[data-t]").forEach((node) => { node.textContent = T[node.dataset.t]; });
  document.querySelectorAll("[data-tp]").forEach((node) => {
    node.placeholder = T[node.dataset.tp];
    node.setAttribute("aria-label", T[node.dataset.tp]);
  });
  document.getElementById("meeting-title").textContent = [data.meeting.title, data.meeting.date].filter(Boolean).join(", ");
  page.rules = data.rules;
  page.statements = data.statements;
  const main = document.getElementById("statements");
  data.statements.forEach((st) => {
    page.byId.set(st.id, st);
    if (st.readonly) {
      main.append(buildUnreadable(st));
      return;
    }
    st.saved = snapshot(st); // what the files hold: a save of the same is no change
    main.append(buildStatement(st));
    showStatement(st);
  });
  const reviewer = document.getElementById("reviewer");
  reviewer.value = localStorage.getItem("hearing-reviewer") || "";
  reviewer.addEventListener("input", () => localStorage.setItem("hearing-reviewer", reviewer.value.trim()));
  if (data.clip) {
    document.getElementById("clip").hidden = false;
    document.getElementById("clip-video").src = withToken("/clip");
    if (data.clip_is_draft) document.querySelector("#clip h2").textContent = T.draft_clip;
  }
  document.getElementById("replace-all").addEventListener("click", replaceAll);
  document.getElementById("undo").addEventListener("click", undo);
  document.getElementById("render").addEventListener("click", render);
  document.addEventListener("keydown", keys);
  window.addEventListener("beforeunload", () => { for (const id of page.timers.keys()) save(page.byId.get(id)); });
  document.body.dataset.ready = "true";
}

start().catch((error) => status(error.message, true));
