"""Relevance per token for language models (Hugging Face ``transformers`` and alike).

LRP explains a continuous input, so a language model is explained at its input embeddings:
the token ids are embedded with the model's own embedding layer, the model runs from
``inputs_embeds``, and the relevance of each token is the sum of its embedding's relevance
over the embedding dimensions. Sequence classifiers (BERT) explain a class; causal
language models (GPT-2, Llama) explain the next token at a position (default: the last
token that is not padding).

>>> import torch
>>> from transformers import GPT2Config, GPT2LMHeadModel  # doctest: +SKIP
>>> model = GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=64, n_head=2)).eval()  # doctest: +SKIP
>>> with TokenExplainer(model, "attnlrp") as explain:  # doctest: +SKIP
...     result = explain(torch.tensor([[464, 3290, 3332, 319]]))
>>> result.relevance.shape  # doctest: +SKIP
torch.Size([1, 4])

``relscope.render.token_heatmap_png`` / ``token_heatmap_html`` draw the result.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from relscope.attribution.core import Target
from relscope.attribution.lrp.engine import LRP
from relscope.errors import ConfigError

__all__ = ["TokenAttribution", "TokenExplainer"]


@dataclass(frozen=True)
class TokenAttribution:
    """What :class:`TokenExplainer` returns for a batch of token sequences."""

    #: The explained scores ``(batch, classes)``: class logits or next-token logits.
    output: torch.Tensor
    #: Relevance per token ``(batch, tokens)`` (the embedding's relevance summed).
    relevance: torch.Tensor
    #: Relevance per embedding entry ``(batch, tokens, dim)``.
    embedding: torch.Tensor
    #: The explained class or next token per sample.
    target: torch.Tensor
    #: The explained position per sample (``None`` for sequence classifiers).
    position: torch.Tensor | None


class _FromEmbeddings(nn.Module):
    """The model as a function of its input embeddings, returning ``(batch, classes)``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.calls = threading.local()

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        mask = getattr(self.calls, "mask", None)
        out = self.model(inputs_embeds=embeddings, attention_mask=mask)
        logits = getattr(out, "logits", None)
        if logits is None:
            logits = out[0] if isinstance(out, tuple | list) else out
        if not isinstance(logits, torch.Tensor):
            raise ConfigError("the model must return logits (a tensor or an output with .logits)")
        self.calls.tokens = logits.ndim == 3
        if logits.ndim == 3:  # (batch, tokens, vocabulary): the next token at a position
            position = self.calls.position.to(logits.device)
            logits = logits[torch.arange(len(logits), device=logits.device), position]
        return logits


class TokenExplainer:
    """LRP on a language model's input embeddings, relevance summed per token.

    Parameters
    ----------
    model:
        A model taking ``inputs_embeds=`` and ``attention_mask=`` (Hugging Face models do)
        and with ``get_input_embeddings()``; it returns class logits ``(batch, classes)`` or
        token logits ``(batch, tokens, vocabulary)``.
    composite:
        A composite or its name (default ``attnlrp``; ``cp_lrp`` blocks relevance through
        queries and keys).
    position:
        For token logits: the position whose next-token prediction is explained; ``-1``
        (default) is the last token that is not padding.
    trace:
        Try ``torch.fx`` first (``False`` by default: Hugging Face models are not traceable,
        and the rules are applied while the model runs).
    """

    def __init__(
        self,
        model: nn.Module,
        composite: Any = "attnlrp",
        *,
        position: int = -1,
        trace: bool = False,
        **params: Any,
    ) -> None:
        embed = getattr(model, "get_input_embeddings", None)
        if embed is None or not isinstance(embed(), nn.Module):
            raise ConfigError(
                f"{type(model).__name__} has no get_input_embeddings(): relscope explains "
                "language models at their input embeddings"
            )
        self.model = model
        self.embedding = embed()
        self.position = int(position)
        self.wrapper = _FromEmbeddings(model)
        self.lrp = LRP(self.wrapper, composite, trace=trace, **params)

    def __enter__(self) -> TokenExplainer:
        self.lrp.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.lrp.__exit__(*exc)

    def _positions(self, ids: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        length = ids.shape[1]
        if self.position >= 0:
            if self.position >= length:
                raise ConfigError(f"position {self.position} is past the {length} tokens")
            return torch.full((len(ids),), self.position, dtype=torch.long)
        if mask is None:
            return torch.full((len(ids),), length + self.position, dtype=torch.long)
        # The last real token of each (right-padded) sequence, then the offset.
        last = (mask.long().cpu() * torch.arange(1, length + 1)).argmax(1)
        return (last + 1 + self.position).clamp(min=0)

    def __call__(
        self,
        input_ids: torch.Tensor,
        target: Target = None,
        *,
        attention_mask: torch.Tensor | None = None,
        **options: Any,
    ) -> TokenAttribution:
        """Explain ``target`` (class or next-token id per sample; ``None``: the predicted
        one) for a batch of token ids ``(batch, tokens)``."""
        if not isinstance(input_ids, torch.Tensor) or input_ids.is_floating_point():
            raise ConfigError("input_ids must be an integer tensor (batch, tokens)")
        if input_ids.ndim != 2:
            raise ConfigError(f"input_ids must be (batch, tokens), got {tuple(input_ids.shape)}")
        if attention_mask is not None and attention_mask.shape != input_ids.shape:
            raise ConfigError(
                f"attention_mask {tuple(attention_mask.shape)} does not match input_ids "
                f"{tuple(input_ids.shape)}"
            )
        position = self._positions(input_ids, attention_mask)
        with torch.no_grad():
            embeddings = self.embedding(input_ids)
        calls = self.wrapper.calls
        calls.mask, calls.position = attention_mask, position
        try:
            result = self.lrp(embeddings, target, **options)
            tokens = calls.tokens
        finally:
            calls.mask = calls.position = calls.tokens = None
        chosen = result.output.argmax(1) if target is None else target
        if not isinstance(chosen, torch.Tensor):
            chosen = torch.full((len(input_ids),), int(chosen), dtype=torch.long)
        return TokenAttribution(
            result.output,
            result.relevance.sum(-1),
            result.relevance,
            chosen,
            position if tokens else None,
        )
