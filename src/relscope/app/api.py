"""The HTTP API under ``/api/``: JSON descriptions, embedding coordinates, PNG images.

Every parameter is validated (FastAPI's types and ranges, then the names and indices the
loaded projects hold): bad input is a 4xx answer with a one-line ``detail``, never a 500.
Embedding coordinates and cluster labels come as compact JSON or, with ``format=binary``,
as little-endian float32 / int32 bytes (``X-Count`` and ``X-Dims`` headers), for large N.
"""

from __future__ import annotations

import io
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, FastAPI, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from PIL import Image
from pydantic import BaseModel, Field

from relscope.app.store import (
    ProjectStore,
    ServedProject,
    UnknownItemError,
    category_label,
    finite,
    label_name,
    summary,
)
from relscope.errors import ConflictError, NotFoundError, RelscopeError
from relscope.render import heatmap_png, image_png, overlay, unit_image
from relscope.render.colormaps import get_colormap, list_colormaps

__all__ = ["router"]

router = APIRouter(prefix="/api")

ProjectId = Annotated[int, Path(ge=0, description="Position of the project (0-based).")]
Name = Annotated[str, Path(min_length=1, max_length=200, pattern=r"^[^/\\]+$")]
SampleIndex = Annotated[int, Path(ge=0, description="Dataset position of the sample.")]


def _store(request: Request) -> ProjectStore:
    return request.app.state.store


@router.get("/health")
def health() -> dict[str, str]:
    """The server is up."""
    return {"status": "ok"}


@router.get("/projects")
def projects(request: Request) -> list[dict[str, Any]]:
    """Every loaded project: name, model, dataset, attribution method, analyses."""
    store = _store(request)
    return [summary(served, i) for i, served in enumerate(store.projects)]


@router.get("/projects/{project}/labels")
def labels(request: Request, project: ProjectId) -> list[dict[str, Any]]:
    """The project's label map."""
    return _store(request).get(project).labels.to_json()


@router.get("/projects/{project}/analyses/{analysis}/categories")
def categories(request: Request, project: ProjectId, analysis: Name) -> list[dict[str, Any]]:
    """The categories of an analysis, ranked by tau (then eigengap), most suspicious first."""
    served = _store(request).get(project)
    rows = []
    for name in served.categories(analysis):
        category = served.category(analysis, name)
        label = category_label(served.labels, category)
        rows.append(
            {
                "name": name,
                "label_index": label,
                "label_name": None if label is None else label_name(served.labels, label),
                "size": category.size,
                "scores": {k: finite(v) for k, v in category.scores.items()},
            }
        )

    def rank(row: dict[str, Any]) -> tuple[float, float, str]:
        tau = row["scores"].get("tau")
        gap = row["scores"].get("eigengap")
        return (-(tau if tau is not None else -np.inf), -(gap or 0.0), row["name"])

    return sorted(rows, key=rank)


def _category(request: Request, project: int, analysis: str, category: str):
    return _store(request).get(project).category(analysis, category)


@router.get("/projects/{project}/analyses/{analysis}/categories/{category}")
def category_detail(
    request: Request, project: ProjectId, analysis: Name, category: Name
) -> dict[str, Any]:
    """A category: its embeddings (dimensions, eigenvalues), clusterings (cluster sizes), scores."""
    found = _category(request, project, analysis, category)
    embeddings = []
    for name, embedding in found.embeddings.items():
        eigenvalues = embedding.eigenvalue
        embeddings.append(
            {
                "name": name,
                "dims": int(embedding.data.shape[1]),
                "base": embedding.base,
                "eigenvalues": None
                if eigenvalues is None
                else [finite(v) for v in np.asarray(eigenvalues).tolist()],
            }
        )
    clusterings = []
    for name, clustering in found.clusterings.items():
        values, counts = np.unique(clustering.labels, return_counts=True)
        clusterings.append(
            {
                "name": name,
                "k": clustering.k,
                "clusters": [
                    {"label": int(v), "size": int(c)} for v, c in zip(values, counts, strict=True)
                ],
            }
        )
    return {
        "name": found.name,
        "size": found.size,
        "index": found.index.tolist(),
        "scores": {k: finite(v) for k, v in found.scores.items()},
        "embeddings": embeddings,
        "clusterings": clusterings,
    }


