"""What every command shares: consoles, one-line errors, exit codes, and the presentation of
what the engine reports (progress bars, notes, results)."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from types import TracebackType
from typing import ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from relscope.data.check import ProjectReport
from relscope.data.labels import describe_category
from relscope.engine.analysis import AnalysisSummary
from relscope.engine.attribution import AttributionRun
from relscope.engine.inputs import parse_classes
from relscope.errors import RelscopeError

__all__ = [
    "EXIT_BAD_INPUT",
    "ConsoleProgress",
    "console",
    "error_console",
    "fail",
    "parse_classes",
    "print_analysis",
    "print_report",
    "print_run",
    "user_errors",
    "warn_if_not_built",
]

P = ParamSpec("P")
R = TypeVar("R")

#: Exit status of a command given bad input (same as click's usage errors).
EXIT_BAD_INPUT = 2

console = Console(highlight=False)
error_console = Console(stderr=True, highlight=False, soft_wrap=True)


def fail(message: str) -> typer.Exit:
    """Print ``relscope: error: <message>`` on one line and return the exit to raise."""
    error_console.print(f"relscope: error: {' '.join(message.split())}", markup=False)
    return typer.Exit(EXIT_BAD_INPUT)


def user_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Turn :class:`RelscopeError` raised by a command into one line and exit status 2."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except RelscopeError as error:
            raise fail(str(error)) from None

    return wrapper


def warn_if_not_built(url: str) -> None:
    """Say how to build the Explorer when only the HTTP API can be served at ``url``."""
    from relscope.app import frontend_built

    if not frontend_built():
        console.print(
            "The Explorer front end is not built: run `make frontend` (or "
            "`bash scripts/build_frontend.sh`) in the source tree; until then only "
            f"the HTTP API is served (schema: {url}api/openapi.json)."
        )


def print_run(run: AttributionRun) -> None:
    """One summary line of an attribution run."""
    parts = [f"{run.samples} samples"]
    if run.resumed:
        parts.append(f"{run.resumed} kept from an earlier run")
    if run.samples > run.resumed:
        parts.append(f"{run.seconds:.1f} s, {run.samples_per_second:.1f} samples/s")
    if run.accuracy is not None:
        parts.append(f"accuracy {run.accuracy:.1%}")
    if run.shards:
        files = run.files
        shown = f"{len(files)} shards {files[0]} .. {files[-1].name}"
        console.print(f"wrote {shown}: " + ", ".join(parts))
        return
    console.print(f"wrote {run.path}: " + ", ".join(parts))


def print_analysis(summary: AnalysisSummary) -> None:
    """The categories of an analysis ranked by tau (skipped ones last), and where it went."""
    labels = summary.labels
    table = Table(title=f"{summary.name}: categories ranked by tau (linear separability of k=2)")
    for column in ("rank", "category", "samples", "tau", "eigengap k", "note"):
        table.add_column(column)
    for rank, category in enumerate(summary.categories, start=1):
        shown = describe_category(category.name, labels)
        table.add_row(
            str(rank),
            shown,
            str(category.size),
            f"{category.tau:.3g}",
            f"{category.eigengap_k:.0f}",
            "",
        )
    for key, (size, reason) in sorted(summary.skipped.items()):
        table.add_row("-", describe_category(key, labels), str(size), "", "", reason)
    console.print(table)
    console.print(f"wrote {summary.path}")


def print_report(report: ProjectReport) -> None:
    """Print a project report as two tables."""
    facts = Table(title=f"Project {report.project.name!r}", show_header=False, box=None)
    for key, value in report.facts:
        facts.add_row(f"[bold]{key}[/bold]", value)
    console.print(facts)
    if report.findings:
        table = Table("level", "where", "finding", title="Findings")
        for finding in report.findings:
            colour = "red" if finding.level == "error" else "yellow"
            table.add_row(f"[{colour}]{finding.level}[/{colour}]", finding.where, finding.message)
        console.print(table)
    verdict = "[green]valid[/green]" if report.ok else "[red]invalid[/red]"
    console.print(
        f"{report.project.path}: {verdict} "
        f"({len(report.errors)} errors, {len(report.warnings)} warnings)"
    )


class _Rate(ProgressColumn):
    """Samples per second of the running task."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(
            f"{speed:,.1f} samples/s" if speed else "- samples/s", style="progress.data.speed"
        )


def _columns(task: str) -> tuple[str | ProgressColumn, ...]:
    head = ("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn())
    if task == "attribute":  # samples: a rate and the time left
        return (*head, _Rate(), TimeElapsedColumn(), TimeRemainingColumn())
    return (*head, TimeElapsedColumn())


#: What a bar of an engine task is called on the terminal.
_DESCRIPTIONS = {"analyze": "SpRAy"}


class ConsoleProgress:
    """The engine's :class:`~relscope.engine.progress.Progress` on the terminal: a transient
    bar per task, notes and results printed.

    ``stamp`` prefixes every note with the seconds since the presenter was made (the demo's
    steps). Use it as a context manager, so that bars stop when a command fails.
    """

    def __init__(self, *, stamp: bool = False) -> None:
        self._clock = time.perf_counter() if stamp else None
        self._bars: dict[str, tuple[Progress, TaskID]] = {}

    def start(self, task: str, total: int, done: int = 0) -> None:
        bar = Progress(*_columns(task), console=console, transient=True)
        bar.start()
        self._bars[task] = (bar, bar.add_task(_DESCRIPTIONS.get(task, task), total=total,
                                              completed=done))  # fmt: skip

    def advance(self, task: str, n: int = 1) -> None:
        if task in self._bars:
            bar, handle = self._bars[task]
            bar.advance(handle, n)

    def finish(self, task: str) -> None:
        if task in self._bars:
            self._bars.pop(task)[0].stop()

    def message(self, text: str) -> None:
        if self._clock is None:
            console.print(text)
        else:
            console.print(f"[bold][{time.perf_counter() - self._clock:6.1f} s][/bold] {text}")

    def report(self, result: object) -> None:
        if isinstance(result, AttributionRun):
            print_run(result)
        elif isinstance(result, AnalysisSummary):
            print_analysis(result)
        elif isinstance(result, ProjectReport):
            print_report(result)

    def close(self) -> None:
        """Stop every bar still shown."""
        for task in list(self._bars):
            self.finish(task)

    def __enter__(self) -> ConsoleProgress:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()
