"""What the command line shows, apart from click: log lines on stderr, progress bars, a run's summary and
plan, JSON on stdout, the text of `hearing models`, where the demo meeting is, and an error's line and
exit code.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any, NoReturn

import click

from pipeline.errors import PipelineError, describe, exit_code_for

DEMO_MEETING = "borgermoede-nordby"


class _ShownNames(logging.Filter):
    """A file name (or any value) in a log line is shown on that line: a line break or a terminal escape
    in a recording's name cannot start a line that looks like another message, nor colour the screen."""

    def filter(self, record: logging.LogRecord) -> bool:
        from pipeline.files import shown_name

        if isinstance(record.args, tuple):
            record.args = tuple(shown_name(a) if isinstance(a, str) else a for a in record.args)
        return True


class _OneLine(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        prefix = {"WARNING": "warning: ", "ERROR": "error: "}.get(record.levelname, "")
        return prefix + record.getMessage()


def setup_logging(verbose: int, quiet: bool) -> Any:
    from rich.console import Console

    console = Console(stderr=True, highlight=False)
    level = logging.WARNING
    if verbose == 1:
        level = logging.INFO
    elif verbose >= 2:
        level = logging.DEBUG
    if quiet and not verbose:
        level = logging.ERROR
    handler: logging.Handler
    if console.is_terminal:
        from rich.logging import RichHandler

        handler = RichHandler(console=console, show_time=False, show_path=False, markup=False)
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_OneLine())
    handler.addFilter(_ShownNames())
    root = logging.getLogger("pipeline")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
    return console


class RichProgress:
    """Draws the runner's progress events as bars on stderr."""

    def __init__(self, console: Any) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self._bars = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self._tasks: dict[str, Any] = {}

    def __enter__(self) -> RichProgress:
        self._bars.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._bars.stop()

    def begin(self, key: str, label: str) -> None:
        self._tasks[key] = self._bars.add_task(label, total=1.0)

    def update(self, key: str, fraction: float) -> None:
        if key in self._tasks:
            self._bars.update(self._tasks[key], completed=fraction)

    def end(self, key: str) -> None:
        if key in self._tasks:
            self._bars.update(self._tasks.pop(key), completed=1.0)


class DownloadBar:
    """Draws a model download (`hearing models get`) as one bar of bytes on stderr, with the speed."""

    def __init__(self, console: Any, label: str) -> None:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self._bars = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self._task = self._bars.add_task(label, total=None)

    def __enter__(self) -> DownloadBar:
        self._bars.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._bars.stop()

    def update(self, done: int, total: int) -> None:
        self._bars.update(self._task, completed=done, total=total)


def licence_text(name: str, licence: str, conditions: str) -> str:
    """The conditions a model's licence sets, shown before it is downloaded."""
    return f"{name} is published under {licence}, with these conditions:\n{conditions.strip()}"


def fail(error: BaseException, traceback: bool, verbose: int = 0) -> NoReturn:
    from pipeline.errors import MediaError

    if traceback:
        raise error
    code = exit_code_for(error)
    if isinstance(error, KeyboardInterrupt):
        click.echo("interrupted: run the same command again to resume; finished work is kept", err=True)
    elif isinstance(error, PipelineError):
        for line in str(error).splitlines():
            click.echo(f"error: {line}", err=True)
        if verbose and isinstance(error, MediaError) and error.command:
            import shlex

            click.echo(f"  command: {shlex.join(error.command)}", err=True)
            for line in error.stderr_tail.splitlines():
                click.echo(f"  ffmpeg: {line}", err=True)
    else:
        click.echo(f"error: {describe(error)} (run with --traceback for details)", err=True)
    sys.exit(code)


def guarded(action: Callable[[], int], traceback: bool, verbose: int = 0) -> None:
    try:
        code = action()
    except (Exception, KeyboardInterrupt) as error:
        fail(error, traceback, verbose)
    else:
        # Everything is written and closed: the collector's last pass over every object the engine and
        # its libraries made only delays the exit (0.3-0.4 s after a run), so it is skipped.
        import gc

        gc.freeze()
        sys.exit(code)


def print_plan(report: Any) -> None:
    """The plan of a dry run on stdout: each step, cached or to do, from what, with its exact command."""
    for line in report.plan.lines():
        click.echo(line)


