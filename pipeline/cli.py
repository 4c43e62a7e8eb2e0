"""The command line: parse, call the runner, map errors to exit codes. Nothing else: what it shows (log
lines, progress bars, summaries, JSON, error lines) is drawn by ``pipeline.console``."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from pipeline import __version__
from pipeline.console import (
    DownloadBar,
    RichProgress,
    demo_meeting_dir,
    echo_json,
    fail,
    ffmpeg_row,
    guarded,
    licence_text,
    models_text,
    print_plan,
    setup_logging,
    summary,
)
from pipeline.errors import PipelineError

ENGINE_CHOICES = ("faster-whisper", "openai-whisper")
DEVICE_CHOICES = ("auto", "cpu", "cuda")  # pipeline.engines.device.DEVICES, without importing it


def _device_option(help_text: str) -> Any:
    # No envvar here: HEARING_DEVICE is read (and checked) where the run resolves its device, so that a
    # render and a dry run read it the same way.
    return click.option("--device", type=click.Choice(DEVICE_CHOICES), default=None, help=help_text)


DEVICE_HELP = (
    "Where faster-whisper runs: auto (a CUDA GPU in float16 where one is found, else the CPU in int8), "
    "cpu or cuda [default: HEARING_DEVICE, else auto]."
)


def _run_meeting(options: Any, as_json: bool, quiet: bool, verbose: int, traceback: bool) -> None:
    console = setup_logging(verbose, quiet)

    def action() -> int:
        from pipeline.runner import Runner

        progress = None if quiet or not console.is_terminal else RichProgress(console)
        runner = Runner(options, progress)
        try:
            if progress is None:
                report = runner.run()
            else:
                with progress:
                    report = runner.run()
        except (Exception, KeyboardInterrupt):
            # Why each recording was left out explains a failure like "nothing to deliver"; the report
            # printed says the exit code the process ends with (the runner set it from the error).
            summary(runner.report, quiet=True)
            if as_json:
                echo_json(runner.report.to_json())
            raise
        if as_json:
            echo_json(report.to_json())
        elif options.dry_run:
            print_plan(report)
        summary(report, quiet)
        return int(report.exit_code)

    guarded(action, traceback, verbose)


def _common(func: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--json", "as_json", is_flag=True, help="Print the run report as JSON on stdout."),
        click.option("--quiet", "-q", is_flag=True, help="No progress bars, no summary; errors only."),
        click.option("--verbose", "-v", count=True, help="More log lines on stderr (-vv: every command)."),
        click.option("--traceback", is_flag=True, help="Show the Python traceback of an error."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hearing")
def main() -> None:
    """hearing-pipeline: from the video statements of a citizen meeting to the agreed consultation response.

    The meeting folder is only ever read. Everything is written to the output folder.
    """
    from pipeline.memory import keep_engine_memory

    keep_engine_memory()  # before the command starts a thread


ZIP_HELP = "Also pack the delivery into OUT_DIR/<name>.zip, for sending."


def _meeting_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """MEETING_DIR and what a run of it is made with: shared by `run` and `watch`."""
    options = [
        click.argument("meeting_dir", type=click.Path(exists=True, file_okay=False, path_type=Path)),
        click.option(
            "--form",
            "form",
            default="default",
            show_default=True,
            help="The agreed form: a YAML file, or a built-in form (default, demo).",
        ),
        click.option(
            "--out",
            "out_dir",
            type=click.Path(file_okay=False, path_type=Path),
            help="Output folder [default: MEETING_DIR/../<meeting-name>-output].",
        ),
        click.option(
            "--engine", type=click.Choice(ENGINE_CHOICES), default="faster-whisper", show_default=True
        ),
        click.option(
            "--model",
            help="Model name (base, small, large-v3, ...) or a local path [default: embedded base].",
        ),
        click.option("--language", help="Spoken language, e.g. da [default: meeting.yaml, then the form]."),
        _device_option(DEVICE_HELP),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@main.command("run")
@_meeting_options
@click.option("--dry-run", is_flag=True, help="Validate and print the plan; write nothing.")
@click.option("--zip", "as_zip", is_flag=True, help=ZIP_HELP)
@_common
def run_command(
    meeting_dir: Path,
    form: str,
    out_dir: Path | None,
    engine: str,
    model: str | None,
    language: str | None,
    device: str | None,
    dry_run: bool,
    as_zip: bool,
    as_json: bool,
    quiet: bool,
    verbose: int,
    traceback: bool,
) -> None:
    """Turn the recordings in MEETING_DIR into the delivery."""
    from pipeline.report import RunOptions

    options = RunOptions(
        meeting_dir=meeting_dir,
        out_dir=out_dir,
        form=form,
        engine=engine,
        model=model,
        language=language,
        device=device,
        dry_run=dry_run,
        zip=as_zip,
    )
    _run_meeting(options, as_json, quiet, verbose, traceback)


@main.command("render")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Print the plan of the re-render; write nothing.")
@click.option("--zip", "as_zip", is_flag=True, help=ZIP_HELP)
@_device_option(
    "Where faster-whisper runs when corrected words must be aligned: auto, cpu or cuda [default: as the "
    "run was asked]."
)
@_common
def render_command(
    out_dir: Path,
    dry_run: bool,
    as_zip: bool,
    device: str | None,
    as_json: bool,
    quiet: bool,
    verbose: int,
    traceback: bool,
) -> None:
    """Make the delivery in OUT_DIR again from the corrections and approvals in OUT_DIR/edits.

    Runs what `hearing run` ran there, with the same meeting folder, form, engine and model; only what
    the corrections change is made again (nothing is transcribed again)."""
    from pipeline.report import options_of_earlier_run

    setup_logging(verbose, quiet)
    try:
        earlier = dataclasses.replace(options_of_earlier_run(out_dir, dry_run=dry_run), zip=as_zip)
        if device is not None:
            earlier = dataclasses.replace(earlier, device=device)
    except PipelineError as error:
        fail(error, traceback, verbose)
    _run_meeting(earlier, as_json, quiet, verbose, traceback)


@main.command("withdraw")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.argument("statement")
@click.option("--reason", required=True, help="Why (kept in OUT_DIR/withdrawn.json and the archive).")
@click.option(
    "--from-archive", is_flag=True, help="Also take the recording's bytes out of the archive (a new bag)."
)
@click.option("--zip", "as_zip", is_flag=True, help=ZIP_HELP)
@_common
def withdraw_command(
    out_dir: Path,
    statement: str,
    reason: str,
    from_archive: bool,
    as_zip: bool,
    as_json: bool,
    quiet: bool,
    verbose: int,
    traceback: bool,
) -> None:
    """Take STATEMENT out of the delivery in OUT_DIR: a person withdrew their consent.

    STATEMENT is its id in the delivery (s02, as the page and the transcript number them) or its
    recording's path in the meeting folder. The statement leaves the clip, the subtitles, the
    transcripts, the letters and the page, and what was made from it is deleted from OUT_DIR/work and
    OUT_DIR/edits; the delivery is then made again as `hearing render` makes it, and the archive records
    the withdrawal. Every later run and render keeps it out (OUT_DIR/withdrawn.json)."""
    from pipeline import withdrawal
    from pipeline.report import options_of_earlier_run

    setup_logging(verbose, quiet)
    try:
        earlier = dataclasses.replace(options_of_earlier_run(out_dir), zip=as_zip)
        done = withdrawal.prepare(out_dir, statement, reason, from_archive=from_archive)
    except PipelineError as error:
        fail(error, traceback, verbose)
    if not quiet:
        where = " and from the archive" if done.from_archive else ""
        click.echo(f"withdrawn: {done.statement} ({done.file}){where}; making the delivery again", err=True)
    _run_meeting(earlier, as_json, quiet, verbose, traceback)


@main.command("watch")
@_meeting_options
@click.option("--zip", "as_zip", is_flag=True, help=ZIP_HELP)
@_common
def watch_command(
    meeting_dir: Path,
    form: str,
    out_dir: Path | None,
    engine: str,
    model: str | None,
    language: str | None,
    device: str | None,
    as_zip: bool,
    as_json: bool,
    quiet: bool,
    verbose: int,
    traceback: bool,
) -> None:
    """Watch MEETING_DIR while recordings are copied in, making each statement ready as it arrives.

    A file is taken once it is complete (no temporary name, unchanged over several looks, its container
    whole). Press Enter to make the delivery (only the join, documents and check are left to do); Ctrl-C
    stops, and `hearing watch` or `hearing run` goes on from where it stopped."""
    import threading

    from pipeline import interrupt, watch
    from pipeline.report import RunOptions

    console = setup_logging(verbose, quiet)
    options = RunOptions(
        meeting_dir=meeting_dir, out_dir=out_dir, form=form, engine=engine, model=model,
        language=language, device=device, zip=as_zip,
    )  # fmt: skip
    enter = threading.Event()

    def read_enter() -> None:
        if sys.stdin is not None and sys.stdin.readline():
            enter.set()

    threading.Thread(target=read_enter, daemon=True).start()

    def action() -> int:
        progress = None if quiet or not console.is_terminal else RichProgress(console)
        watcher = watch.Watcher(options, progress)
        watcher.choose_model()
        if not quiet:
            click.echo(f"watching {meeting_dir.resolve()}: press Enter to deliver, Ctrl-C to stop", err=True)

        def taken(relpath: str, size: int, again: bool) -> None:
            if not quiet:
                click.echo(f"taken{' again' if again else ''}: {relpath} ({size} bytes)", err=True)

        def ready(status: watch.Status) -> None:
            if not quiet:
                click.echo(f"status: {status.line()}", err=True)
                for relpath, reason in status.rejections:
                    click.echo(f"  rejected: {relpath}: {reason}", err=True)
                for relpath, reason in status.left_out:
                    click.echo(f"  left out: {relpath}: {reason}", err=True)

        def waiting(names: list[str]) -> None:
            if not quiet:
                click.echo(f"delivering once these have arrived completely: {', '.join(names)}", err=True)

        def pace(line: str) -> None:
            if not quiet:
                click.echo(line, err=True)

        with interrupt.guard():
            watcher.watch(enter, on_taken=taken, on_ready=ready, on_waiting=waiting, on_pace=pace)
        report = watcher.deliver()
        if as_json:
            echo_json({**report.to_json(), "pace": watcher.pace_json()})
        summary(report, quiet)
        return int(report.exit_code)

    guarded(action, traceback, verbose)


@main.command("review")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True, help="0: a free port.")
@click.option("--no-browser", is_flag=True, help="Print the address; do not open a browser.")
@click.option("--verbose", "-v", count=True, help="More log lines on stderr.")
@click.option("--traceback", is_flag=True, help="Show the Python traceback of an unexpected error.")
def review_command(out_dir: Path, port: int, no_browser: bool, verbose: int, traceback: bool) -> None:
    """Read, correct and approve every statement of OUT_DIR on a page in the browser, then render.

    The page is served on this computer only (127.0.0.1) and works without a network; every change is
    saved in OUT_DIR/edits as you go. Ctrl-C stops the server."""
    from pipeline.review.session import serve

    setup_logging(verbose, quiet=False)

    def ready(url: str) -> None:
        click.echo(f"review of {out_dir.resolve()}: {url}  (Ctrl-C stops it)", err=True)

    guarded(
        lambda: serve(out_dir, port=port, open_browser=not no_browser, on_ready=ready),
        traceback,
        verbose,
    )


@main.command("start")
@_meeting_options
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True, help="0: a free port.")
@click.option("--no-browser", is_flag=True, help="Print the address; do not open a browser.")
@click.option("--verbose", "-v", count=True, help="More log lines on stderr.")
@click.option("--traceback", is_flag=True, help="Show the Python traceback of an unexpected error.")
def start_command(
    meeting_dir: Path,
    form: str,
    out_dir: Path | None,
    engine: str,
    model: str | None,
    language: str | None,
    device: str | None,
    port: int,
    no_browser: bool,
    verbose: int,
    traceback: bool,
) -> None:
    """Prepare MEETING_DIR on a page in the browser, run it, review it and make the delivery.

    The page lists every recording with the fields of meeting.yaml (speakers, consents, order, trims,
    the meeting and its follow-up) and writes MEETING_DIR/meeting.yaml (the previous one kept beside
    it); Start runs `hearing run` with these options, then the review page opens. Served on this
    computer only (127.0.0.1). Ctrl-C stops it."""
    from pipeline.report import RunOptions
    from pipeline.start.server import serve

    setup_logging(verbose, quiet=False)
    options = RunOptions(
        meeting_dir=meeting_dir, out_dir=out_dir, form=form, engine=engine, model=model,
        language=language, device=device,
    )  # fmt: skip

    def ready(url: str) -> None:
        click.echo(f"preparing {meeting_dir.resolve()}: {url}  (Ctrl-C stops it)", err=True)

    guarded(
        lambda: serve(options, port=port, open_browser=not no_browser, on_ready=ready), traceback, verbose
    )


@main.command("demo")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("demo-output"),
    show_default=True,
    help="Output folder.",
)
@click.option("--engine", type=click.Choice(ENGINE_CHOICES), default="faster-whisper", show_default=True)
@_common
def demo_command(
    out_dir: Path, engine: str, as_json: bool, quiet: bool, verbose: int, traceback: bool
) -> None:
    """Run the pipeline on the demo meeting with the demo form, offline."""
    from pipeline.report import RunOptions

    meeting_dir = demo_meeting_dir()
    if not meeting_dir.is_dir():
        setup_logging(verbose, quiet)
        fail(
            PipelineError(f"the demo meeting is missing ({meeting_dir}); reinstall hearing-pipeline"),
            traceback,
        )
    options = RunOptions(meeting_dir=meeting_dir, out_dir=out_dir, form="demo", engine=engine)
    _run_meeting(options, as_json, quiet, verbose, traceback)


@main.command("check")
@click.argument("clip", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--form",
    "form",
    required=True,
    help="The agreed form: a YAML file, or a built-in form (default, demo).",
)
@click.option(
    "--subtitles",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The .srt or .vtt to check [default: CLIP's <name>.*.srt beside it].",
)
@click.option("--json", "as_json", is_flag=True, help="Print the QC report as JSON on stdout.")
@click.option("--quiet", "-q", is_flag=True, help="No table: the exit code and the failed checks only.")
@click.option("--verbose", "-v", count=True, help="More log lines on stderr (-vv: every command).")
@click.option("--traceback", is_flag=True, help="Show the Python traceback of an error.")
def check_command(
    clip: Path,
    form: str,
    subtitles: Path | None,
    as_json: bool,
    quiet: bool,
    verbose: int,
    traceback: bool,
) -> None:
    """Measure CLIP, its subtitles and its transcript against the agreed form.

    Exit 0 when every check passes (warnings allowed), 1 when any fails. The transcript
    (<name>-transkription.*) and the timeline (<name>-tidslinje.json: every statement's length) are
    used when they are beside the clip, as in a copy of the delivery folder; ../run.json too.
    """
    setup_logging(verbose, quiet)

    def action() -> int:
        from pipeline.config import load_form
        from pipeline.errors import EXIT_FAILED, EXIT_OK
        from pipeline.stages.check import run_check
        from pipeline.stages.check.files import find_delivery_files

        agreed, _ = load_form(form)
        found = find_delivery_files(clip, agreed, subtitles)
        report = run_check(
            clip,
            agreed,
            subtitles=found.subtitles,
            transcript_json=found.transcript_json,
            run_json=found.run_json,
            timeline_json=found.timeline_json,
            language=found.language,
        )
        if as_json:
            echo_json(report.to_json())
        elif not quiet:
            click.echo(report.to_text(), nl=False)
        if not report.passed:
            click.echo(f"error: {report.summary()}", err=True)
        return EXIT_OK if report.passed else EXIT_FAILED

    guarded(action, traceback, verbose)


@main.group("models", invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON on stdout.")
@click.option("--traceback", is_flag=True, help="Show the Python traceback of an error.")
@click.pass_context
def models_command(ctx: click.Context, as_json: bool, traceback: bool) -> None:
    """The speech engines and models usable offline right now, and where they come from.

    `hearing models get NAME` downloads a model of the catalogue once, for offline use."""
    if ctx.invoked_subcommand is not None:
        return

    def action() -> int:
        from pipeline.engines import list_models

        entries = [*list_models(), ffmpeg_row()]
        if as_json:
            echo_json(entries, default=str)
            return 0
        click.echo(models_text(entries))
        return 0

    guarded(action, traceback)


@models_command.command("get")
@click.argument("name")
@click.option(
    "--yes",
    "--accept-licence",
    "accept",
    is_flag=True,
    help="Accept the model's licence conditions without being asked.",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar; errors only.")
@click.option("--traceback", is_flag=True, help="Show the Python traceback of an error.")
def models_get_command(name: str, accept: bool, quiet: bool, traceback: bool) -> None:
    """Download the catalogue model NAME once: every file checked against the digest the model hub
    publishes, converted to CTranslate2 where needed, stored for offline use. Run again after an
    interruption to resume. The hub is HF_ENDPOINT (default: the Hugging Face hub)."""
    console = setup_logging(0, quiet)

    def action() -> int:
        from pipeline.engines import catalogue, download
        from pipeline.errors import UsageError, human_bytes

        entry = catalogue.entry(name)
        if entry.licence_conditions and not accept:
            click.echo(licence_text(entry.name, entry.licence, entry.licence_conditions), err=True)
            if not sys.stdin.isatty():
                raise UsageError(f"{entry.name}: accept its licence conditions with --yes to download it")
            if not click.confirm("Accept these conditions and download?", err=True):
                raise UsageError(f"{entry.name}: not downloaded (the licence conditions were not accepted)")
        if not quiet:
            click.echo(
                f"getting {entry.name}: {entry.repo} at {download.requested_revision(entry)[:12]}, about "
                f"{human_bytes(entry.size_bytes)} (licence: {entry.licence})",
                err=True,
            )
        if quiet or not console.is_terminal:
            path = download.get(entry)
        else:
            with DownloadBar(console, entry.name) as bar:
                path = download.get(entry, on_progress=bar.update)
        if not quiet:
            click.echo(f"installed {entry.name} in {path}; use it with: hearing run --model {entry.name}")
        return 0

    guarded(action, traceback)


@main.command("verify")
@click.argument("archive", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
@click.option("--traceback", is_flag=True, help="Show the Python traceback of an error.")
def verify_command(archive: Path, as_json: bool, traceback: bool) -> None:
    """Check the archive (OUT_DIR/archive, a BagIt bag): every file there, nothing added, every checksum
    as recorded. Exit 0 when it is valid, 1 naming each changed, missing or extra file."""

    def action() -> int:
        from pipeline import purge
        from pipeline.stages.archive.verify import verify_archive

        result = verify_archive(archive)
        # A retention date passed is a warning, never part of the verdict on the bag's integrity.
        dates, due = purge.notes(result.path) if result.is_bag else (None, [])
        if as_json:
            echo_json(
                {
                    **result.to_json(),
                    "retention": dates.to_json() if dates else None,
                    "retention_passed": due,
                }
            )
        for line in due:
            click.echo(f"warning: {line}", err=True)
        if not result.is_bag:
            click.echo(f"error: {result.path} is not an archive: {result.error}", err=True)
            return 1
        if result.valid:
            if not as_json:
                click.echo(
                    f"valid: {result.path} (BagIt {result.version}; {result.payload_files} files, "
                    f"{result.payload_bytes / 1e6:,.1f} MB; every {' and '.join(result.algorithms)} "
                    "checksum matches)"
                )
                for line in result.withdrawals:
                    click.echo(line)
            return 0
        if not as_json:
            for problem in result.problems:
                click.echo(problem.line)
        click.echo(f"error: {result.path} is not valid: {len(result.problems)} problem(s)", err=True)
        return 1

    guarded(action, traceback)


@main.command("purge")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--recordings",
    "with_recordings",
    is_flag=True,
    help="Also remove the recordings from the archive once their retention date has passed.",
)
@click.option("--dry-run", is_flag=True, help="List what would be removed; remove nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print what was (or would be) removed as JSON.")
@click.option("--traceback", is_flag=True, help="Show the Python traceback of an error.")
def purge_command(
    out_dir: Path, with_recordings: bool, dry_run: bool, as_json: bool, traceback: bool
) -> None:
    """Remove what the retention dates in OUT_DIR's archive say is due: the work cache with its
    previews and the drafts, and with --recordings the recordings in the archive (a new version of the
    bag). Each removal is recorded in the archive's provenance. Exit 0 also when nothing is due."""

    def action() -> int:
        from pipeline import purge

        planned = purge.run(out_dir, with_recordings=with_recordings, dry_run=dry_run)
        if as_json:
            echo_json({"dry_run": dry_run, **planned.to_json()})
            return 0
        verb = "would remove" if dry_run else "removed"
        for item in planned.remove:
            click.echo(f"{verb}: {item.shown}")
        for note in planned.notes:
            click.echo(note, err=True)
        if not planned.remove:
            click.echo("nothing is due", err=True)
        elif not dry_run:
            click.echo("recorded in the archive's provenance (a deletion event)", err=True)
        return 0

    guarded(action, traceback)
