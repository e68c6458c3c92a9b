"""The inputs of a job, from what a user writes: device, method, parameters, classes, the
dataset with its normalization, YAML files.

Messages name the command-line options (``--device``, ``-p``, ``--mean``) because that is
how most users give these settings; the configuration file of ``relscope run`` uses the
same words.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import yaml

from relscope.attribution.config import MethodConfig, method_config
from relscope.attribution.parameters import ParameterError
from relscope.data.dataset import ImageDataset, open_dataset
from relscope.data.labels import load_label_map
from relscope.errors import ConfigError, PathError

__all__ = [
    "load_method",
    "open_input",
    "parse_classes",
    "parse_floats",
    "parse_params",
    "read_yaml_file",
    "resolve_device",
]


def read_yaml_file(path: Path, what: str, kind: str = "YAML") -> Any:
    """The safely loaded YAML (or JSON) document in ``path``; one-line errors name ``what``."""
    if not path.is_file():
        raise PathError(f"{path}: no such {what}")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid {kind} ({' '.join(str(error).split())})") from None


def parse_classes(text: str | Sequence[int] | None, option: str = "classes") -> list[int] | None:
    """Class indices from ``"3,7"`` (or a list); ``None``/empty: every class.

    ``option`` names the setting in error messages.
    """
    if text is None:
        return None
    parts = [p.strip() for p in text.split(",")] if isinstance(text, str) else list(text)
    if not [p for p in parts if p != ""]:
        return None
    classes = []
    for part in parts:
        try:
            value = int(part)
        except (TypeError, ValueError):
            raise ConfigError(f"{option}: {part!r} is not a class index") from None
        if value < 0:
            raise ConfigError(f"{option}: {value} is not a class index (negative)")
        classes.append(value)
    return sorted(set(classes))


def resolve_device(device: str) -> torch.device:
    """``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda`` or ``cuda:N``."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError:
        raise ConfigError(f"--device must be auto, cpu, cuda or cuda:N, got {device!r}") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {device}: CUDA is not available on this machine")
    return resolved


def load_method(method: str, params: Sequence[str] = ()) -> MethodConfig:
    """A method by name with ``key=value`` params, or a JSON/YAML configuration file.

    A parameter the method does not take, or a value of the wrong type, is refused in one
    line naming the ``-p`` item, the parameter and the type expected.
    """
    path = Path(method)
    if path.suffix.lower() in (".json", ".yaml", ".yml"):
        if params:
            raise ConfigError("--param applies to a method name, not to a configuration file")
        return method_config(read_yaml_file(path, "attribution configuration file", "JSON/YAML"))
    values = parse_params(params, "-p")
    try:
        return method_config({"method": method, "params": values})
    except ParameterError as error:
        # The last item of a repeated name is the one that counts, as in parse_params.
        items = {item.partition("=")[0].strip(): item for item in params}
        if error.name not in items:
            raise
        raise ConfigError(error.at(f"-p {items[error.name]}")) from None


def parse_floats(text: str | None, option: str) -> list[float] | None:
    """Comma-separated numbers (e.g. ``--mean 0.5,0.5,0.5``), or None for None."""
    if text is None:
        return None
    try:
        return [float(part) for part in text.split(",")]
    except ValueError:
        raise ConfigError(f"{option} must be comma-separated numbers, got {text!r}") from None


def parse_params(items: Sequence[str], option: str) -> dict[str, Any]:
    """``name=value`` items into a dict; values are read as YAML scalars or lists."""
    values: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{option} {item}: expected name=value")
        try:
            # Numbers, booleans, null and lists ("[1, 2]") as a user would type them.
            values[key.strip()] = yaml.safe_load(value) if value.strip() else ""
        except yaml.YAMLError:
            raise ConfigError(f"{option} {item!r}: the value is not valid YAML") from None
    return values


def open_input(
    path: Path,
    *,
    input_size: tuple[int, int] | None = None,
    up_sampling: str = "none",
    down_sampling: str = "none",
    label_map: Path | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> ImageDataset:
    """The dataset at ``path`` (HDF5 or image folder), normalized with ``mean``/``std``."""
    transform = _normalization(mean, std)
    if path.is_dir():
        options: dict[str, Any] = {"up_sampling": up_sampling, "down_sampling": down_sampling}
        if input_size is not None:
            options["size"] = tuple(input_size)
        if label_map is not None:
            options["label_map"] = load_label_map(label_map)
        return open_dataset(path, kind="image_directory", transform=transform, **options)
    if input_size is not None or up_sampling != "none" or down_sampling != "none":
        raise ConfigError("--input-size and the sampling methods apply to image folders only")
    return open_dataset(path, kind="hdf5", transform=transform)


class _Normalize:
    """``(x - mean) / std`` per channel (a picklable transform for DataLoader workers)."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        self.mean = torch.tensor(list(mean), dtype=torch.float32)[:, None, None]
        self.std = torch.tensor(list(std), dtype=torch.float32)[:, None, None]

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        if image.shape[0] != self.mean.shape[0]:
            raise ConfigError(
                f"--mean/--std give {self.mean.shape[0]} channels, the image has {image.shape[0]}"
            )
        return (image - self.mean) / self.std


def _normalization(mean: Sequence[float] | None, std: Sequence[float] | None) -> _Normalize | None:
    if mean is None and std is None:
        return None
    if mean is None or std is None or len(mean) != len(std):
        raise ConfigError("--mean and --std go together, with one value per channel each")
    if any(s <= 0 for s in std):
        raise ConfigError(f"--std values must be positive, got {list(std)}")
    return _Normalize(mean, std)
