"""How a job tells its caller what it is doing: progress callbacks, no terminal.

Every engine job takes ``progress: Progress | None``; ``None`` is :class:`Silent`. The
command line passes a presenter drawing progress bars, a web application would pass one
that publishes events; the engine only calls the methods below, in this order per task::

    start(task, total, done)    # once; ``done`` units were finished by an earlier run
    advance(task, n)            # after every n units; the n of one task add up to total - done
    finish(task)                # once, also when the job fails (like leaving a ``with``)

``message(text)`` carries a one-line note (what was kept, what is redone, where a file
went), ``report(result)`` a finished part's result (an
:class:`~relscope.engine.attribution.AttributionRun`, an
:class:`~relscope.engine.analysis.AnalysisSummary`, a
:class:`~relscope.data.check.ProjectReport`) for the caller to show as it arrives; the job
also returns its own result.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

__all__ = ["Progress", "Silent", "or_silent"]


@runtime_checkable
class Progress(Protocol):
    """The callbacks a job reports through (see the module's documentation)."""

    def start(self, task: str, total: int, done: int = 0) -> None:
        """Task ``task`` has ``total`` units, ``done`` of them finished before."""

    def advance(self, task: str, n: int = 1) -> None:
        """``n`` more units of ``task`` are finished."""

    def finish(self, task: str) -> None:
        """``task`` ended (completed, or stopped by an error)."""

    def message(self, text: str) -> None:
        """A one-line note for the user."""

    def report(self, result: object) -> None:
        """A part of the job finished with ``result``."""


class Silent:
    """The default :class:`Progress`: ignores everything. Subclass it to hear only some
    callbacks."""

    def start(self, task: str, total: int, done: int = 0) -> None:
        pass

    def advance(self, task: str, n: int = 1) -> None:
        pass

    def finish(self, task: str) -> None:
        pass

    def message(self, text: str) -> None:
        pass

    def report(self, result: object) -> None:
        pass


def or_silent(progress: Progress | None) -> Progress:
    """``progress``, or :class:`Silent` when it is ``None``."""
    return Silent() if progress is None else progress
