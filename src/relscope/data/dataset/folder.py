"""Image folders: one sub-folder per class (or labels from a path regex), read as samples.

Every image file below the root is a sample, in sorted order of the relative POSIX paths
(ViRelAy's sorted glob order); images are decoded with PIL and brought to one size by the
methods of :mod:`relscope.data.dataset.sampling`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from relscope.data.dataset.base import ImageDataset, Transform
from relscope.data.dataset.sampling import (
    DOWN_SAMPLING_METHODS,
    UP_SAMPLING_METHODS,
    check_size,
    image_array,
)
from relscope.data.labels import LabelMap
from relscope.errors import ConfigError, FormatError

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"})
IMAGE_MODES = ("RGB", "L")


class ImageFolderDataset(ImageDataset):
    """A folder of image files with one sub-folder per class.

    Every file with an image extension (png, jpg, jpeg, bmp, gif, tif, tiff, webp; any case)
    below ``path`` is a sample, in sorted order of the relative POSIX paths. Hidden files and
    folders (names starting with ``.``) are skipped, as ViRelAy's glob skips them.

    Parameters
    ----------
    path:
        The root folder.
    label_map:
        Resolves class folder names (WordNet id, zero-padded index or name) to labels. Without
        one, the sorted names of the folders that contain images become classes 0..K-1.
    size:
        ``(height, width)`` every image is brought to with the sampling methods; None keeps
        native sizes (batching then needs equal sizes).
    up_sampling:
        Method for dimensions smaller than ``size``: one of :data:`UP_SAMPLING_METHODS`.
        Padding methods centre the image (an odd remainder goes to the bottom/right).
    down_sampling:
        Method for dimensions larger than ``size``: one of :data:`DOWN_SAMPLING_METHODS`.
    mode:
        ``"RGB"`` (3 channels) or ``"L"`` (1 channel).
    label_index_regex, label_word_net_id_regex:
        A regular expression matched (``re.match``) against the relative path, or failing that
        against the full path (``path`` joined with it, which is what ViRelAy matches), whose
        first group is the class index or WordNet id; at most one may be given, and the
        WordNet id form needs a label map. It replaces the class-folder rule.
    transform:
        Optional callable applied to image tensors in ``__getitem__``.

    Raises
    ------
    ConfigError
        For invalid options.
    FormatError
        If the folder is missing, has no images, or a sample gets no label.
    """

    _size_hint = "set size=(height, width) with up-/down-sampling methods other than 'none'"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        label_map: LabelMap | None = None,
        size: tuple[int, int] | None = None,
        up_sampling: str = "none",
        down_sampling: str = "none",
        mode: str = "RGB",
        label_index_regex: str | None = None,
        label_word_net_id_regex: str | None = None,
        transform: Transform | None = None,
    ) -> None:
        super().__init__(path, transform)
        if label_map is not None and not isinstance(label_map, LabelMap):
            raise ConfigError(f"label_map must be a LabelMap, got {type(label_map).__name__}")
        self.label_map = label_map
        self.size = check_size(size)
        self.up_sampling = _check_choice("up_sampling", up_sampling, UP_SAMPLING_METHODS)
        self.down_sampling = _check_choice("down_sampling", down_sampling, DOWN_SAMPLING_METHODS)
        self.mode = _check_choice("mode", mode, IMAGE_MODES)
        if label_index_regex is not None and label_word_net_id_regex is not None:
            raise ConfigError("give at most one of label_index_regex and label_word_net_id_regex")
        if label_word_net_id_regex is not None and label_map is None:
            raise ConfigError("label_word_net_id_regex needs a label map to resolve WordNet ids")
        self._index_regex = _compile("label_index_regex", label_index_regex)
        self._wnid_regex = _compile("label_word_net_id_regex", label_word_net_id_regex)
        self._wnid_lookup: dict[str, int] | None = None

        if not self.path.is_dir():
            found = "a file" if self.path.exists() else "no such folder"
            raise FormatError(self.path, "/", "an image folder", found)
        self._files = _find_images(self.path)
        if not self._files:
            extensions = ", ".join(sorted(e[1:] for e in IMAGE_EXTENSIONS))
            raise FormatError(self.path, "/", f"image files ({extensions})", "none")
        self.classes: list[str] | None = None
        self._labels = self._assign_labels()
        if label_map is not None:
            self.num_classes = max(label_map.indices) + 1
        elif self.classes is not None:
            self.num_classes = len(self.classes)

    def _assign_labels(self) -> np.ndarray:
        regex = self._index_regex or self._wnid_regex
        if regex is not None:
            return np.asarray([self._regex_label(regex, rel) for rel in self._files], np.int64)
        folders = []
        for rel in self._files:
            if "/" not in rel:
                raise FormatError(
                    self.path,
                    rel,
                    "images inside one sub-folder per class (or a label regex)",
                    "an image directly in the root folder",
                )
            folders.append(rel.split("/", 1)[0])
        self.classes = sorted(set(folders))
        if self.label_map is None:
            lookup = {name: i for i, name in enumerate(self.classes)}
        else:
            lookup = {}
            for name in self.classes:
                try:
                    lookup[name] = self.label_map.resolve(name).index
                except KeyError:
                    raise FormatError(
                        self.path,
                        name,
                        f"a class folder named by a WordNet id, zero-padded index or name "
                        f"in label map {self.label_map.source}",
                        f"folder {name!r} that matches no label",
                    ) from None
        return np.asarray([lookup[name] for name in folders], dtype=np.int64)

    def _regex_label(self, regex: re.Pattern[str], rel: str) -> int:
        option = "label_index_regex" if regex is self._index_regex else "label_word_net_id_regex"
        match = regex.match(rel)
        if match is None:
            # ViRelAy matches against <project folder>/<dataset path>/<file>, so regexes written
            # for it start with a prefix like ".*/" that the relative path alone cannot match.
            match = regex.match((self.path / rel).as_posix())
        value = match.group(1) if match is not None else None
        if value is None:
            raise FormatError(
                self.path, rel, f"a path matching {option} {regex.pattern!r}", "no match"
            )
        if regex is self._index_regex:
            if not value.isdigit():
                raise FormatError(self.path, rel, f"a class index from {option}", repr(value))
            index = int(value)
            if self.label_map is not None and index not in self.label_map:
                raise FormatError(
                    self.path, rel, f"a class index in label map {self.label_map.source}", value
                )
            return index
        assert self.label_map is not None
        if self._wnid_lookup is None:
            self._wnid_lookup = {
                label.word_net_id: label.index for label in self.label_map if label.word_net_id
            }
        if value not in self._wnid_lookup:
            raise FormatError(
                self.path, rel, f"a WordNet id in label map {self.label_map.source}", repr(value)
            )
        return self._wnid_lookup[value]

    def __len__(self) -> int:
        return len(self._files)

    def ids(self) -> list[str]:
        """Relative POSIX paths of the image files, in dataset order."""
        return list(self._files)

    def labels(self) -> np.ndarray:
        """All class indices, int64 ``(N,)``, derived from paths only."""
        return self._labels.copy()

    def _read_label(self, index: int) -> int:
        return int(self._labels[index])

    def _read_data(self, index: int) -> np.ndarray:
        file = self.path / self._files[index]
        try:
            with Image.open(file) as opened:
                return image_array(
                    opened, self.size, self.up_sampling, self.down_sampling, self.mode
                )
        except MemoryError:
            raise
        except Exception as error:
            # Broken files make PIL raise many types (OSError, SyntaxError, struct.error ...).
            raise FormatError(
                file, "/", "a decodable image file", f"{type(error).__name__}: {error}"
            ) from None


def _check_choice(option: str, value: object, valid: Sequence[str]) -> str:
    if value not in valid:
        raise ConfigError(f"{option} must be one of {', '.join(valid)}; got {value!r}")
    return str(value)


def _compile(option: str, pattern: str | None) -> re.Pattern[str] | None:
    if pattern is None:
        return None
    try:
        compiled = re.compile(pattern)
    except (re.error, TypeError) as error:
        raise ConfigError(f"{option} is not a valid regular expression: {error}") from None
    if compiled.groups < 1:
        raise ConfigError(f"{option} must have a group capturing the label, got {pattern!r}")
    return compiled


def _find_images(root: Path) -> list[str]:
    found = []
    seen: set[str] = set()
    for directory, folders, files in os.walk(root, followlinks=True):
        # Following links (as glob's ** does) could loop; visit each real folder once.
        real = os.path.realpath(directory)
        if real in seen:
            folders[:] = []
            continue
        seen.add(real)
        folders[:] = [name for name in folders if not name.startswith(".")]
        relative = Path(directory).relative_to(root)
        for name in files:
            if name.startswith(".") or os.path.splitext(name)[1].lower() not in IMAGE_EXTENSIONS:
                continue
            found.append((relative / name).as_posix())
    return sorted(found)
