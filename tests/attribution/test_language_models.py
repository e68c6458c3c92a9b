"""Transformers without model-specific code: Hugging Face BERT, GPT-2 and Llama (built from
a config, random weights), a timm ViT and torchvision's ViT-B/16, explained by the AttnLRP
and CP-LRP composites. Independent references of the rules themselves are in
test_transformer_rules.py and test_attention.py; the comparison with LXT in
test_lxt_reference.py."""

from __future__ import annotations

import warnings

import pytest
import torch

from relscope.attribution import LRP
from relscope.attribution.text import TokenExplainer
from relscope.errors import ConfigError, RelscopeWarning
from support import zoo
from support.language_models import VOCABULARY, build, logits

MODELS = ("bert", "gpt2", "llama")
COMPOSITES = ("attnlrp", "cp_lrp")


def _ids(batch: int = 2, length: int = 10, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(1, VOCABULARY, (batch, length), generator=generator)


def _explain(model, ids, composite="attnlrp", mask=None, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("error", RelscopeWarning)  # no operation without its rule
        with TokenExplainer(model, composite, **options) as explain:
            result = explain(ids, attention_mask=mask)
            rules = {type(rule).__name__ for _, rule in explain.lrp.rules()}
            kinds = {layer.kind for layer in explain.lrp.layers}
    return result, rules, kinds


@pytest.mark.parametrize("composite", COMPOSITES)
@pytest.mark.parametrize("name", MODELS)
def test_language_models_get_their_rules_and_keep_their_output(name, composite):
    model = build(name)
    ids = _ids()
    result, rules, kinds = _explain(model, ids, composite)
    expected = logits(model, ids)
    if expected.ndim == 3:
        expected = expected[:, -1]
        assert result.position.tolist() == [9, 9]
    else:
        assert result.position is None
    torch.testing.assert_close(result.output, expected, rtol=0, atol=1e-12)
    assert result.relevance.shape == ids.shape
    assert result.embedding.shape[:2] == ids.shape
    torch.testing.assert_close(result.relevance, result.embedding.sum(-1))
    assert torch.isfinite(result.embedding).all()
    assert result.target.tolist() == expected.argmax(1).tolist()
    assert {"normalization", "matmul", "softmax", "dense"} <= kinds
    assert {"LayerNorm", "Bilinear", "Epsilon", "Pass"} <= rules
    assert ("Softmax" if composite == "attnlrp" else "Constant") in rules
    assert "attention" not in kinds  # scaled dot-product attention is written out


def test_cp_lrp_conserves_on_a_bias_free_llama():
    # Llama has no biases (RMSNorm, projections, head) and CP-LRP blocks the softmax: every
    # remaining rule conserves, so the relevance sums to the explained logit.
    model = build("llama")
    result, _, _ = _explain(model, _ids(3, 12, seed=4), "cp_lrp", eps=1e-12)
    logit = result.output.gather(1, result.target[:, None])[:, 0]
    torch.testing.assert_close(result.relevance.sum(1), logit, rtol=1e-6, atol=0)


def test_attnlrp_does_not_conserve_through_the_softmax():
    model = build("llama")
    result, _, _ = _explain(model, _ids(3, 12, seed=4), "attnlrp", eps=1e-12)
    logit = result.output.gather(1, result.target[:, None])[:, 0]
    assert not torch.allclose(result.relevance.sum(1), logit, rtol=1e-4)


@pytest.mark.parametrize("name", MODELS)
def test_padding_gets_no_relevance_and_changes_nothing_else(name):
    model = build(name)
    ids = _ids(2, 10, seed=1)
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0
    result, _, _ = _explain(model, ids, mask=mask)
    assert result.relevance[1, 7:].abs().max() == 0
    alone, _, _ = _explain(model, ids[1:, :7])
    torch.testing.assert_close(result.output[1:], alone.output, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(result.embedding[1:, :7], alone.embedding, rtol=1e-6, atol=1e-10)
    if result.position is not None:
        assert result.position.tolist() == [9, 6]


@pytest.mark.parametrize("name", ["gpt2", "llama"])
def test_causal_models_give_nothing_to_tokens_after_the_explained_position(name):
    model = build(name)
    result, _, _ = _explain(model, _ids(2, 10, seed=2), position=4)
    assert result.position.tolist() == [4, 4]
    assert result.relevance[:, 5:].abs().max() == 0
    assert result.relevance[:, :5].abs().sum() > 0


@pytest.mark.parametrize("name", MODELS)
def test_eager_and_fused_attention_give_the_same_relevance(name):
    # Hugging Face's own matmul-softmax-matmul code and F.scaled_dot_product_attention
    # (written out by relscope) are one computation and get the same rules.
    ids = _ids(2, 9, seed=3)
    fused, _, _ = _explain(build(name, attention="sdpa"), ids)
    eager, _, _ = _explain(build(name, attention="eager"), ids)
    # Llama's eager code takes its softmax in float32: agreement to that precision.
    torch.testing.assert_close(fused.output, eager.output, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(fused.embedding, eager.embedding, rtol=1e-4, atol=1e-7)


def test_token_explainer_errors_are_one_line():
    model = build("gpt2")
    with TokenExplainer(model) as explain:
        with pytest.raises(ConfigError, match="integer tensor"):
            explain(torch.rand(1, 4))
        with pytest.raises(ConfigError, match=r"\(batch, tokens\)"):
            explain(torch.ones(4, dtype=torch.long))
        with pytest.raises(ConfigError, match="does not match"):
            explain(_ids(), attention_mask=torch.ones(2, 3))
    with pytest.raises(ConfigError, match="get_input_embeddings"):
        TokenExplainer(torch.nn.Linear(3, 2))
    with TokenExplainer(model, position=20) as explain:
        with pytest.raises(ConfigError, match="past the 10 tokens"):
            explain(_ids())


def _timm_vit():
    zoo.import_torchvision()
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    return timm.create_model(
        "vit_tiny_patch16_224", pretrained=False, num_classes=10, img_size=32, patch_size=8
    ).eval()


@pytest.mark.parametrize("composite", COMPOSITES)
def test_a_timm_vision_transformer_is_traced_with_its_attention_written_out(composite):
    model = _timm_vit().double()
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RelscopeWarning)
        with LRP(model, composite) as lrp:
            output, relevance = lrp(x)
            traced = lrp._traced is not None
            kinds = {layer.kind for layer in lrp.layers}
    assert traced
    assert {"softmax", "matmul", "normalization"} <= kinds and "attention" not in kinds
    with torch.no_grad():
        torch.testing.assert_close(output, model(x), rtol=0, atol=1e-10)
    assert torch.isfinite(relevance).all() and relevance.abs().sum() > 0
    # The same rules applied while the model runs (no tracing) give the same relevance.
    with LRP(model, composite, trace=False) as lrp:
        _, eager = lrp(x)
    torch.testing.assert_close(eager, relevance, rtol=1e-9, atol=1e-12)


def test_torchvision_vit_b_16_with_gamma_on_its_linear_layers():
    vision_transformer = zoo.import_torchvision().models.vision_transformer
    torch.manual_seed(0)
    model = vision_transformer.vit_b_16(weights=None).eval()
    with torch.no_grad():
        torch.nn.init.normal_(model.heads.head.weight, 0.0, 0.02)
    x = torch.randn(1, 3, 224, 224)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RelscopeWarning)
        with LRP(model, "attnlrp", gamma=0.25) as lrp:
            output, relevance = lrp(x)
            rules = {layer.name: type(rule).__name__ for layer, rule in lrp.rules()}
    assert rules["heads.head"] == "Epsilon"
    assert rules["encoder.layers.encoder_layer_0.self_attention.in_proj"] == "Gamma"
    assert rules["encoder.layers.encoder_layer_11.mlp.3"] == "Gamma"
    with torch.no_grad():
        torch.testing.assert_close(output, model(x), rtol=1e-4, atol=1e-5)
    assert relevance.shape == x.shape and torch.isfinite(relevance).all()
