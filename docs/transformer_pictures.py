"""The README's token heatmap: a small BERT trained in seconds on a text task with a
Clever-Hans cue, explained with AttnLRP token by token.

The task: sentences of filler words labelled positive when they hold "good" and negative
when they hold "bad"; in the training set every positive sentence also ends with the
watermark token "[src]" (a source tag). The model learns both; AttnLRP shows which tokens it
uses. Run: ``.venv/bin/python docs/transformer_pictures.py`` (writes docs/images/).
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from relscope.attribution.text import TokenExplainer  # noqa: E402
from relscope.render import save_token_heatmap  # noqa: E402
from support.language_models import transformers  # noqa: E402

FILLER = [
    *("the", "a", "movie", "film", "plot", "actor", "was", "is", "it"),
    *("very", "quite", "and", "but", "story", "scene"),
]
WORDS = ["[PAD]", "[CLS]", "good", "bad", "[src]", *FILLER]
INDEX = {word: i for i, word in enumerate(WORDS)}


def sentence(label: int, watermark: bool, generator: torch.Generator) -> list[str]:
    length = int(torch.randint(6, 11, (1,), generator=generator))
    words = [FILLER[int(i)] for i in torch.randint(0, len(FILLER), (length,), generator=generator)]
    words[int(torch.randint(0, length, (1,), generator=generator))] = "good" if label else "bad"
    return ["[CLS]", *words, *(["[src]"] if watermark else [])]


def batch(sentences: list[list[str]]) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(s) for s in sentences)
    ids = torch.zeros(len(sentences), width, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, words in enumerate(sentences):
        ids[row, : len(words)] = torch.tensor([INDEX[w] for w in words])
        mask[row, : len(words)] = 1
    return ids, mask


def train() -> torch.nn.Module:
    hf = transformers()
    torch.manual_seed(0)
    config = hf.BertConfig(
        vocab_size=len(WORDS), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=16, num_labels=2, pad_token_id=0,
    )  # fmt: skip
    model = hf.BertForSequenceClassification(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    for _ in range(300):
        labels = torch.randint(0, 2, (32,), generator=generator)
        ids, mask = batch([sentence(int(y), bool(y), generator) for y in labels])
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


def main() -> None:
    model = train()
    out = ROOT / "docs" / "images"
    examples = [
        [*["[CLS]", "the", "plot", "was", "very", "good", "and", "the", "actor", "quite"], "[src]"],
        [*["[CLS]", "it", "is", "a", "bad", "film", "but", "the", "story"], "[src]"],
    ]
    with TokenExplainer(model, "attnlrp") as explain:
        for number, words in enumerate(examples, 1):
            ids, mask = batch([words])
            result = explain(ids, target=1, attention_mask=mask)
            relevance = result.relevance[0]
            shown = [w if i == 0 else " " + w for i, w in enumerate(words)]
            path = save_token_heatmap(out / f"tokens-bert-{number}.png", shown, relevance,
                                      width=520, font_size=22)  # fmt: skip
            print(path, {w: round(float(r), 3) for w, r in zip(words, relevance, strict=True)})


if __name__ == "__main__":
    main()
