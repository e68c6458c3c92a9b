"""The Designer's HTTP API under ``/api/designer/``: single-sample LRP design.

A designer is a model the server was started with (a loaded project naming one, or
``relscope design --model``), addressed by position. Inputs are a sample of it or an
uploaded PNG/JPEG (``POST .../uploads``), optionally with brush strokes flipped; a
configuration is the JSON of ``relscope.attribution.config`` or the name of a stored design.
Heatmaps come inline as ``data:image/png`` URIs. Every parameter is validated: bad input is
a 4xx answer naming it, never a 500. A request carrying an ``X-Designer-Session`` header is
superseded (409) by a newer request of the same session and operation.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, FastAPI, Header, HTTPException, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import BaseModel, Field, model_validator

from relscope.app.designers import Designer, DesignerStore
from relscope.render import image_png

if TYPE_CHECKING:
    import torch

    from relscope.engine.designer import Explanation, Prediction, Ticket

__all__ = ["install", "router"]

router = APIRouter(prefix="/api/designer", tags=["designer"])

DesignerId = Annotated[int, Path(ge=0, le=10_000, description="Position of the designer.")]
DesignName = Annotated[
    str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
]
SampleIndex = Annotated[int, Path(ge=0, description="Position of the sample.")]
UploadId = Annotated[str, Path(pattern=r"^[0-9a-f]{24}$")]
SessionHeader = Annotated[
    str | None,
    Header(
        alias="X-Designer-Session",
        max_length=64,
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="The browser session: its newer request of an operation supersedes "
        "its older one (409).",
    ),
]
Cmap = Annotated[str, Field(max_length=64)]
#: The largest upload body read (the session's own decoding limit applies too).
MAX_UPLOAD_BODY = 16 * 1024 * 1024


# ------------------------------------------------------------------------------ models
class StrokeModel(BaseModel):
    """A brush stroke: a polyline of ``[row, column]`` points with a radius in pixels."""

    points: list[tuple[float, float]] = Field(min_length=1, max_length=4096)
    radius: float = Field(gt=0, le=4096)


class FlipModel(BaseModel):
    """Pixels to flip, brushed (``strokes``) or as a ``mask`` (a PNG of the input's size as
    a base64 ``data:`` URI: its opaque, or else non-black, pixels), replaced by ``fill`` (a
    number, mean, blur, noise)."""

    strokes: list[StrokeModel] = Field([], max_length=256)
    mask: str | None = Field(None, max_length=8 * 1024 * 1024, pattern=r"^data:image/png;base64,")
    fill: float | Literal["mean", "blur", "noise"] = "mean"
    sigma: float = Field(3.0, gt=0, le=64)

    @model_validator(mode="after")
    def _one_kind(self) -> FlipModel:
        if bool(self.strokes) == (self.mask is not None):
            raise ValueError("give strokes or a mask (one of them)")
        return self


class InputModel(BaseModel):
    """One input: a ``sample`` of the designer or an ``upload``, optionally flipped."""

    sample: int | None = Field(None, ge=0)
    upload: str | None = Field(None, pattern=r"^[0-9a-f]{24}$")
    flip: FlipModel | None = None

    @model_validator(mode="after")
    def _one_source(self) -> InputModel:
        if (self.sample is None) == (self.upload is None):
            raise ValueError("give exactly one of sample and upload")
        return self


Config = Annotated[
    dict[str, Any] | Annotated[str, Field(min_length=1, max_length=64)],
    Field(
        description="A configuration (relscope.attribution.config JSON), the name of a stored "
        "design, or of a method or composite."
    ),
]
TargetName = Literal["class", "predicted", "contrastive"]


class ExplainModel(BaseModel):
    input: InputModel
    config: Config
    target: TargetName = "predicted"
    index: int | None = Field(None, ge=0)
    cmap: Cmap = "bwr"
    values: bool = Field(False, description="Also return the input relevance's values.")


class ColumnModel(BaseModel):
    input: InputModel
    target: TargetName = "predicted"
    index: int | None = Field(None, ge=0)


class CompareModel(BaseModel):
    configs: list[Config] = Field(min_length=1, max_length=16)
    columns: list[ColumnModel] = Field(min_length=1, max_length=16)
    cmap: Cmap = "bwr"


class PredictModel(BaseModel):
    input: InputModel
    k: int = Field(10, ge=1, le=1000)


class CurvesModel(BaseModel):
    input: InputModel
    configs: list[Config] = Field(min_length=1, max_length=16)
    index: int | None = Field(None, ge=0, description="The class; default: the predicted one.")
    steps: int = Field(16, ge=1, le=256)
    patch: int = Field(1, ge=1, le=64)
    fill: float | Literal["zeros", "mean", "uniform", "normal"] = "zeros"
    orders: list[Literal["most", "least"]] = Field(["most", "least"], min_length=1, max_length=2)


LayerRef = Annotated[
    int | Annotated[str, Field(min_length=1, max_length=200)],
    Field(description="A layer: its index on the ruler or its name."),
]
Channels = Annotated[list[Annotated[int, Field(ge=0)]], Field(max_length=4096)]


class NeuronsModel(BaseModel):
    input: InputModel
    config: Config
    layer: LayerRef
    target: TargetName = "predicted"
    index: int | None = Field(None, ge=0)
    max_positions: int = Field(1024, ge=1, le=65536)


class MapsModel(BaseModel):
    input: InputModel
    config: Config
    layer: LayerRef
    channels: Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=1, max_length=64)]
    target: TargetName = "predicted"
    index: int | None = Field(None, ge=0)
    cmap: Cmap = "bwr"
    activation_cmap: Cmap = "hot"


class AblateModel(BaseModel):
    input: InputModel
    config: Config
    layer: LayerRef
    channels: Channels
    target: TargetName = "predicted"
    index: int | None = Field(None, ge=0)
    k: int = Field(10, ge=1, le=1000)
    cmap: Cmap = "bwr"


class NameModel(BaseModel):
    to: str = Field(min_length=1, max_length=64)
    overwrite: bool = False


# ---------------------------------------------------------------------------- helpers
def _designers(request: Request) -> DesignerStore:
    return request.app.state.designers


def _designer(request: Request, designer: int) -> Designer:
    return _designers(request).get(designer)


def _data_uri(png: bytes | None) -> str | None:
    return None if png is None else "data:image/png;base64," + base64.b64encode(png).decode()


def _input(found: Designer, spec: InputModel) -> torch.Tensor:
    from relscope.engine.designer import Stroke

    session = found.session
    x = session.sample(spec.sample) if spec.sample is not None else found.upload(spec.upload)
    if spec.flip is not None:
        strokes = [Stroke(s.points, s.radius) for s in spec.flip.strokes]
        mask = None if spec.flip.mask is None else _mask(spec.flip.mask, tuple(x.shape[2:]))
        x, _ = session.flip(
            x, strokes=strokes, mask=mask, fill=spec.flip.fill, sigma=spec.flip.sigma, k=1
        )
    return x


def _mask(uri: str, size: tuple[int, ...]) -> torch.Tensor:
    """A flip mask from a PNG ``data:`` URI: its opaque pixels where it has transparency,
    else its non-black pixels, are flipped."""
    import io

    import numpy as np
    import torch
    from PIL import Image

    try:
        data = base64.b64decode(uri.split(",", 1)[1], validate=True)
        with Image.open(io.BytesIO(data), formats=("PNG",)) as opened:
            if (opened.height, opened.width) != size:
                raise HTTPException(
                    422,
                    detail=f"mask: {opened.height} x {opened.width} pixels, the input is "
                    f"{size[0]} x {size[1]}",
                )
            # A drawn overlay: its opaque pixels; a plain image: its non-black pixels.
            has_alpha = "A" in opened.mode or "transparency" in opened.info
            chosen = opened.convert("RGBA").getchannel("A") if has_alpha else opened.convert("L")
            covered = np.asarray(chosen) > 0
    except HTTPException:
        raise
    except Exception as error:  # bad base64 or a broken PNG raise many types
        raise HTTPException(422, detail=f"mask: not a PNG image ({type(error).__name__})") from None
    return torch.from_numpy(np.ascontiguousarray(covered))


def _config(found: Designer, config: dict[str, Any] | str):
    """A configuration from JSON, a stored design's name or a method's name (a design of
    that name wins), checked against the model's layers."""
    from relscope.attribution.config import method_config
    from relscope.engine.designer import check_segments

    if isinstance(config, dict):
        parsed = method_config(config)
    elif config in found.store or not _is_method(config):
        parsed = found.store.get(config)
    else:
        parsed = method_config(config)
    check_segments(parsed, len(found.session.layers()))
    return parsed


