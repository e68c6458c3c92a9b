"""The designers the application serves: one per loaded project that names a model, and
those given on the command line (``relscope design``).

Models are only ever the ones these name (never one a request names), built on first use;
uploads are kept per designer, a bounded number of them, addressed by a digest. Importing
this module imports no torch: the Explorer runs without it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import shlex
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from relscope.app.store import ProjectStore, UnknownItemError
from relscope.data.project import Project
from relscope.errors import ConfigError

if TYPE_CHECKING:
    import torch

    from relscope.engine.designer import DesignSession, DesignStore

__all__ = ["MAX_UPLOADS", "Designer", "DesignerSource", "DesignerStore"]

#: Uploaded inputs kept per designer (the oldest are dropped first).
MAX_UPLOADS = 64


@dataclass(frozen=True)
class DesignerSource:
    """A model given on the command line, for a designer without a project.

    ``images``: a folder of images (with or without class subfolders) as its samples;
    ``designs``: the folder whose ``designs/`` holds its configurations;
    ``input_size``: ``(height, width)`` uploads (and images) are brought to;
    ``mode``: ``"RGB"`` or ``"L"``; ``mean``/``std``: per-channel normalization;
    ``preload``: build the model when the application is made, so that a bad model or
    image folder is an error at start rather than on the first request."""

    model: str
    weights: Path | None = None
    label_map: Path | None = None
    images: Path | None = None
    designs: Path = Path(".")
    input_size: tuple[int, int] = (224, 224)
    mode: str = "RGB"
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    name: str | None = None
    device: str = "cpu"
    allow_pickle: bool = False
    preload: bool = False


@dataclass
class Designer:
    """One designer: its model's session and configuration store, built on first use."""

    name: str
    project: int | None
    folder: Path
    _build: Any
    #: Why the model cannot be built, where that is known before building it (else None).
    problem: str | None = None
    #: The start of the ``relscope attribute`` line that runs a design of this designer over
    #: the whole dataset, from its folder (``--method designs/<name>.json`` follows).
    command: str = ""
    _session: DesignSession | None = None
    _store: DesignStore | None = None
    _uploads: OrderedDict[str, torch.Tensor] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def session(self) -> DesignSession:
        with self._lock:
            if self._session is None:
                self._session = self._build()
            return self._session

    @property
    def store(self) -> DesignStore:
        from relscope.engine.designer import DesignStore

        session = self.session
        with self._lock:
            if self._store is None:
                self._store = DesignStore(self.folder, session=session)
            return self._store

    @property
    def loaded(self) -> bool:
        """Whether the model has been built."""
        return self._session is not None

    def add_upload(self, data: bytes) -> str:
        """Decode an uploaded image into a model input; its id (a digest of the bytes)."""
        tensor = self.session.upload(data)
        key = hashlib.blake2b(data, digest_size=12).hexdigest()
        with self._lock:
            self._uploads[key] = tensor
            self._uploads.move_to_end(key)
            while len(self._uploads) > MAX_UPLOADS:
                self._uploads.popitem(last=False)
        return key

    def upload(self, key: str) -> torch.Tensor:
        """The input uploaded as ``key``."""
        with self._lock:
            tensor = self._uploads.get(key)
        if tensor is None:
            raise UnknownItemError(
                f"no upload {key!r} (uploads are kept for a while; send it again)"
            )
        return tensor


class DesignerStore:
    """The designers of the loaded projects (those naming a ``package.module:factory``
    model), then the ones given as sources, addressed by position."""

    def __init__(self, projects: ProjectStore, sources: Sequence[DesignerSource] = ()) -> None:
        self.designers: list[Designer] = []
        for index, served in enumerate(projects.projects):
            project = served.project
            if _is_reference(project.model):
                self.designers.append(
                    Designer(
                        project.name,
                        index,
                        project.root,
                        _project_builder(project),
                        problem=_unimportable(project.model),
                        command=_project_command(project),
                    )
                )
        for source in sources:
            if not _is_reference(source.model):
                raise ConfigError(
                    f"--model must look like package.module:factory, got {source.model!r}"
                )
            name = source.name or source.model
            designer = Designer(
                name, None, source.designs, _source_builder(source), command=_source_command(source)
            )
            if source.preload:
                designer.session  # noqa: B018 - builds it now
            self.designers.append(designer)

    def get(self, index: int) -> Designer:
        if not 0 <= index < len(self.designers):
            raise UnknownItemError(
                f"designer {index} does not exist ({len(self.designers)} designers are served)"
            )
        return self.designers[index]


def _shell(part: object) -> str:
    return shlex.quote(str(part))


def _project_command(project: Project) -> str:
    """``relscope attribute`` of the project's dataset and model, paths as seen from the
    project folder where they lie in it."""

    def shown(path: Path) -> str:
        try:
            return _shell(path.relative_to(project.root))
        except ValueError:
            return _shell(path)

    dataset = project.dataset
    words = ["relscope attribute", shown(dataset.path), "--model", _shell(project.model)]
    if project.model_weights is not None:
        words += ["--weights", shown(project.model_weights)]
    if dataset.type == "image_directory" and dataset.input_width and dataset.input_height:
        words += ["--input-size", str(dataset.input_height), str(dataset.input_width)]
        words += ["--up-sampling", _shell(dataset.up_sampling_method)]
        words += ["--down-sampling", _shell(dataset.down_sampling_method)]
    return " ".join([*words, "--label-map", shown(project.label_map), "--out designed.h5"])


def _source_command(source: DesignerSource) -> str:
    """``relscope attribute`` of the model given on the command line (the dataset is the
    user's to name)."""
    words = ["relscope attribute DATASET --model", _shell(source.model)]
    if source.weights is not None:
        words += ["--weights", _shell(source.weights)]
    words += ["--input-size", str(source.input_size[0]), str(source.input_size[1])]
    if source.mean is not None:
        words += ["--mean", ",".join(f"{v:g}" for v in source.mean)]
    if source.std is not None:
        words += ["--std", ",".join(f"{v:g}" for v in source.std)]
    return " ".join([*words, "--out designed.h5"])


def _unimportable(model: str) -> str | None:
    """Why the module of ``model`` cannot be imported, without importing it (its parent
    packages are), or None."""
    module = model.partition(":")[0]
    try:
        found = importlib.util.find_spec(module)
    except (ImportError, ValueError) as error:
        return f"cannot import {module!r} ({error})"
    return None if found is not None else f"cannot import {module!r} (no such module)"


def _is_reference(model: str) -> bool:
    module, _, attribute = model.partition(":")
    return bool(module) and bool(attribute) and " " not in model


def _project_builder(project: Project):
    def build() -> DesignSession:
        from relscope.engine.designer import DesignSession

        return DesignSession.from_project(project)

    return build


def _source_builder(source: DesignerSource):
    def build() -> DesignSession:
        from relscope.engine.designer import DesignSession

        return DesignSession.from_model(
            source.model, weights=source.weights, label_map=source.label_map,
            images=source.images, input_size=source.input_size, mode=source.mode,
            mean=source.mean, std=source.std, device=source.device,
            allow_pickle=source.allow_pickle,
        )  # fmt: skip

    return build
