"""A dataset whose reading process dies once, mid-run (the kill test of the Ray backend)."""

from __future__ import annotations

import os
import signal
from typing import Any


class DiesOnce:
    """``inner`` (an image dataset), except that the process reading sample ``at`` is
    killed (SIGKILL, as by the kernel's out-of-memory killer or a lost node), once per
    ``marker`` file: the first process to create the marker dies, every later one lives."""

    def __init__(self, inner: Any, marker: str, at: int) -> None:
        self.inner = inner
        self.marker = marker
        self.at = at
        self.multi_label = inner.multi_label

    def __len__(self) -> int:
        return len(self.inner)

    def labels(self) -> Any:
        return self.inner.labels()

    def __getitem__(self, index: int) -> Any:
        if index == self.at:
            try:
                os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                pass
            else:
                os.kill(os.getpid(), signal.SIGKILL)
        return self.inner[index]