def _is_method(name: str) -> bool:
    from relscope.attribution.attributors import list_attributors
    from relscope.attribution.lrp.composites import list_composites

    return name in list_attributors() or name in list_composites()


def _ticket(found: Designer, session: str | None, operation: str) -> Ticket:
    return found.session.requests.begin(None if session is None else f"{session}:{operation}")


def _predictions(rows: list[Prediction]) -> list[dict[str, Any]]:
    return [
        {"index": p.index, "name": p.name, "score": p.score, "probability": p.probability}
        for p in rows
    ]


def _finite(value: float) -> float | None:
    return value if value == value and abs(value) != float("inf") else None


def _explanation(found: Designer, result: Explanation, cmap: str) -> dict[str, Any]:
    from relscope.render.colormaps import get_colormap

    get_colormap(cmap)  # an unknown name: 422 before anything is drawn
    session = found.session
    scores = result.output[0].float()
    return {
        "target": result.target,
        "target_name": session.class_name(result.target),
        "score": _finite(float(scores[result.target])),
        "heatmap": _data_uri(result.heatmap_png(cmap)),
        "shape": list(result.relevance.shape[1:]),
        "boundaries": [
            {
                "index": b.index,
                "after": b.after,
                "total": _finite(b.total),
                "shape": list(b.relevance.shape[1:]),
                "heatmap": _data_uri(result.boundary_png(i, cmap)),
            }
            for i, b in enumerate(result.boundaries)
        ],
        "sums": [{"layer": name, "sum": _finite(value)} for name, value in result.sums.items()],
        "output_sum": _finite(result.output_sum),
        "input_sum": _finite(result.input_sum),
        "warnings": result.warnings(),
    }


