"""Where a job's independent pieces run: the backend interface and the local backend.

A :class:`Backend` maps a function over items and yields each item with its result as the
pieces finish (in any order). The engine uses it for the per-category analyses; sharded
attribution will use it through the same interface when a distributed backend (Ray) is
added. :class:`LocalBackend` runs on this machine: in this process (``jobs=1``) or in a
pool of ``jobs`` worker processes, where ``fn`` and the items must be picklable.

The workers are spawned, not forked: a process that has used OpenMP (PyTorch, scikit-learn)
or runs threads (progress bars) can leave a forked child waiting forever on a lock that
only a thread of the parent held.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Protocol, TypeVar, runtime_checkable

from relscope.errors import ConfigError

__all__ = ["Backend", "LocalBackend", "or_local"]

T = TypeVar("T")
R = TypeVar("R")


@runtime_checkable
class Backend(Protocol):
    """Runs independent pieces of work."""

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[tuple[T, R]]:
        """``(item, fn(item))`` for every item, as each finishes (in any order).

        An exception raised by ``fn`` is raised by the iterator; pieces not finished then
        are abandoned.
        """
        ...


class LocalBackend:
    """This machine: ``jobs`` worker processes (1: everything in this process, in order)."""

    def __init__(self, jobs: int = 1) -> None:
        if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
            raise ConfigError(f"jobs must be a positive integer, got {jobs!r}")
        self.jobs = jobs

    def __repr__(self) -> str:
        return f"LocalBackend(jobs={self.jobs})"

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[tuple[T, R]]:
        items = list(items)
        if self.jobs == 1 or len(items) < 2:
            for item in items:
                yield item, fn(item)
            return
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(min(self.jobs, len(items)), mp_context=context) as pool:
            futures = {pool.submit(fn, item): position for position, item in enumerate(items)}
            for future in as_completed(futures):
                yield items[futures[future]], future.result()


def or_local(backend: Backend | None, jobs: int = 1) -> Backend:
    """``backend``, or a :class:`LocalBackend` of ``jobs`` processes when it is ``None``."""
    return LocalBackend(jobs) if backend is None else backend
