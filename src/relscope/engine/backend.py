"""Where a job's independent pieces run: the backend interface and the local backend.

A :class:`Backend` offers two ways of running pieces, both yielding each item with its
result as the pieces finish (in any order):

* :meth:`Backend.map`: stateless pieces (the per-category analyses);
* :meth:`Backend.map_workers`: pieces that need an expensive state built once per worker
  (a model, moved to the worker's GPU), then reused for every piece that worker runs (the
  shards, or the streamed batches, of a sharded attribution).

:class:`LocalBackend` runs on this machine: :meth:`~LocalBackend.map` in this process
(``jobs=1``) or in a pool of ``jobs`` worker processes, where ``fn`` and the items must be
picklable; :meth:`~LocalBackend.map_workers` in this process, one piece after the other.
The Ray backend (:mod:`relscope.engine.ray_backend`) runs the same pieces on a cluster.

The pool's workers are spawned, not forked: a process that has used OpenMP (PyTorch,
scikit-learn) or runs threads (progress bars) can leave a forked child waiting forever on a
lock that only a thread of the parent held.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Protocol, TypeVar, runtime_checkable

from relscope.errors import ConfigError

__all__ = ["Backend", "LocalBackend", "Report", "or_local"]

T = TypeVar("T")
R = TypeVar("R")
S = TypeVar("S")

#: What a piece of :meth:`Backend.map_workers` calls with the number of its units done so
#: far (absolute, not a delta: a retried piece starts again from what it kept, and the
#: backend counts each piece's highest value, so that retries never count twice).
Report = Callable[[int], None]


@runtime_checkable
class Backend(Protocol):
    """Runs independent pieces of work."""

    #: Whether the pieces may run on other machines (attribution is then written as shards,
    #: one database per piece, instead of one file).
    distributed: bool

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[tuple[T, R]]:
        """``(item, fn(item))`` for every item, as each finishes (in any order).

        An exception raised by ``fn`` is raised by the iterator; pieces not finished then
        are abandoned.
        """
        ...

    def map_workers(
        self,
        setup: Callable[[], S],
        fn: Callable[[S, T, Report], R],
        items: Iterable[T],
        *,
        progress: Callable[[int], None] | None = None,
    ) -> Iterator[tuple[T, R]]:
        """``(item, fn(setup(), item, report))`` for every item, as each finishes.

        ``setup`` runs once per worker (again when a lost worker is restarted); its state
        serves every item the worker takes. ``items`` is consumed lazily, a few ahead of
        the workers, so that it may be a stream of batches. ``fn`` may call ``report(done)``
        with its units done so far; ``progress(n)`` then hears every increase, summed over
        all workers, on the caller's side.
        """
        ...


class LocalBackend:
    """This machine: ``jobs`` worker processes (1: everything in this process, in order)."""

    distributed = False

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

    def map_workers(
        self,
        setup: Callable[[], S],
        fn: Callable[[S, T, Report], R],
        items: Iterable[T],
        *,
        progress: Callable[[int], None] | None = None,
    ) -> Iterator[tuple[T, R]]:
        # One worker, this process: the state is built once, lazily (no items, no model).
        state: list[S] = []
        for item in items:
            if not state:
                state.append(setup())
            yield item, fn(state[0], item, _Highest(progress))


class _Highest:
    """A :data:`Report` for one piece: passes on the increases of its highest count."""

    def __init__(self, progress: Callable[[int], None] | None) -> None:
        self.progress = progress
        self.highest = 0

    def __call__(self, done: int) -> None:
        if done > self.highest:
            if self.progress is not None:
                self.progress(done - self.highest)
            self.highest = done


def or_local(backend: Backend | None, jobs: int = 1) -> Backend:
    """``backend``, or a :class:`LocalBackend` of ``jobs`` processes when it is ``None``."""
    return LocalBackend(jobs) if backend is None else backend