def _named(items: dict[str, Any], name: str, kind: str) -> Any:
    """``items[name]``, or a 404 naming what there is."""
    if name not in items:
        raise HTTPException(404, detail=f"unknown {kind} {name!r}; {kind}s: {', '.join(items)}")
    return items[name]


def _dims(text: str, available: int) -> list[int]:
    try:
        dims = [int(part) for part in text.split(",")]
    except ValueError:
        raise HTTPException(
            422, detail=f"dims must be comma-separated integers, got {text!r}"
        ) from None
    if not 1 <= len(dims) <= 3 or any(not 0 <= d < available for d in dims):
        raise HTTPException(
            422, detail=f"dims must be 1 to 3 dimensions in 0..{available - 1}, got {text!r}"
        )
    return dims


@router.get(
    "/projects/{project}/analyses/{analysis}/categories/{category}/embeddings/{embedding}",
    responses={200: {"content": {"application/json": {}, "application/octet-stream": {}}}},
)
def embedding_points(
    request: Request,
    project: ProjectId,
    analysis: Name,
    category: Name,
    embedding: Name,
    dims: Annotated[str, Query(max_length=40, description="e.g. 0,1")] = "0,1",
    format: Literal["json", "binary"] = "json",
) -> Response:
    """Coordinates of a category's samples in the chosen dimensions of one embedding."""
    found = _category(request, project, analysis, category)
    data = np.asarray(_named(found.embeddings, embedding, "embedding").data)
    chosen = data[:, _dims(dims, data.shape[1])].astype(np.float32)
    if format == "binary":
        headers = {"X-Count": str(chosen.shape[0]), "X-Dims": str(chosen.shape[1])}
        payload = np.ascontiguousarray(chosen, dtype="<f4").tobytes()
        return Response(payload, media_type="application/octet-stream", headers=headers)
    rounded = np.round(chosen.astype(np.float64), 5)
    return JSONResponse({"count": int(chosen.shape[0]), "points": rounded.T.tolist()})


@router.get(
    "/projects/{project}/analyses/{analysis}/categories/{category}/clusterings/{clustering}"
)
def clustering_labels(
    request: Request,
    project: ProjectId,
    analysis: Name,
    category: Name,
    clustering: Name,
    format: Literal["json", "binary"] = "json",
) -> Response:
    """The cluster label of every sample of the category (index order of the category)."""
    found = _category(request, project, analysis, category)
    values = np.asarray(_named(found.clusterings, clustering, "clustering").labels, np.int64)
    if format == "binary":
        payload = np.ascontiguousarray(values, dtype="<i4").tobytes()
        headers = {"X-Count": str(values.size)}
        return Response(payload, media_type="application/octet-stream", headers=headers)
    return JSONResponse({"count": int(values.size), "labels": values.tolist()})


def _served_sample(request: Request, project: int, index: int):
    served = _store(request).get(project)
    if index >= len(served.dataset):
        raise HTTPException(
            404, detail=f"sample {index} is out of range 0..{len(served.dataset) - 1}"
        )
    return served


def _true_labels(label: np.ndarray) -> list[int]:
    """Class indices of one label: an index, or the true entries of a multi-label vector."""
    label = np.asarray(label)
    return [int(i) for i in np.flatnonzero(label)] if label.ndim else [int(label)]


@router.get("/projects/{project}/samples/{index}")
def sample(request: Request, project: ProjectId, index: SampleIndex) -> dict[str, Any]:
    """A sample's labels and, where it was attributed, the model's top predictions."""
    served = _served_sample(request, project, index)
    true = _true_labels(served.dataset.labels()[index])
    out: dict[str, Any] = {
        "index": index,
        "labels": [{"index": i, "name": label_name(served.labels, i)} for i in true],
        "prediction": None,
    }
    attributions = served.attributions
    if attributions is not None and index in attributions:
        scores = np.asarray(attributions.scores(index), dtype=np.float64)
        top = np.argsort(-scores, kind="stable")[:10]
        out["prediction"] = [
            {"index": int(i), "name": label_name(served.labels, int(i)), "score": finite(scores[i])}
            for i in top
        ]
    return out


def _png(array: np.ndarray) -> Response:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return Response(buffer.getvalue(), media_type="image/png")


@router.get("/projects/{project}/samples/{index}/image.png", response_class=Response)
def sample_image(request: Request, project: ProjectId, index: SampleIndex) -> Response:
    """The input image as PNG (values in [0, 1] as they are, other ranges min-max scaled)."""
    served = _served_sample(request, project, index)
    return Response(image_png(served.dataset.sample(index).data), media_type="image/png")


