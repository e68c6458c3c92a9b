"""The backend of a command's ``--engine`` options: local, or Ray.

Ray is imported by :mod:`relscope.engine.ray_backend` only when its backend starts, so this
module, like the rest of relscope, imports without Ray.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from relscope.engine.backend import Backend, LocalBackend
from relscope.engine.ray_backend import RayBackend
from relscope.errors import ConfigError

__all__ = ["ENGINES", "open_backend"]

#: The engines a command can run on (``--engine``).
ENGINES = ("local", "ray")


@contextlib.contextmanager
def open_backend(
    engine: str = "local",
    *,
    jobs: int = 1,
    address: str | None = None,
    workers: int | None = None,
    cpus_per_worker: float = 1.0,
    gpus_per_worker: float = 0.0,
) -> Iterator[Backend]:
    """The backend of ``engine`` (``--engine``), started for the block and stopped after it.

    ``local`` is a :class:`LocalBackend` of ``jobs`` processes; ``ray`` a
    :class:`~relscope.engine.ray_backend.RayBackend` on the cluster at ``address`` (none: a
    local Ray started for the block) with ``workers`` workers of ``cpus_per_worker`` CPUs
    and ``gpus_per_worker`` GPUs each.
    """
    if engine == "local":
        yield LocalBackend(jobs)
        return
    if engine != "ray":
        raise ConfigError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    with RayBackend(
        address,
        workers=workers,
        cpus_per_worker=cpus_per_worker,
        gpus_per_worker=gpus_per_worker,
    ) as backend:
        yield backend
