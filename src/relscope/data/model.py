"""Models by reference: ``package.module:factory`` plus an optional weights file, loaded safely.

Weights are read with ``torch.load(weights_only=True)`` (tensors and plain containers only:
a weights file cannot run code) or, for ``.safetensors``, with the ``safetensors`` package
when it is installed. Full unpickling, which runs whatever code the file names, happens only
with the explicit ``allow_pickle=True`` (``--allow-pickle`` on the command line). A
checkpoint dict that wraps the state dict under ``state_dict`` or ``model`` is unwrapped.

>>> model = load_model("torch.nn:Identity")
>>> type(model).__name__, model.training
('Identity', False)
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from relscope._atomic import atomic_path
from relscope.errors import ConfigError, PathError

__all__ = ["load_model", "load_weights", "save_weights"]

_WRAPPERS = ("state_dict", "model")


def load_model(
    reference: str,
    weights: str | os.PathLike[str] | None = None,
    *,
    params: Mapping[str, Any] | None = None,
    device: str | torch.device = "cpu",
    allow_pickle: bool = False,
) -> nn.Module:
    """Build ``reference`` (``package.module:factory``), load ``weights``, evaluation mode.

    ``params`` are keyword arguments of the factory. The model is returned on ``device``.
    ``allow_pickle`` lets :func:`load_weights` unpickle arbitrary objects (trusted files only).
    """
    module_name, _, attribute = reference.partition(":")
    if not module_name or not attribute:
        raise ConfigError(
            f"model reference must look like package.module:factory, got {reference!r}"
        )
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as error:
        raise ConfigError(f"model {reference!r}: cannot import {module_name!r} ({error})") from None
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ConfigError(f"model {reference!r}: {module_name} has no {attribute!r}") from None
    if not callable(target):
        raise ConfigError(f"model {reference!r}: {attribute!r} is not callable")
    try:
        model = target(**dict(params or {}))
    except TypeError as error:
        raise ConfigError(f"model {reference!r}: {error}") from None
    if not isinstance(model, nn.Module):
        raise ConfigError(
            f"model {reference!r}: the factory returned {type(model).__name__}, not a torch module"
        )
    if weights is not None:
        state = load_weights(weights, allow_pickle=allow_pickle)
        try:
            model.load_state_dict(state)
        except RuntimeError as error:
            first = " ".join(str(error).split())[:300]
            raise ConfigError(
                f"{weights}: the weights do not fit model {reference!r}: {first}"
            ) from None
    return model.eval().to(device)


def load_weights(
    path: str | os.PathLike[str], *, allow_pickle: bool = False
) -> dict[str, torch.Tensor]:
    """A state dict from a ``.pt``/``.pth``/``.bin`` or ``.safetensors`` file, on the CPU.

    ``allow_pickle=True`` unpickles anything (a whole pickled model included); it runs the
    code the file names, so only for files you trust.
    """
    path = Path(path)
    if not path.is_file():
        raise PathError(f"{path}: no such weights file")
    if path.suffix == ".safetensors":
        try:
            from safetensors.torch import load_file
        except ImportError:
            raise ConfigError(
                f"{path}: reading .safetensors needs the 'safetensors' package "
                "(pip install safetensors)"
            ) from None
        return dict(load_file(str(path), device="cpu"))
    try:
        state = torch.load(path, map_location="cpu", weights_only=not allow_pickle)
    except Exception as error:  # unpickling reports many kinds of failure
        message = " ".join(str(error).split())[:200]
        if allow_pickle:
            raise ConfigError(f"{path}: cannot read the weights file: {message}") from None
        raise ConfigError(
            f"{path}: not a safe weights file (tensors only; --allow-pickle reads trusted "
            f"pickles): {message}"
        ) from None
    if allow_pickle and isinstance(state, nn.Module):
        state = state.state_dict()
    for key in _WRAPPERS:
        if isinstance(state, Mapping) and isinstance(state.get(key), Mapping):
            state = state[key]
    if not isinstance(state, Mapping) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise ConfigError(f"{path}: expected a state dict (names -> tensors)")
    return dict(state)


def save_weights(model: nn.Module, path: str | os.PathLike[str]) -> Path:
    """Write ``model``'s state dict to ``path`` atomically (readable by :func:`load_weights`)."""
    path = Path(path)
    with atomic_path(path) as temporary:
        torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, temporary)
    return path
