"""SupersededError requests: a newer request on the same channel stops an older one early.

A person moving a slider sends a request per step; only the last one matters. Each request
takes a :class:`Ticket` from its session's :class:`Requests` on a channel (e.g. one browser
session's explain requests). While a ticket is *active* on a thread, every module call on
that thread first checks it (one global forward pre-hook, present only while some ticket
is active), so a superseded pass stops at its next layer instead of running to the end;
waiting callers check it before they start. :class:`SupersededError` is what they raise.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import torch

from relscope.errors import ConflictError

__all__ = ["Requests", "SupersededError", "Ticket"]


class SupersededError(ConflictError):
    """A newer request on the same channel replaced this one before it finished."""


class Ticket:
    """One request on one channel; :meth:`check` raises once a newer request has begun."""

    def __init__(self, requests: Requests | None, channel: str, number: int) -> None:
        self._requests = requests
        self.channel = channel
        self.number = number

    @property
    def superseded(self) -> bool:
        """Whether a newer request on this channel has begun."""
        return self._requests is not None and self._requests.latest(self.channel) != self.number

    def check(self) -> None:
        """Raise :class:`SupersededError` if a newer request on this channel has begun."""
        if self.superseded:
            raise SupersededError(f"request {self.number} on {self.channel!r} was superseded")

    @contextlib.contextmanager
    def active(self) -> Iterator[Ticket]:
        """Check this ticket before every module call this thread makes inside the block."""
        self.check()
        previous = getattr(_current, "ticket", None)
        _current.ticket = self
        _Hook.acquire()
        try:
            yield self
        finally:
            _Hook.release()
            _current.ticket = previous


#: A ticket nothing supersedes (library calls without a channel).
NEVER = Ticket(None, "", 0)


class Requests:
    """The latest request number per channel of one session (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._latest: dict[str, int] = {}
        self._counter = 0

    def begin(self, channel: str | None) -> Ticket:
        """A ticket for a new request on ``channel``, superseding the channel's older ones;
        ``None``: a ticket nothing supersedes."""
        if channel is None:
            return NEVER
        with self._lock:
            self._counter += 1
            self._latest[channel] = self._counter
            return Ticket(self, channel, self._counter)

    def latest(self, channel: str) -> int | None:
        """The number of the newest request on ``channel``."""
        with self._lock:
            return self._latest.get(channel)


_current = threading.local()


def _check_current(_module: Any, _inputs: Any) -> None:
    ticket = getattr(_current, "ticket", None)
    if ticket is not None:
        ticket.check()


class _Hook:
    """The global pre-hook, registered while at least one ticket is active anywhere: no
    cost to model calls otherwise."""

    _lock = threading.Lock()
    _users = 0
    _handle: Any = None

    @classmethod
    def acquire(cls) -> None:
        with cls._lock:
            if cls._users == 0:
                cls._handle = torch.nn.modules.module.register_module_forward_pre_hook(
                    _check_current
                )
            cls._users += 1

    @classmethod
    def release(cls) -> None:
        with cls._lock:
            cls._users -= 1
            if cls._users == 0:
                cls._handle.remove()
                cls._handle = None
