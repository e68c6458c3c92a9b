"""Small Hugging Face models built from a config with random weights (nothing downloaded).

``transformers`` imports torchvision when it is installed, which needs the work-around of
:func:`support.zoo.import_torchvision` first.
"""

from __future__ import annotations

import torch
from torch import nn

from support.zoo import import_torchvision

VOCABULARY = 100


def transformers():
    import_torchvision()
    import transformers as module

    module.logging.set_verbosity_error()
    return module


def build(name: str, *, attention: str = "sdpa", seed: int = 0) -> nn.Module:
    """``bert`` (3 classes), ``gpt2`` or ``llama`` (next-token logits), float64, eval mode."""
    hf = transformers()
    torch.manual_seed(seed)
    common = {"vocab_size": VOCABULARY, "attn_implementation": attention}
    if name == "bert":
        config = hf.BertConfig(
            hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
            max_position_embeddings=64, num_labels=3, **common,
        )  # fmt: skip
        model = hf.BertForSequenceClassification(config)
    elif name == "gpt2":
        config = hf.GPT2Config(
            n_embd=32, n_layer=2, n_head=2, n_positions=64, bos_token_id=0, eos_token_id=0,
            **common,
        )  # fmt: skip
        model = hf.GPT2LMHeadModel(config)
    elif name == "llama":
        config = hf.LlamaConfig(
            hidden_size=32, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
            intermediate_size=64, max_position_embeddings=64, bos_token_id=0, eos_token_id=0,
            **common,
        )  # fmt: skip
        model = hf.LlamaForCausalLM(config)
    else:
        raise KeyError(name)
    return model.double().eval()


def logits(model: nn.Module, ids: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=ids, attention_mask=mask).logits