def _relevance(served: ServedProject, index: int, cmap: str) -> np.ndarray:
    """The stored attribution of sample ``index``, once ``cmap`` is known to be a colour map."""
    attributions = served.attributions
    if attributions is None or index not in attributions:
        raise HTTPException(404, detail=f"sample {index} has no attribution in this project")
    try:
        get_colormap(cmap)
    except RelscopeError as error:
        raise HTTPException(422, detail=str(error)) from None
    return np.asarray(attributions.get(index).attribution, dtype=np.float64)


@router.get("/projects/{project}/samples/{index}/heatmap.png", response_class=Response)
def sample_heatmap(
    request: Request,
    project: ProjectId,
    index: SampleIndex,
    cmap: Annotated[str, Query(max_length=200)] = "bwr",
) -> Response:
    """The attribution as an 8-bit palette PNG (indices: normalized relevance; palette: cmap)."""
    served = _served_sample(request, project, index)
    relevance = _relevance(served, index, cmap)
    return Response(heatmap_png(relevance, cmap), media_type="image/png")


@router.get("/projects/{project}/samples/{index}/overlay.png", response_class=Response)
def sample_overlay(
    request: Request,
    project: ProjectId,
    index: SampleIndex,
    cmap: Annotated[str, Query(max_length=200)] = "bwr",
    alpha: Annotated[float, Query(ge=0.0, le=1.0)] = 1.0,
) -> Response:
    """The heatmap over the grayscale input, opaque where relevance is strong (RGB PNG)."""
    served = _served_sample(request, project, index)
    relevance = _relevance(served, index, cmap)
    pixels = unit_image(served.dataset.sample(index).data)
    if relevance.shape[-2:] != pixels.shape[-2:]:
        raise HTTPException(
            422, detail=f"sample {index}: attribution and image sizes differ; use heatmap.png"
        )
    return _png(overlay(relevance, pixels, cmap=cmap, alpha=alpha, value_range=(0.0, 1.0)))


class SamplePage(BaseModel):
    """A page of a selection of samples (dataset positions), for the gallery."""

    indices: list[Annotated[int, Field(ge=0)]] = Field(max_length=1_000_000)
    offset: int = Field(0, ge=0)
    limit: int = Field(50, ge=1, le=1000)


@router.post("/projects/{project}/samples/page")
def sample_page(request: Request, project: ProjectId, page: SamplePage) -> dict[str, Any]:
    """Labels and predicted class of ``indices[offset : offset + limit]``, in selection order."""
    served = _store(request).get(project)
    size = len(served.dataset)
    outside = [i for i in page.indices if i >= size]
    if outside:
        raise HTTPException(422, detail=f"sample {outside[0]} is out of range 0..{size - 1}")
    chosen = page.indices[page.offset : page.offset + page.limit]
    labels = served.dataset.labels()
    attributions = served.attributions
    samples = []
    for index in chosen:
        true = _true_labels(labels[index])
        predicted = None
        if attributions is not None and index in attributions:
            predicted = int(np.argmax(attributions.scores(index)))
        samples.append({"index": index, "labels": true, "predicted": predicted})
    return {"total": len(page.indices), "offset": page.offset, "samples": samples}


@router.get("/colormaps")
def colormaps() -> list[dict[str, Any]]:
    """Registered colour maps with their 256-entry palettes (hex), for client recolouring."""
    out = []
    for name in list_colormaps():
        palette = get_colormap(name).palette
        out.append({"name": name, "palette": ["".join(f"{c:02x}" for c in rgb) for rgb in palette]})
    return out


def install(app: FastAPI) -> None:
    """Mount the API on ``app``: names and indices the projects lack are answered with 404,
    conflicts (a name taken, a superseded request) with 409, library errors (bad values)
    with 422, never 500."""
    app.include_router(router)

    @app.exception_handler(UnknownItemError)
    def _unknown_item(_: Request, error: UnknownItemError) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=404)

    @app.exception_handler(RelscopeError)
    def _relscope_error(_: Request, error: RelscopeError) -> JSONResponse:
        status = 422
        if isinstance(error, NotFoundError):
            status = 404
        elif isinstance(error, ConflictError):
            status = 409
        return JSONResponse({"detail": " ".join(str(error).split())}, status_code=status)
