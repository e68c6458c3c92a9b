"""The Ray backend: the pieces of a job on a Ray cluster (``--engine ray``).

:meth:`RayBackend.map` runs every piece as a Ray task (retried when its worker is lost);
:meth:`RayBackend.map_workers` starts ``workers`` actors, each building its state once (the
model, on the GPU Ray gave it), hands them the pieces one after the other, and restarts a
lost actor and retries its piece (``max_retries`` times). Progress reported by the pieces
travels through a small counter actor that the caller polls while it waits.

Ray is optional (``pip install 'relscope[ray]'``) and imported only when a backend starts.
Without ``address`` a local Ray is started for the backend and stopped after it; with one,
the backend connects to that cluster (``ray.init(address=...)``). A Ray that the caller
initialized already (a test's cluster, a notebook) is used as it is and left running.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Any, TypeVar

from relscope.engine.backend import Report
from relscope.errors import ConfigError

__all__ = ["INSTALL_HINT", "RayBackend"]

T = TypeVar("T")
R = TypeVar("R")
S = TypeVar("S")

INSTALL_HINT = "--engine ray needs Ray, which is not installed: pip install 'relscope[ray]'"

#: How often (seconds) the caller polls the progress counter while pieces run.
_POLL_SECONDS = 0.5


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError(INSTALL_HINT) from None
    return ray


def _positive(value: float, what: str, *, zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise ConfigError(f"{what} must be a number, got {value!r}")
    if value < 0 or (value == 0 and not zero):
        raise ConfigError(f"{what} must be {'>= 0' if zero else '> 0'}, got {value!r}")
    return float(value)


class RayBackend:
    """Pieces of work on a Ray cluster; use it as a context manager (it starts and stops Ray).

    Parameters
    ----------
    address:
        The cluster (``ray.init(address=...)``, e.g. ``ray://head:10001`` or ``head:6379``);
        ``None`` starts a local Ray for the block.
    workers:
        Actors of :meth:`map_workers`, and tasks of :meth:`map` running at once. Default:
        as many as the cluster's CPUs (or GPUs, with ``gpus_per_worker``) hold.
    cpus_per_worker, gpus_per_worker:
        Ray resources of one worker (an actor, or an analysis task: those get no GPU).
    max_retries:
        How often a lost worker is restarted and its piece retried.
    num_cpus:
        CPUs of the local Ray started without ``address`` (default: this machine's).
    init_options:
        Further keyword arguments of ``ray.init`` (e.g. ``runtime_env``).
    """

    distributed = True

    def __init__(
        self,
        address: str | None = None,
        *,
        workers: int | None = None,
        cpus_per_worker: float = 1.0,
        gpus_per_worker: float = 0.0,
        max_retries: int = 3,
        num_cpus: int | None = None,
        init_options: dict[str, Any] | None = None,
    ) -> None:
        if workers is not None and (
            isinstance(workers, bool) or not isinstance(workers, int) or workers < 1
        ):
            raise ConfigError(f"workers must be a positive integer, got {workers!r}")
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ConfigError(f"max_retries must be an integer >= 0, got {max_retries!r}")
        self.address = address or None
        self.workers = workers
        self.cpus_per_worker = _positive(cpus_per_worker, "cpus per worker")
        self.gpus_per_worker = _positive(gpus_per_worker, "gpus per worker", zero=True)
        self.max_retries = max_retries
        self.num_cpus = num_cpus
        self.init_options = dict(init_options or {})
        #: Pieces finished per Ray node id by the last :meth:`map` or :meth:`map_workers`.
        self.nodes: collections.Counter[str] = collections.Counter()
        self._started = False
        self._open = False
        self._actors: list[Any] = []

    def __repr__(self) -> str:
        where = self.address or "local"
        return (
            f"RayBackend({where!r}, workers={self.workers}, cpus_per_worker="
            f"{self.cpus_per_worker:g}, gpus_per_worker={self.gpus_per_worker:g})"
        )

    # ------------------------------------------------------------------------- lifecycle
    def start(self) -> RayBackend:
        """Connect to the cluster (or start a local Ray); a Ray already initialized is used."""
        ray = _ray()
        if not ray.is_initialized():
            options: dict[str, Any] = {"log_to_driver": False, **self.init_options}
            if self.address is None:
                options.setdefault("include_dashboard", False)
                ray.init(address="local", num_cpus=self.num_cpus, **options)
            else:
                ray.init(address=self.address, **options)
            self._started = True
        self._open = True
        return self

    def close(self) -> None:
        """Stop the workers, and the Ray this backend started (one it found running is left
        alone)."""
        if self._actors and _ray().is_initialized():
            self._stop_pool(_ray())
        if self._started:
            _ray().shutdown()
        self._started = self._open = False

    def __enter__(self) -> RayBackend:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def _ready(self) -> Any:
        ray = _ray()
        if not self._open or not ray.is_initialized():
            raise ConfigError("the Ray backend is not started: use it as `with RayBackend(...)`")
        return ray

    def worker_count(self) -> int:
        """The actors :meth:`map_workers` starts: ``workers``, at most what the cluster holds.

        More actors than fit would wait for resources forever with pieces queued on them.
        """
        ray = self._ready()
        resources = ray.cluster_resources()
        fits = int(resources.get("CPU", 0) // self.cpus_per_worker)
        if self.gpus_per_worker:
            fits = min(fits, int(resources.get("GPU", 0) // self.gpus_per_worker))
        if fits < 1:
            raise ConfigError(
                f"the Ray cluster has {resources.get('CPU', 0):g} CPUs and "
                f"{resources.get('GPU', 0):g} GPUs: no worker of {self.cpus_per_worker:g} CPUs "
                f"and {self.gpus_per_worker:g} GPUs fits"
            )
        return fits if self.workers is None else min(self.workers, fits)

    # ----------------------------------------------------------------------------- pieces
    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[tuple[T, R]]:
        """``(item, fn(item))`` per item, each a Ray task of ``cpus_per_worker`` CPUs."""
        ray = self._ready()
        items = list(items)
        self.nodes = collections.Counter()
        if not items:
            return
        task = ray.remote(_call).options(
            num_cpus=self.cpus_per_worker, max_retries=self.max_retries
        )
        function = ray.put(fn)  # once, not once per task
        limit = self.workers or len(items)
        waiting = iter(enumerate(items))
        running: dict[Any, int] = {}

        def submit() -> None:
            for position, item in waiting:
                running[task.remote(function, item)] = position
                return

        for _ in range(limit):
            submit()
        try:
            while running:
                ready, _ = ray.wait(list(running), num_returns=1)
                for ref in ready:
                    position = running.pop(ref)
                    result, node = _get(ray, ref)
                    self.nodes[node] += 1
                    submit()
                    yield items[position], result
        finally:
            for ref in running:
                ray.cancel(ref, force=True)

    def map_workers(
        self,
        setup: Callable[[], S],
        fn: Callable[[S, T, Report], R],
        items: Iterable[T],
        *,
        progress: Callable[[int], None] | None = None,
    ) -> Iterator[tuple[T, R]]:
        """Pieces on ``workers`` actors holding ``setup()``; see :class:`Backend`.

        Every actor has two pieces at a time (one running, one queued), so that it never
        waits for the caller between pieces. The actors stay up for the next call of this
        backend (a worker process costs seconds to start: Python, PyTorch, relscope), which
        builds its own state; a call that fails stops them, so no piece of it runs on.
        """
        ray = self._ready()
        self.nodes = collections.Counter()
        actors = self._pool(ray)
        counter = ray.remote(_Counter).options(num_cpus=0).remote()
        # A model is serialized once, not once per actor; wrapped in a list, the reference
        # reaches the actors unresolved, and each resolves it only when its state is not
        # this call's (also after a restart, when the retried piece arrives).
        shared = [ray.put(setup)]
        waiting = iter(enumerate(items))
        running: dict[Any, tuple[T, Any]] = {}
        reported = 0
        finished = False

        def submit(actor: Any) -> None:
            for position, item in waiting:
                running[actor.run.remote(shared, fn, counter, position, item)] = (item, actor)
                return

        def poll() -> None:
            nonlocal reported
            if progress is None:
                return
            total = ray.get(counter.total.remote())
            if total > reported:
                progress(total - reported)
                reported = total

        try:
            for _ in range(2):
                for actor in actors:
                    submit(actor)
            while running:
                ready, _ = ray.wait(list(running), num_returns=1, timeout=_POLL_SECONDS)
                poll()
                for ref in ready:
                    item, actor = running.pop(ref)
                    result, node = _get(ray, ref)
                    self.nodes[node] += 1
                    submit(actor)
                    yield item, result
            poll()
            finished = True
        finally:
            ray.kill(counter)
            if not finished:
                self._stop_pool(ray)

    def _pool(self, ray: Any) -> list[Any]:
        if not self._actors:
            actor_class = ray.remote(_Actor).options(
                num_cpus=self.cpus_per_worker,
                num_gpus=self.gpus_per_worker,
                max_restarts=self.max_retries,
                max_task_retries=self.max_retries,
            )
            self._actors = [actor_class.remote() for _ in range(self.worker_count())]
        return self._actors

    def _stop_pool(self, ray: Any) -> None:
        for actor in self._actors:
            ray.kill(actor, no_restart=True)
        self._actors = []


def _get(ray: Any, ref: Any) -> Any:
    """The value of ``ref``; a piece's own exception is raised as itself, not wrapped."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as error:
        cause = getattr(error, "cause", None)
        if isinstance(cause, Exception):
            raise cause from None
        raise


def _node() -> str:
    import ray

    return ray.get_runtime_context().get_node_id()


def _call(fn: Callable[[T], R], item: T) -> tuple[R, str]:
    """A task of :meth:`RayBackend.map`: the result and the node it ran on."""
    return fn(item), _node()


class _Counter:
    """Progress of the pieces of one :meth:`RayBackend.map_workers`: each piece's highest
    report, summed (a retried piece starts again from what it kept: counted once)."""

    def __init__(self) -> None:
        self.done: dict[int, int] = {}

    def update(self, piece: int, done: int) -> None:
        self.done[piece] = max(done, self.done.get(piece, 0))

    def total(self) -> int:
        return sum(self.done.values())


class _Actor:
    """A worker of :meth:`RayBackend.map_workers`: the state of the current call (built by
    its setup), and the pieces run on it."""

    def __init__(self) -> None:
        self.key: str | None = None
        self.state: Any = None

    def run(
        self, shared: list[Any], fn: Callable[..., Any], counter: Any, position: int, item: Any
    ) -> tuple[Any, str]:
        import ray

        key = shared[0].hex()
        if key != self.key:
            self.state, self.key = None, None  # the previous call's model goes first
            self.state = ray.get(shared[0])()
            self.key = key

        def report(done: int) -> None:
            counter.update.remote(position, done)  # not awaited: progress never blocks work

        return fn(self.state, item, report), _node()
