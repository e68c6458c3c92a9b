"""Attention rollout (Abnar & Zuidema, ACL 2020): how much each input token reaches one token
(the class token) through the attention layers, residual connections included.

Per attention layer ``l`` with weights ``A_l`` (``(batch, heads, tokens, tokens)``): average
the heads, add the identity for the residual connection and renormalize the rows,
``Â_l = (mean_h A_l + I) / 2``; then multiply over the layers in execution order,
``R = Â_L ... Â_2 Â_1``. Row ``token`` of ``R`` (the class token), without its first
``prefix`` columns (class and other extra tokens), scores the patches; they are laid out
row-major on the grid of the input's aspect ratio and upsampled to the input.

The weights are read while the model runs, from every ``nn.MultiheadAttention`` (asked for
per-head weights by a hook, then answering its caller as asked) and every call of
``F.scaled_dot_product_attention`` (written out, so that its weights exist). The method does
not depend on the target: every class gets the same map.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from relscope.attribution.attributors import Attributor, register_attributor
from relscope.attribution.core import Attribution, Target, class_scores
from relscope.attribution.lrp.attention import scaled_dot_product_attention
from relscope.errors import ConfigError

__all__ = ["AttentionRollout", "attention_rollout", "recorded_attention"]

_UPSAMPLE = ("nearest", "bilinear", None)
#: ``nn.MultiheadAttention.forward``'s arguments after query, key and value, in order.
_MHA_OPTIONS = ("key_padding_mask", "need_weights", "attn_mask", "average_attn_weights")


def attention_rollout(weights: Sequence[torch.Tensor]) -> torch.Tensor:
    """The rollout ``Â_L ... Â_1`` of per-layer attention weights ``(batch, heads, T, T)``
    (first layer first): ``(batch, T, T)``, rows summing to one."""
    if not weights:
        raise ConfigError("attention rollout needs the weights of at least one attention layer")
    result = None
    for layer in weights:
        if layer.ndim != 4 or layer.shape[-1] != layer.shape[-2]:
            raise ConfigError(
                "attention rollout needs self-attention weights (batch, heads, tokens, tokens), "
                f"got shape {tuple(layer.shape)}"
            )
        mixed = layer.mean(1)
        mixed = mixed + torch.eye(mixed.shape[-1], dtype=mixed.dtype, device=mixed.device)
        mixed = mixed / mixed.sum(-1, keepdim=True)
        if result is not None and result.shape != mixed.shape:
            raise ConfigError(
                f"attention layers disagree on the number of tokens: {tuple(result.shape)} then "
                f"{tuple(mixed.shape)}"
            )
        result = mixed if result is None else mixed @ result
    assert result is not None
    return result


class _Recorder(TorchFunctionMode):
    """Writes ``F.scaled_dot_product_attention`` out and keeps its weights."""

    def __init__(self, found: list[torch.Tensor]) -> None:
        super().__init__()
        self.found = found
        self.inside_module = 0  # > 0 while an nn.MultiheadAttention runs (its hook records)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is F.scaled_dot_product_attention and not self.inside_module:
            return self._attention(*args, **kwargs)
        return func(*args, **kwargs)

    def _attention(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        return scaled_dot_product_attention(
            *args, **kwargs, observe=lambda weights: self.found.append(weights.detach())
        )


@contextlib.contextmanager
def recorded_attention(model: nn.Module) -> Iterator[list[torch.Tensor]]:
    """Within the block, every attention layer ``model`` runs appends its weights
    ``(batch, heads, T, S)`` to the yielded list, in execution order; what the model
    computes does not change (to rounding)."""
    found: list[torch.Tensor] = []
    recorder = _Recorder(found)
    asked: list[tuple[bool, bool]] = []

    def before(module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        kwargs = dict(kwargs)
        for name, value in zip(_MHA_OPTIONS, args[3:], strict=False):
            kwargs[name] = value
        asked.append((kwargs.get("need_weights", True), kwargs.get("average_attn_weights", True)))
        kwargs.update(need_weights=True, average_attn_weights=False)
        recorder.inside_module += 1
        return args[:3], kwargs

    def after(module: nn.Module, args: tuple, kwargs: dict, output: Any) -> Any:
        recorder.inside_module -= 1
        need, average = asked.pop()
        out, weights = output
        found.append(weights.detach())
        if not need:
            return out, None
        return out, weights.mean(1) if average else weights

    handles = []
    try:
        for module in model.modules():
            if isinstance(module, nn.MultiheadAttention):
                handles.append(module.register_forward_pre_hook(before, with_kwargs=True))
                handles.append(module.register_forward_hook(after, with_kwargs=True))
        with recorder:
            yield found
    finally:
        for handle in handles:
            handle.remove()


@register_attributor("attention_rollout")
class AttentionRollout(Attributor):
    """Attention rollout of a transformer over patches: ``(batch, 1, *spatial)``.

    Parameters
    ----------
    token:
        The token whose row of the rollout is read (the class token: 0).
    prefix:
        Leading tokens that are not patches (class token, registers), dropped before the
        rest is laid out on the patch grid.
    upsample:
        ``"nearest"`` (each patch one block of the input), ``"bilinear"``, or ``None`` for
        the map on the patch grid.

    The target is not used: rollout explains the class token, not a class.

    Examples
    --------
    >>> from relscope.data.builtin import mnist_vit
    >>> output, rollout = AttentionRollout()(mnist_vit().eval(), torch.rand(2, 1, 28, 28))
    >>> tuple(rollout.shape)
    (2, 1, 28, 28)
    """

    def __init__(self, token: int = 0, prefix: int = 1, upsample: str | None = "nearest") -> None:
        for name, value in (("token", token), ("prefix", prefix)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"{name} must be an integer >= 0, got {value!r}")
        if upsample not in _UPSAMPLE:
            raise ConfigError(f"upsample must be 'nearest', 'bilinear' or None, got {upsample!r}")
        self.token = token
        self.prefix = prefix
        self.upsample = upsample

    def attribute(self, model: nn.Module, inputs: torch.Tensor, target: Target) -> Attribution:
        spatial = tuple(inputs.shape[2:])
        if len(spatial) not in (1, 2):
            raise ConfigError(
                "attention rollout needs inputs (batch, channels, length) or (batch, channels, "
                f"height, width), got shape {tuple(inputs.shape)}"
            )
        with recorded_attention(model) as found, torch.no_grad():
            output = model(inputs)
        class_scores(output)
        if not found:
            raise ConfigError(
                "attention rollout found no attention layer (nn.MultiheadAttention or "
                "F.scaled_dot_product_attention) in the model's forward pass"
            )
        rollout = attention_rollout(found)
        tokens = rollout.shape[-1]
        if not self.token < tokens or not self.prefix < tokens:
            raise ConfigError(
                f"token {self.token} and prefix {self.prefix} must be below the number of "
                f"tokens, {tokens}"
            )
        scores = rollout[:, self.token, self.prefix :]
        grid = _grid(scores.shape[-1], spatial)
        relevance = scores.reshape(len(scores), 1, *grid).to(inputs.dtype)
        if self.upsample == "bilinear":
            mode = "linear" if len(grid) == 1 else "bilinear"
            relevance = F.interpolate(relevance, size=spatial, mode=mode, align_corners=False)
        elif self.upsample == "nearest":
            relevance = F.interpolate(relevance, size=spatial, mode="nearest")
        return Attribution(output.detach(), relevance)


def _grid(patches: int, spatial: tuple[int, ...]) -> tuple[int, ...]:
    """The patch grid of ``patches`` tokens in row-major order for inputs of ``spatial`` size."""
    if len(spatial) == 1:
        return (patches,)
    height, width = spatial
    rows = max(1, round(math.sqrt(patches * height / width)))
    if patches % rows:
        raise ConfigError(
            f"attention rollout: {patches} patch tokens do not form a grid of the input's "
            f"aspect ratio {height} x {width}; set prefix= to the number of extra tokens"
        )
    return rows, patches // rows
