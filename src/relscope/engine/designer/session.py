"""A design session: one model, its class names and its samples, for single-sample LRP design.

A session is built from a project (its ``model`` and ``model_weights``, label map and
dataset) with :meth:`DesignSession.from_project`, or from a model given directly. It lists
the model's layers for the segment ruler (:meth:`DesignSession.layers`), gives model inputs
from the project's samples (:meth:`~DesignSession.sample`) or from uploaded PNG/JPEG bytes
(:meth:`~DesignSession.upload`), and the top-10 class scores of an input
(:meth:`~DesignSession.predict`). One session may be used from several threads: a lock
serializes its model calls and dataset reads. Work for one input is cached (model outputs,
and explanations by configuration and target), and a request given a :class:`Ticket` from
:attr:`DesignSession.requests` stops early once a newer request on its channel begins.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from relscope.attribution.config import MethodConfig
from relscope.data.check import open_project_dataset
from relscope.data.dataset import ImageDataset
from relscope.data.labels import LabelMap, load_label_map
from relscope.data.model import load_model
from relscope.data.project import Project, load_project
from relscope.engine.designer.compare import Column, Grid, compare
from relscope.engine.designer.explain import Explainer, Explanation, TargetMode
from relscope.engine.designer.flipping import Curves, Stroke, flip, flipping_curves, stroke_mask
from relscope.engine.designer.inputs import MAX_UPLOAD_BYTES, ImageFiles, InputSettings
from relscope.engine.designer.layers import LayerInfo, model_layers
from relscope.engine.designer.neurons import (
    MAX_POSITIONS,
    ChannelMaps,
    NeuronData,
    ablate,
    channel_maps,
    neurons,
)
from relscope.engine.designer.supersede import NEVER, Requests, Ticket
from relscope.errors import ConfigError

__all__ = ["TOP_K", "DesignSession", "Prediction"]

#: How many classes :meth:`DesignSession.predict` returns.
TOP_K = 10

Samples = ImageDataset | Sequence[torch.Tensor]


@dataclass(frozen=True)
class Prediction:
    """One class of a prediction: its index, name, the model's output (``score``) and the
    softmax over all outputs (``probability``)."""

    index: int
    name: str
    score: float
    probability: float


class DesignSession:
    """A model with its class names and a sample source, for the designer.

    Parameters
    ----------
    model:
        The model (put in evaluation mode and on ``device``); it maps ``(B, C, H, W)`` to
        ``(B, classes)``.
    class_names:
        A label map or class names by index (optional; names default to the index).
    samples:
        An :class:`ImageDataset` (indexing applies its transform) or ``C x H x W`` tensors.
    input_shape:
        ``C x H x W`` of one input; default: the shape of the first sample, else the size
        and mode of ``input_settings``.
    input_settings:
        How uploads become inputs; default: the dataset's own settings
        (:meth:`InputSettings.of_dataset`), else resizing to ``input_shape``.
    device:
        Where the model runs; inputs are returned there.
    max_upload_bytes:
        The size limit of :meth:`upload`.
    cache_bytes:
        How much memory cached explanations may hold.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        class_names: LabelMap | Sequence[str] | None = None,
        samples: Samples | None = None,
        input_shape: Sequence[int] | None = None,
        input_settings: InputSettings | None = None,
        device: str | torch.device = "cpu",
        max_upload_bytes: int = MAX_UPLOAD_BYTES,
        cache_bytes: int = 512 * 2**20,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise ConfigError(f"the model must be a torch module, got {type(model).__name__}")
        self.device = torch.device(device)
        self.model = model.eval().to(self.device)
        self._names = _namer(class_names)
        self._samples = samples
        self.max_upload_bytes = max_upload_bytes
        self._lock = threading.RLock()
        self._layers: list[LayerInfo] | None = None
        self._labels: np.ndarray | None = None  # the dataset's, read once
        self.explainer = Explainer(self.model, cache_bytes=cache_bytes)
        #: Hands out the tickets by which newer requests supersede older ones.
        self.requests = Requests()
        if input_shape is None and samples is not None and len(samples) > 0:
            input_shape = tuple(self._read(0).shape)
        if input_shape is None and input_settings is not None and input_settings.size:
            channels = 1 if input_settings.mode == "L" else 3
            input_shape = (channels, *input_settings.size)
        self.input_shape = None if input_shape is None else tuple(int(n) for n in input_shape)
        if input_settings is None and self.input_shape is not None:
            if isinstance(samples, ImageDataset):
                input_settings = InputSettings.of_dataset(samples, self.input_shape)
            elif len(self.input_shape) == 3 and self.input_shape[0] in (1, 3):
                input_settings = InputSettings.for_shape(self.input_shape)
        self.input_settings = input_settings

    @classmethod
    def from_project(
        cls,
        project: Project | str | os.PathLike[str],
        *,
        device: str | torch.device = "cpu",
        allow_pickle: bool = False,
        allowed_roots: Sequence[str | os.PathLike[str]] = (),
        **options: Any,
    ) -> DesignSession:
        """A session on a project's model (``model`` + ``model_weights``), label map and
        dataset; ``project`` is a loaded :class:`Project` or a project file. ``options``
        are further keyword arguments of the constructor."""
        if not isinstance(project, Project):
            project = load_project(project, allowed_roots=allowed_roots)
        labels = load_label_map(project.label_map)
        dataset = open_project_dataset(project.dataset, labels)
        model = load_model(
            project.model, project.model_weights, device=device, allow_pickle=allow_pickle
        )
        return cls(model, class_names=labels, samples=dataset, device=device, **options)

    @classmethod
    def from_model(
        cls,
        reference: str,
        *,
        weights: str | os.PathLike[str] | None = None,
        label_map: str | os.PathLike[str] | None = None,
        images: str | os.PathLike[str] | None = None,
        input_size: Sequence[int] = (224, 224),
        mode: str = "RGB",
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        device: str | torch.device = "cpu",
        allow_pickle: bool = False,
        **options: Any,
    ) -> DesignSession:
        """A session without a project: the model ``reference`` (``package.module:factory``)
        with ``weights``, class names from ``label_map``, and the PNG/JPEG files below
        ``images`` as samples. Images and uploads are resized to ``input_size`` in ``mode``
        and normalized by ``mean``/``std`` when given."""
        labels = None if label_map is None else load_label_map(label_map)
        model = load_model(reference, weights, device=device, allow_pickle=allow_pickle)
        settings = InputSettings(
            tuple(input_size), "resize", "resize", mode, _normalizer(mean, std, mode)
        )
        samples = None if images is None else ImageFiles(images, settings)
        channels = 1 if mode == "L" else 3
        return cls(
            model,
            class_names=labels,
            samples=samples,
            input_shape=(channels, *settings.size),
            input_settings=settings,
            device=device,
            **options,
        )

    # ---------------------------------------------------------------------------- model
    def layers(self) -> list[LayerInfo]:
        """The model's layers in execution order, as segment indices count them."""
        with self._lock:
            if self._layers is None:
                if self.input_shape is None:
                    raise ConfigError(
                        "the session has no input shape (give input_shape, samples or "
                        "input_settings with a size)"
                    )
                self._layers = model_layers(self.model, self.input_shape)
            return list(self._layers)

    def class_name(self, index: int) -> str:
        """The name of class ``index`` (its index as text where no name is known)."""
        return self._names(index)

    def predict(
        self, x: torch.Tensor, k: int = TOP_K, *, ticket: Ticket = NEVER
    ) -> list[Prediction]:
        """The ``k`` highest-scoring classes of one input (``C x H x W`` or a batch of
        one), best first."""
        output = self.explainer.scores(self._batch(x), ticket)
        return self._top(output, k)

    def _top(self, output: Any, k: int) -> list[Prediction]:
        """The ``k`` highest-scoring classes of one output ``(1, classes)``, best first."""
        if not isinstance(output, torch.Tensor) or output.ndim != 2 or len(output) != 1:
            shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output)
            raise ConfigError(f"the model must return (batch, classes) scores, got {shape}")
        scores = output[0].detach().float().cpu()
        probabilities = torch.softmax(scores, 0)
        top = torch.topk(scores, min(k, len(scores)))
        return [
            Prediction(int(i), self.class_name(int(i)), float(v), float(probabilities[i]))
            for v, i in zip(top.values, top.indices, strict=True)
        ]

    def explain(
        self,
        x: torch.Tensor,
        config: MethodConfig | Mapping[str, Any] | str,
        *,
        target: TargetMode = "predicted",
        index: int | None = None,
        ticket: Ticket = NEVER,
    ) -> Explanation:
        """Explain one input (``C x H x W`` or a batch of one) with ``config``; see
        :meth:`Explainer.explain`. Engines are kept per configuration."""
        return self.explainer.explain(
            self._batch(x), config, target=target, index=index, ticket=ticket
        )

    def compare(
        self,
        configs: Sequence[MethodConfig | Mapping[str, Any] | str],
        columns: Sequence[Column],
        *,
        ticket: Ticket = NEVER,
    ) -> Grid:
        """Several configurations x several inputs/targets on one colour scale; see
        :func:`~relscope.engine.designer.compare.compare`."""
        columns = [Column(self._batch(c.x), c.target, c.index) for c in columns]
        return compare(self.explainer, configs, columns, ticket=ticket)

    def flip(
        self,
        x: torch.Tensor,
        *,
        strokes: Sequence[Stroke] = (),
        mask: torch.Tensor | None = None,
        fill: float | str = "mean",
        sigma: float = 3.0,
        k: int = TOP_K,
        ticket: Ticket = NEVER,
    ) -> tuple[torch.Tensor, list[Prediction]]:
        """The input with the brushed (or masked) pixels replaced, and its new top-``k``."""
        batch = self._batch(x)
        if mask is None:
            mask = stroke_mask(strokes, *batch.shape[2:])
        flipped = flip(batch, mask, fill, sigma=sigma)
        return flipped, self.predict(flipped, k, ticket=ticket)

    def curves(
        self,
        x: torch.Tensor,
        configs: Sequence[MethodConfig | Mapping[str, Any] | str],
        *,
        ticket: Ticket = NEVER,
        **options: Any,
    ) -> list[Curves]:
        """Most/least-relevant-first curves per configuration (see
        :func:`~relscope.engine.designer.flipping.flipping_curves`)."""
        return flipping_curves(self.explainer, self._batch(x), configs, ticket=ticket, **options)

    # -------------------------------------------------------------------------- neurons
    def neurons(
        self,
        x: torch.Tensor,
        config: MethodConfig | Mapping[str, Any] | str,
        layer: int | str,
        *,
        target: TargetMode = "predicted",
        index: int | None = None,
        max_positions: int = MAX_POSITIONS,
        ticket: Ticket = NEVER,
    ) -> NeuronData:
        """Every channel of ``layer`` (a name or an index of :meth:`layers`): positive and
        negative relevance, mean activation, and the channel x position relevance matrix
        (see :func:`~relscope.engine.designer.neurons.neurons`)."""
        return neurons(
            self.explainer, self._batch(x), config, layer,
            target=target, index=index, max_positions=max_positions, ticket=ticket,
        )  # fmt: skip

    def channel_maps(
        self,
        x: torch.Tensor,
        config: MethodConfig | Mapping[str, Any] | str,
        layer: int | str,
        channels: int | Sequence[int],
        *,
        target: TargetMode = "predicted",
        index: int | None = None,
        ticket: Ticket = NEVER,
    ) -> ChannelMaps:
        """The relevance and activation maps of ``channels`` of ``layer``."""
        return channel_maps(
            self.explainer, self._batch(x), config, layer, channels,
            target=target, index=index, ticket=ticket,
        )  # fmt: skip

    def ablate(
        self,
        x: torch.Tensor,
        config: MethodConfig | Mapping[str, Any] | str,
        layer: int | str,
        channels: int | Sequence[int],
        *,
        target: TargetMode = "predicted",
        index: int | None = None,
        k: int = TOP_K,
        ticket: Ticket = NEVER,
    ) -> tuple[Explanation, list[Prediction]]:
        """Explain ``x`` with ``channels`` of ``layer`` replaced by 0: the new explanation
        (its ``heatmap_png()`` is the new heatmap) and the new top-``k``."""
        explanation = ablate(
            self.explainer, self._batch(x), config, layer, channels,
            target=target, index=index, ticket=ticket,
        )  # fmt: skip
        return explanation, self._top(explanation.output, k)

    # -------------------------------------------------------------------------- samples
    @property
    def num_samples(self) -> int:
        """How many samples :meth:`sample` offers."""
        return 0 if self._samples is None else len(self._samples)

    def sample_label(self, index: int) -> str | None:
        """What identifies sample ``index`` to a person: its file, or its class names."""
        self._check_index(index)
        if isinstance(self._samples, ImageFiles):
            return self._samples.name(index)
        if isinstance(self._samples, ImageDataset):
            with self._lock:
                if self._labels is None:
                    self._labels = self._samples.labels()
            label = self._labels[index]
            values = np.flatnonzero(label) if label.dtype == bool else [label]
            return ", ".join(self.class_name(int(v)) for v in values)
        return None

    def sample(self, index: int) -> torch.Tensor:
        """The model input ``(1, C, H, W)`` of sample ``index``, on the session's device."""
        self._check_index(index)
        return self._read(index)[None].to(self.device)

    def _check_index(self, index: int) -> None:
        if isinstance(index, bool) or not isinstance(index, int):
            raise ConfigError(f"sample index must be an integer, got {index!r}")
        if not 0 <= index < self.num_samples:
            raise ConfigError(
                f"sample index {index} out of range (the session has {self.num_samples} samples)"
            )

    def upload(self, data: bytes) -> torch.Tensor:
        """The model input ``(1, C, H, W)`` made from PNG or JPEG bytes, brought to the
        model's input as the dataset brings its images (:class:`InputSettings`)."""
        if self.input_settings is None:
            raise ConfigError("this session takes no uploads (it knows no input size)")
        tensor = self.input_settings.decode(data, max_bytes=self.max_upload_bytes)
        return tensor[None].to(self.device)

    # ---------------------------------------------------------------------------- inner
    def _read(self, index: int) -> torch.Tensor:
        with self._lock:  # HDF5 reads are not thread-safe
            if isinstance(self._samples, ImageDataset):
                return self._samples[index][0]
            assert self._samples is not None
            tensor = self._samples[index]
        if not isinstance(tensor, torch.Tensor) or not tensor.is_floating_point():
            raise ConfigError(f"sample {index}: expected a float tensor C x H x W")
        return tensor

    def _batch(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            raise ConfigError("the input must be a floating point tensor")
        single = len(self.input_shape) if self.input_shape is not None else 3
        if x.ndim == single:
            x = x[None]
        if len(x) != 1:
            raise ConfigError(f"expected one input (a batch of one), got shape {tuple(x.shape)}")
        return x.to(self.device)


def _namer(names: LabelMap | Sequence[str] | None) -> Callable[[int], str]:
    if names is None:
        return str
    if isinstance(names, LabelMap):
        return names.name
    if isinstance(names, str) or not all(isinstance(n, str) for n in names):
        raise ConfigError("class_names must be a label map or a sequence of names")
    table = list(names)
    return lambda index: table[index] if 0 <= index < len(table) else str(index)


def _normalizer(
    mean: Sequence[float] | None, std: Sequence[float] | None, mode: str
) -> Callable[[torch.Tensor], torch.Tensor] | None:
    if mean is None and std is None:
        return None
    channels = 1 if mode == "L" else 3
    mean_t = torch.tensor(list(mean) if mean is not None else [0.0] * channels)
    std_t = torch.tensor(list(std) if std is not None else [1.0] * channels)
    if mean_t.shape != (channels,) or std_t.shape != (channels,) or (std_t <= 0).any():
        raise ConfigError(f"mean and std need {channels} values each (std > 0) for mode {mode}")
    return lambda x: (x - mean_t[:, None, None]) / std_t[:, None, None]