# -------------------------------------------------------------------------- endpoints
@router.get("")
def designers(request: Request) -> list[dict[str, Any]]:
    """Every designer: its name, project (if any), whether its model is loaded, and why it
    cannot be built where that is known without building it (``problem``)."""
    return [
        {"id": i, "name": d.name, "project": d.project, "loaded": d.loaded, "problem": d.problem}
        for i, d in enumerate(_designers(request).designers)
    ]


@router.get("/rules")
def rules() -> dict[str, Any]:
    """The registered LRP rules, and the unified rule's parameters: their defaults and the
    presets (named rules as unified parameters; each reproduces its named rule for
    non-negative inputs)."""
    import inspect

    from relscope.attribution.lrp.rules import DEFAULT_EPS, UnifiedRule, get_rule, list_rules

    signature = inspect.signature(UnifiedRule.__init__).parameters.items()
    defaults: dict[str, Any] = {
        name: float(parameter.default)
        for name, parameter in signature
        if parameter.kind is parameter.POSITIONAL_OR_KEYWORD and name != "self"
    }
    defaults["include_bias"] = False

    def preset(name: str, values: dict[str, float]) -> dict[str, Any]:
        # The bias as the named rule treats it by default (epsilon, gamma, alpha-beta and
        # z+ keep it, flat and w^2 leave it out), so that the preset explains like it.
        named = get_rule("epsilon" if name == "lrp0" else name)
        keeps_bias = "bias" not in getattr(named, "zero_params", ("bias",))
        return (
            defaults
            | {"eps": DEFAULT_EPS, "include_bias": keeps_bias}
            | {k: float(v) for k, v in values.items()}
        )

    return {
        "rules": list_rules(),
        "default_eps": DEFAULT_EPS,
        "unified": {
            "defaults": defaults,
            "presets": {name: preset(name, v) for name, v in UnifiedRule.PRESETS.items()},
        },
    }


@router.get("/{designer}")
def designer_detail(request: Request, designer: DesignerId) -> dict[str, Any]:
    """A designer's model input, sample count, layer count and the start of the
    ``relscope attribute`` line that runs its designs over a dataset (builds the model)."""
    found = _designer(request, designer)
    session = found.session
    return {
        "id": designer,
        "name": found.name,
        "project": found.project,
        "input_shape": None if session.input_shape is None else list(session.input_shape),
        "samples": session.num_samples,
        "uploads": session.input_settings is not None,
        "layers": len(session.layers()),
        "command": found.command,
    }


