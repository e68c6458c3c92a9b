"""Caches of one session's work: results by input and configuration, bounded in bytes.

Inputs are keyed by a digest of their values (so the same sample, or the same uploaded
bytes, hit the same entries however the caller obtained the tensor), configurations by
their JSON form without the name (renamed copies compute the same relevance).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

import torch

from relscope.attribution.config import MethodConfig

__all__ = ["LRUCache", "config_key", "input_key", "tensor_bytes"]

V = TypeVar("V")


def input_key(x: torch.Tensor) -> str:
    """A digest of a tensor's shape, dtype and values."""
    data = x.detach().cpu().contiguous()
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{tuple(data.shape)}{data.dtype}".encode())
    digest.update(data.view(torch.uint8).numpy().tobytes() if data.numel() else b"")
    return digest.hexdigest()


def config_key(config: MethodConfig) -> str:
    """A configuration's identity for caching: everything but its name."""
    return json.dumps(config.to_dict() | {"name": ""}, sort_keys=True, default=str)


def tensor_bytes(value: Any) -> int:
    """The bytes the tensors in ``value`` (a tensor, dataclass, dict, list) hold, roughly."""
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, bytes):
        return len(value)
    if isinstance(value, dict):
        return sum(tensor_bytes(v) for v in value.values())
    if isinstance(value, list | tuple):
        return sum(tensor_bytes(v) for v in value)
    fields = getattr(value, "__dataclass_fields__", None)
    if fields is not None:
        return sum(tensor_bytes(getattr(value, name)) for name in fields)
    return 0


class LRUCache(Generic[V]):
    """Least-recently-used entries up to ``max_bytes`` (as ``size`` measures them) and
    ``max_entries``; thread-safe. An entry larger than the whole budget is not kept."""

    def __init__(
        self,
        max_bytes: int,
        max_entries: int = 1024,
        size: Callable[[Any], int] = tensor_bytes,
    ) -> None:
        self.max_bytes = int(max_bytes)
        self.max_entries = int(max_entries)
        self._size = size
        self._entries: OrderedDict[Hashable, tuple[V, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable) -> V | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return entry[0]

    def put(self, key: Hashable, value: V) -> V:
        size = self._size(value)
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            if size <= self.max_bytes:
                self._entries[key] = (value, size)
                self._bytes += size
            while self._entries and (
                self._bytes > self.max_bytes or len(self._entries) > self.max_entries
            ):
                _, (_, dropped) = self._entries.popitem(last=False)
                self._bytes -= dropped
        return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bytes(self) -> int:
        """The bytes the entries hold."""
        return self._bytes