def summary(report: Any, quiet: bool) -> None:
    """What was delivered, then one line for every recording left out (also with --quiet)."""
    delivery = report.out_dir / "delivery"
    if quiet:
        pass
    elif report.options.dry_run and report.plan.destination == "draft":
        click.echo(
            f"dry run: a draft of {len(report.statements)} statement(s) would be made in "
            f"{report.out_dir / 'draft'}, waiting for approval (the form requires every statement "
            "approved; approve them with `hearing review`)",
            err=True,
        )
    elif report.options.dry_run:
        click.echo(
            f"dry run: {len(report.statements)} statement(s) would be delivered to {delivery}", err=True
        )
    elif report.draft:
        click.echo(
            f"not delivered: a draft of {len(report.statements)} statement(s) is in "
            f"{report.out_dir / 'draft'}, waiting for approval",
            err=True,
        )
    else:
        click.echo(f"delivered {len(report.statements)} statement(s) to {delivery}", err=True)
        for name in report.delivered:
            click.echo(f"  {name}", err=True)
        if report.zip_file:
            click.echo(f"packed for sending: {report.zip_file}", err=True)
    if report.edited and not quiet:
        click.echo(
            f"corrections: the text of {len(report.edited)} statement(s) as corrected in "
            f"{report.out_dir / 'edits'}",
            err=True,
        )
    from pipeline.files import shown_name

    for rejection in report.rejected:
        click.echo(f"rejected: {shown_name(rejection.relpath)}: {rejection.reason}", err=True)
    for rejection in report.withheld:
        click.echo(f"left out: {shown_name(rejection.relpath)}: {rejection.reason}", err=True)


def echo_json(data: Any, default: Callable[[Any], Any] | None = None) -> None:
    """``data`` as JSON on stdout, its text as written (not escaped to ASCII)."""
    click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=default))


def demo_meeting_dir() -> Path:
    """The demo meeting: shipped inside the installed package, or samples/ of a source checkout."""
    packaged = resources.files("pipeline").joinpath("samples", DEMO_MEETING)
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parent.parent / "samples" / DEMO_MEETING


def models_text(entries: list[dict[str, Any]]) -> str:
    """The engines and models as a person reads them: what works offline now, and how to get the rest."""
    lines = ["Speech engines:"]
    for row in (e for e in entries if e["kind"] == "engine"):
        state = "installed" if row["installed"] else f"not installed ({row['install']})"
        default = ", the default" if row["default"] else ""
        lines.append(f"  {row['name']} {row['version'] or ''}: {state}{default}".replace("  :", ":"))
    lines.append("Models:")
    for row in (e for e in entries if e["kind"] == "model"):
        offline = "usable offline" if row["usable_offline"] else "NOT usable offline"
        lines.append(f"  {row['name']} ({row['source']}, {', '.join(row['engines'])}): {offline}")
        if row.get("packages"):
            packages = ", ".join(f"{name} {version}" for name, version in row["packages"].items())
            lines.append(f"      from the packages {packages}")
        if row.get("sha256"):
            lines.append(f"      sha256 {row['sha256']}")
        if row.get("path"):
            lines.append(f"      in {row['path']}")
        if not row["usable_offline"] and row.get("install"):
            lines.append(f"      to get it: {row['install']}")
        lines.append(f"      use: {row['use']}")
    from pipeline.engines import catalogue as catalogue_data

    catalogue = [e for e in entries if e["kind"] == "catalogue"]
    if catalogue:
        lines.append("Models fit for Danish (word error rates as published, not measured here):")
    for row in catalogue:
        mark = ", recommended" if row["recommended"] else ""
        mark += "" if row["fit_for_danish"] else ", for demos and tests only"
        lines.append(f"  {row['name']}: {row['title']}{mark}")
        lines.append(f"      {'installed' if row['installed'] else 'not installed; get it: ' + row['get']}")
        lines.append(
            f"      {row['size']}, {row['speed']} on a CPU, {', '.join(row['engines'])}; "
            f"licence: {row['licence']}"
            + (" (its conditions are shown before download)" if row["licence_conditions"] else "")
        )
        by_dataset = {p["dataset"]: p for p in row["published"]}
        mean = by_dataset.get(catalogue_data.MEAN)
        if mean is not None:
            parts = ", ".join(
                f"{label} {by_dataset[key]['wer_percent']:g} %"
                for key, label in (
                    (catalogue_data.CORAL_READ, "CoRal read-aloud"),
                    (catalogue_data.CORAL_CONVERSATION, "CoRal conversation"),
                )
                if key in by_dataset
            )
            lines.append(
                f"      published Danish WER {mean['wer_percent']:g} % mean of 5 test sets"
                + (f" ({parts})" if parts else "")
                + f"; source: {mean['source']}"
            )
    lines.append(
        "Other models (small, medium, a local folder or .pt file): run once online with --model NAME; "
        "the engine downloads and caches it."
    )
    for row in (e for e in entries if e["kind"] == "ffmpeg"):
        if row.get("error"):
            lines.append(f"ffmpeg: NOT usable ({row['error']})")
            continue
        lines.append(f"ffmpeg: {row['path']} ({row['version']}): {row['reason']}")
        lines += [f"  passed over: {line}" for line in row["passed_over"]]
    return "\n".join(lines)


def ffmpeg_row() -> dict[str, Any]:
    """The ffmpeg a run would use, and why; or why there is none."""
    from pipeline import media

    try:
        return {"kind": "ffmpeg", **media.ffmpeg_choice().to_json()}
    except PipelineError as error:
        return {"kind": "ffmpeg", "error": str(error)}