@router.get("/{designer}/layers")
def layers(request: Request, designer: DesignerId) -> list[dict[str, Any]]:
    """The model's layers in execution order: what segment indices count."""
    return [
        {
            "index": layer.index,
            "name": layer.name,
            "kind": layer.kind,
            "type": layer.type,
            "shape": None if layer.output_shape is None else list(layer.output_shape),
        }
        for layer in _designer(request, designer).session.layers()
    ]


@router.get("/{designer}/samples/{index}")
def sample(request: Request, designer: DesignerId, index: SampleIndex) -> dict[str, Any]:
    """A sample's label (its classes, or its file)."""
    session = _designer(request, designer).session
    return {"index": index, "label": session.sample_label(index)}


@router.get("/{designer}/samples/{index}/image.png", response_class=Response)
def sample_image(request: Request, designer: DesignerId, index: SampleIndex) -> Response:
    """The model input of a sample as a PNG (values outside [0, 1] min-max scaled)."""
    x = _designer(request, designer).session.sample(index)
    return Response(image_png(x[0].detach().cpu().numpy()), media_type="image/png")


@router.post(
    "/{designer}/uploads",
    status_code=201,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "image/png": {"schema": {"type": "string", "format": "binary"}},
                "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
            },
        }
    },
)
async def upload(request: Request, designer: DesignerId) -> dict[str, Any]:
    """Upload a PNG or JPEG (the body, at most 16 MiB): brought to the model's input, kept
    for a while under the returned id."""
    found = _designer(request, designer)
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_UPLOAD_BODY):
        raise HTTPException(413, detail=f"upload larger than {MAX_UPLOAD_BODY} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_UPLOAD_BODY:
            raise HTTPException(413, detail=f"upload larger than {MAX_UPLOAD_BODY} bytes")
    key = await run_in_threadpool(found.add_upload, bytes(body))
    shape = list(found.upload(key).shape[1:])
    return {"upload": key, "shape": shape}


@router.get("/{designer}/uploads/{upload}/image.png", response_class=Response)
def upload_image(request: Request, designer: DesignerId, upload: UploadId) -> Response:
    """An uploaded input as the model sees it, as PNG."""
    x = _designer(request, designer).upload(upload)
    return Response(image_png(x[0].detach().cpu().numpy()), media_type="image/png")


@router.post("/{designer}/predict")
def predict(
    request: Request, designer: DesignerId, body: PredictModel, session: SessionHeader = None
) -> dict[str, Any]:
    """The top-``k`` classes of an input (flipped, when strokes are given)."""
    found = _designer(request, designer)
    x = _input(found, body.input)
    rows = found.session.predict(x, body.k, ticket=_ticket(found, session, "predict"))
    result: dict[str, Any] = {"predictions": _predictions(rows)}
    if body.input.flip is not None:
        result["image"] = _data_uri(image_png(x[0].detach().cpu().numpy()))
    return result


@router.post("/{designer}/explain")
def explain(
    request: Request, designer: DesignerId, body: ExplainModel, session: SessionHeader = None
) -> dict[str, Any]:
    """Explain an input with a configuration: the input heatmap, the heatmaps at every
    segment boundary, per-layer relevance sums and warnings."""
    found = _designer(request, designer)
    _check_target(body.target, body.index)
    x = _input(found, body.input)
    config = _config(found, body.config)
    result = found.session.explain(
        x, config, target=body.target, index=body.index,
        ticket=_ticket(found, session, "explain"),
    )  # fmt: skip
    answer = _explanation(found, result, body.cmap)
    if body.values:
        answer["relevance"] = result.relevance[0].detach().cpu().double().nan_to_num().tolist()
    return answer


@router.post("/{designer}/compare")
def compare(
    request: Request, designer: DesignerId, body: CompareModel, session: SessionHeader = None
) -> dict[str, Any]:
    """Configurations (rows) x inputs or classes (columns), heatmaps on one colour scale."""
    from relscope.engine.designer import Column
    from relscope.render.colormaps import get_colormap

    get_colormap(body.cmap)
    found = _designer(request, designer)
    for column in body.columns:
        if column.target == "class" and column.index is None:
            raise HTTPException(422, detail="a column with target 'class' needs an index")
    configs = [_config(found, c) for c in body.configs]
    columns = [Column(_input(found, c.input), c.target, c.index) for c in body.columns]
    grid = found.session.compare(configs, columns, ticket=_ticket(found, session, "compare"))
    pictures, scale = _compare_pictures(grid, body.cmap)
    return {
        "names": grid.names,
        "scale": scale,
        "cells": [
            [
                {
                    "target": cell.target,
                    "target_name": found.session.class_name(cell.target),
                    "heatmap": _data_uri(pictures[r][c]),
                    "warnings": cell.warnings(),
                }
                for c, cell in enumerate(row)
            ]
            for r, row in enumerate(grid.cells)
        ],
    }


# ------------------------------------------------- compare: cells that break down (Compare tab)
def _compare_pictures(grid: Any, cmap: str) -> tuple[list[list[bytes | None]], float | None]:
    """The grid's PNGs and the scale they share. A cell whose relevance is NaN or infinite
    (its warnings say where) has no picture, and the others share the scale of the finite
    cells, instead of the whole grid failing; with every cell finite this is the library's
    grid (``grid.png``, ``grid.scale``)."""
    import numpy as np

    from relscope.engine.designer.compare import cell_map
    from relscope.render import heatmap_png, normalize

    if _finite(grid.scale) is not None:
        rows = [[grid.png(r, c, cmap) for c in range(len(row))] for r, row in enumerate(grid.cells)]
        return rows, grid.scale
    maps = [[cell_map(cell) for cell in row] for row in grid.cells]
    finite = [m for row in maps for m in row if np.isfinite(m).all()]
    if not finite:
        return [[None for _ in row] for row in maps], None
    stack = np.stack(finite)
    shared = iter(normalize(stack, "symmetric", per="batch"))
    pictures = [
        [heatmap_png(next(shared), cmap=cmap, mode=None) if np.isfinite(m).all() else None
         for m in row]
        for row in maps
    ]  # fmt: skip
    return pictures, float(np.abs(stack).max())


@router.post("/{designer}/curves")
def curves(
    request: Request, designer: DesignerId, body: CurvesModel, session: SessionHeader = None
) -> list[dict[str, Any]]:
    """Most- and least-relevant-first pixel-flipping curves per configuration, with AUC and
    AOPC (the class: ``index``, default the predicted one)."""
    found = _designer(request, designer)
    x = _input(found, body.input)
    configs = [_config(found, c) for c in body.configs]
    results = found.session.curves(
        x, configs, target=body.index, steps=body.steps, patch=body.patch, fill=body.fill,
        orders=body.orders, ticket=_ticket(found, session, "curves"),
    )  # fmt: skip
    return [
        {
            "name": c.name,
            "fractions": [float(f) for f in (c.most or c.least).fractions],
            "most": None if c.most is None else _numbers(c.most.scores[0]),
            "least": None if c.least is None else _numbers(c.least.scores[0]),
            "auc": [None if v is None else _finite(v) for v in c.auc],
            "aopc": [None if v is None else _finite(v) for v in c.aopc],
        }
        for c in results
    ]


def _numbers(values) -> list[float | None]:
    return [_finite(float(v)) for v in values]


def _check_target(target: str, index: int | None) -> None:
    if target == "class" and index is None:
        raise HTTPException(422, detail="target 'class' needs an index")


@router.post("/{designer}/neurons")
def neurons(
    request: Request, designer: DesignerId, body: NeuronsModel, session: SessionHeader = None
) -> dict[str, Any]:
    """Every channel of a layer: positive and negative relevance and mean activation (the
    scatter), and the channel x position relevance matrix (positions of ``grid``)."""
    _check_target(body.target, body.index)
    found = _designer(request, designer)
    x = _input(found, body.input)
    data = found.session.neurons(
        x, _config(found, body.config), body.layer, target=body.target, index=body.index,
        max_positions=body.max_positions, ticket=_ticket(found, session, "neurons"),
    )  # fmt: skip
    return {
        "layer": data.layer,
        "target": data.target,
        "channels": data.channels,
        "positive": _numbers(data.positive),
        "negative": _numbers(data.negative),
        "activation": _numbers(data.activation),
        "grid": list(data.grid),
        "matrix": [_numbers(row) for row in data.matrix],
    }


@router.post("/{designer}/neurons/maps")
def neuron_maps(
    request: Request, designer: DesignerId, body: MapsModel, session: SessionHeader = None
) -> dict[str, Any]:
    """The relevance and activation maps of chosen channels of a layer, as PNGs."""
    from relscope.render.colormaps import get_colormap

    get_colormap(body.cmap)
    get_colormap(body.activation_cmap)
    _check_target(body.target, body.index)
    found = _designer(request, designer)
    x = _input(found, body.input)
    maps = found.session.channel_maps(
        x, _config(found, body.config), body.layer, body.channels, target=body.target,
        index=body.index, ticket=_ticket(found, session, "maps"),
    )  # fmt: skip
    return {
        "layer": maps.layer,
        "target": maps.target,
        "channels": list(maps.channels),
        "relevance": [
            _data_uri(maps.relevance_png(i, body.cmap)) for i in range(len(maps.channels))
        ],
        "activation": [
            _data_uri(maps.activation_png(i, body.activation_cmap))
            for i in range(len(maps.channels))
        ],
    }


@router.post("/{designer}/ablate")
def ablate(
    request: Request, designer: DesignerId, body: AblateModel, session: SessionHeader = None
) -> dict[str, Any]:
    """Zero chosen channels of a layer: the new top-``k`` and the new explanation (the class
    is chosen on the intact model, so "predicted" explains the same class as before)."""
    _check_target(body.target, body.index)
    found = _designer(request, designer)
    x = _input(found, body.input)
    result, predictions = found.session.ablate(
        x, _config(found, body.config), body.layer, body.channels, target=body.target,
        index=body.index, k=body.k, ticket=_ticket(found, session, "ablate"),
    )  # fmt: skip
    return {"predictions": _predictions(predictions)} | _explanation(found, result, body.cmap)


# ------------------------------------------------------------------------ configurations
@router.get("/{designer}/designs")
def designs(request: Request, designer: DesignerId) -> list[str]:
    """The stored configurations' names."""
    return _designer(request, designer).store.list()


@router.get("/{designer}/designs/{name}")
def design(request: Request, designer: DesignerId, name: DesignName) -> dict[str, Any]:
    """A stored configuration (``relscope attribute --method`` reads the same file)."""
    return _designer(request, designer).store.get(name).to_dict()


@router.put("/{designer}/designs/{name}")
def save_design(
    request: Request, designer: DesignerId, name: DesignName, config: dict[str, Any]
) -> dict[str, Any]:
    """Create or replace a configuration, validated (a 422 names the bad field)."""
    return _designer(request, designer).store.save(name, config).to_dict()


@router.post("/{designer}/designs/{name}/rename")
def rename_design(
    request: Request, designer: DesignerId, name: DesignName, body: NameModel
) -> dict[str, Any]:
    """Rename a configuration (409 if the new name exists, unless ``overwrite``)."""
    store = _designer(request, designer).store
    return store.rename(name, body.to, overwrite=body.overwrite).to_dict()


@router.post("/{designer}/designs/{name}/duplicate", status_code=201)
def duplicate_design(
    request: Request, designer: DesignerId, name: DesignName, body: NameModel
) -> dict[str, Any]:
    """Copy a configuration under a new name."""
    store = _designer(request, designer).store
    return store.duplicate(name, body.to, overwrite=body.overwrite).to_dict()


@router.delete("/{designer}/designs/{name}", status_code=204, response_class=Response)
def delete_design(request: Request, designer: DesignerId, name: DesignName) -> Response:
    """Delete a configuration."""
    _designer(request, designer).store.delete(name)
    return Response(status_code=204)


def install(app: FastAPI, designers: DesignerStore) -> None:
    """Mount the designer API on ``app`` (errors are mapped by :func:`relscope.app.api.install`:
    unknown items 404, conflicts and superseded requests 409, bad values 422)."""
    app.state.designers = designers
    app.include_router(router)
