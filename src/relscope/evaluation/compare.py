"""Side-by-side comparison of attribution methods (and models) on a few samples.

The application pattern of the software-patterns paper: explain the same inputs with several
methods, look at the heatmaps next to each other with each model's prediction, and judge
each method by a faithfulness score (the area over its most-relevant-first perturbation
curve, AOPC: larger means removing what the method marks as relevant hurts the score more).

>>> grid = compare(model, x, {"LRP": "lrp", "Gradient": "gradient"})   # doctest: +SKIP
>>> grid.save("methods.png")                                           # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from PIL import Image, ImageDraw, ImageFont
from torch import nn

from relscope.attribution import Attributor, get_attributor
from relscope.attribution.core import target_indices
from relscope.errors import ConfigError
from relscope.evaluation.perturbation import perturbation_curve
from relscope.render import get_style, save_image

__all__ = ["Comparison", "compare"]

Methods = Mapping[str, Attributor | str] | Sequence[str]


@dataclass
class Comparison:
    """Attributions of several methods x models for one batch, with predictions and scores.

    ``attributions[model][method]`` is the attribution of the batch; ``outputs[model]`` the
    model output; ``targets[model]`` the explained class per sample; ``scores[model][method]``
    the per-sample AOPC (``None`` when not computed).
    """

    inputs: torch.Tensor
    images: npt.NDArray[np.uint8]
    methods: list[str]
    models: list[str]
    attributions: dict[str, dict[str, torch.Tensor]]
    outputs: dict[str, torch.Tensor]
    targets: dict[str, torch.Tensor]
    scores: dict[str, dict[str, torch.Tensor | None]]
    class_names: Sequence[str] | None = None
    labels: torch.Tensor | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def probability(self, model: str) -> torch.Tensor:
        """Softmax probability of the explained class per sample."""
        probabilities = torch.softmax(self.outputs[model].double(), 1)
        return probabilities.gather(1, self.targets[model][:, None])[:, 0]

    def _name(self, index: int) -> str:
        if self.class_names is not None and 0 <= index < len(self.class_names):
            return str(self.class_names[index])
        return str(index)

    def render(
        self, *, style: str = "heatmap", scale: int = 1, **style_options: Any
    ) -> npt.NDArray[np.uint8]:
        """The grid as one ``uint8`` image ``(H, W, 3)``.

        Rows are (model, sample); the first column shows the input with the true label
        (when given), the next ones each method's picture in ``style`` (a registered style
        of :mod:`relscope.render.styles`) captioned with the model's prediction,
        probability and the method's AOPC.
        """
        if not isinstance(scale, int) or scale < 1:
            raise ConfigError(f"scale must be an integer >= 1, got {scale!r}")
        draw_style = get_style(style)
        height, width = self.images.shape[1:3]
        cell_h, cell_w = height * scale, width * scale
        font = ImageFont.load_default()
        line = _text_height(font) + 4
        pad = 4
        columns = 1 + len(self.methods)
        rows = len(self.models) * len(self.images)
        canvas = Image.new(
            "RGB",
            (pad + columns * (cell_w + pad), line + pad + rows * (cell_h + 2 * line + pad)),
            "white",
        )
        draw = ImageDraw.Draw(canvas)
        for column, title in enumerate(["input", *self.methods]):
            draw.text((pad + column * (cell_w + pad), 2), _fit(title, cell_w, font), "black", font)
        for model_index, model in enumerate(self.models):
            pictures = {
                method: draw_style(
                    _display(self.attributions[model][method]), self.images, **style_options
                )
                for method in self.methods
            }
            probability = self.probability(model)
            for sample in range(len(self.images)):
                row = model_index * len(self.images) + sample
                top = line + pad + row * (cell_h + 2 * line + pad)
                cells = [self.images[sample]] + [pictures[m][sample] for m in self.methods]
                for column, picture in enumerate(cells):
                    left = pad + column * (cell_w + pad)
                    canvas.paste(Image.fromarray(_upscale(picture, scale)), (left, top))
                    under = top + cell_h + 2
                    if column == 0:
                        first = model if len(self.models) > 1 else f"sample {sample}"
                        second = (
                            f"true {self._name(int(self.labels[sample]))}"
                            if self.labels is not None
                            else ""
                        )
                    else:
                        first = (
                            f"{self._name(int(self.targets[model][sample]))} "
                            f"p={float(probability[sample]):.2f}"
                        )
                        score = self.scores[model][self.methods[column - 1]]
                        second = "" if score is None else f"AOPC {float(score[sample]):.3f}"
                    draw.text((left, under), _fit(first, cell_w, font), "black", font)
                    draw.text((left, under + line), _fit(second, cell_w, font), "black", font)
        return np.asarray(canvas, dtype=np.uint8).copy()

    def save(self, path: str | Path, **render_options: Any) -> Path:
        """Render and write the grid as a PNG (atomically)."""
        return save_image(path, self.render(**render_options))


def _display(attribution: torch.Tensor) -> np.ndarray:
    return attribution.detach().double().cpu().numpy()


def _upscale(picture: np.ndarray, scale: int) -> np.ndarray:
    return picture if scale == 1 else picture.repeat(scale, 0).repeat(scale, 1)


def _text_height(font: Any) -> int:
    box = font.getbbox("Ag")
    return int(box[3] - box[1])


def _fit(text: str, width: int, font: Any) -> str:
    """``text`` shortened with an ellipsis so that it fits ``width`` pixels."""
    if font.getlength(text) <= width:
        return text
    while text and font.getlength(text + "…") > width:
        text = text[:-1]
    return text + "…" if text else ""


def _methods(methods: Methods) -> dict[str, Attributor]:
    if isinstance(methods, Mapping):
        items = list(methods.items())
    elif isinstance(methods, Sequence) and not isinstance(methods, str):
        items = [(name, name) for name in methods]
    else:
        raise ConfigError("methods must be a mapping of label -> attributor, or attributor names")
    if not items:
        raise ConfigError("compare needs at least one method")
    out = {}
    for label, method in items:
        if isinstance(method, str):
            method = get_attributor(method)
        if not isinstance(method, Attributor):
            raise ConfigError(f"method {label!r} is not an attributor: {type(method).__name__}")
        out[str(label)] = method
    return out


def _images(inputs: torch.Tensor, images: Any) -> npt.NDArray[np.uint8]:
    if images is None:
        # Each input shown with its own value range (min-max), channels last.
        x = inputs.detach().double().cpu()
        low = x.flatten(1).amin(1).reshape(-1, *[1] * (x.ndim - 1))
        high = x.flatten(1).amax(1).reshape(-1, *[1] * (x.ndim - 1))
        x = (x - low) / (high - low).clamp(min=1e-12)
        if x.ndim != 4 or x.shape[1] not in (1, 3):
            raise ConfigError(
                f"inputs of shape {tuple(inputs.shape)} are not images; pass images= to show"
            )
        x = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x
        return np.round(x.permute(0, 2, 3, 1).numpy() * 255).astype(np.uint8)
    array = np.asarray(images)
    if array.dtype != np.uint8 or array.ndim != 4 or array.shape[-1] != 3:
        raise ConfigError(f"images must be uint8 (B, H, W, 3), got {array.dtype} {array.shape}")
    if array.shape[0] != inputs.shape[0]:
        raise ConfigError(f"{array.shape[0]} images for {inputs.shape[0]} inputs")
    return array


def compare(
    models: nn.Module | Mapping[str, nn.Module],
    inputs: torch.Tensor,
    methods: Methods,
    target: Any = None,
    *,
    images: Any = None,
    labels: Any = None,
    class_names: Sequence[str] | None = None,
    faithfulness: bool = True,
    patch: int = 8,
    steps: int = 16,
    fill: Any = "mean",
    batch_size: int = 64,
) -> Comparison:
    """Explain ``inputs`` with every method on every model.

    Parameters
    ----------
    models:
        One model or ``{label: model}``.
    methods:
        ``{label: attributor or registered name}`` or a list of registered names.
    target:
        Explained class (see the attributors); ``None``: each model's own prediction.
    images:
        ``uint8 (B, H, W, 3)`` pictures of the inputs to show (default: the inputs
        min-max scaled per sample).
    labels, class_names:
        True labels to print under the inputs, and names for class indices.
    faithfulness, patch, steps, fill, batch_size:
        Score each method by the AOPC of its most-relevant-first perturbation curve
        (regions of ``patch`` pixels removed in ``steps`` steps, replaced by ``fill``).
    """
    if isinstance(models, nn.Module):
        models = {"model": models}
    if not isinstance(models, Mapping) or not models:
        raise ConfigError("models must be a model or a non-empty mapping of label -> model")
    if not isinstance(inputs, torch.Tensor) or not inputs.is_floating_point() or inputs.ndim < 3:
        raise ConfigError("inputs must be a floating point batch (B, C, *spatial)")
    attributors = _methods(methods)
    shown = _images(inputs, images)
    attributions: dict[str, dict[str, torch.Tensor]] = {}
    outputs, targets, scores = {}, {}, {}
    for name, model in models.items():
        with torch.no_grad():
            output = model(inputs)
        chosen = output.argmax(1) if target is None else _target(target, output)
        outputs[name], targets[name] = output.detach(), chosen
        attributions[name], scores[name] = {}, {}
        for label, attributor in attributors.items():
            attribution = attributor(model, inputs, chosen).relevance.detach()
            attributions[name][label] = attribution
            # Location methods give (B, 1, *spatial): rank regions by that map.
            ranking = attribution[:, 0] if attribution.shape[1] != inputs.shape[1] else attribution
            scores[name][label] = (
                perturbation_curve(
                    model, inputs, ranking, chosen, order="most", patch=patch,
                    steps=steps, fill=fill, batch_size=batch_size,
                ).aopc()
                if faithfulness
                else None
            )  # fmt: skip
    return Comparison(
        inputs=inputs.detach(),
        images=shown,
        methods=list(attributors),
        models=list(models),
        attributions=attributions,
        outputs=outputs,
        targets=targets,
        scores=scores,
        class_names=class_names,
        labels=None if labels is None else torch.as_tensor(labels).reshape(-1),
        options={"patch": patch, "steps": steps, "fill": fill},
    )


def _target(target: Any, output: torch.Tensor) -> torch.Tensor:
    try:
        return target_indices(target, output).clone()
    except ConfigError:  # one message for every way a comparison's target can be wrong
        batch, classes = output.shape
        raise ConfigError(f"target must be {batch} class indices in 0..{classes - 1}") from None
