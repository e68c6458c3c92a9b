"""Label maps: JSON arrays of ``{"index": int, "name": str, "word_net_id": str}``.

ViRelAy's viewer requires the ``word_net_id`` key on every entry, so relscope always writes
it (an empty string when there is none) and reads an empty string as "no WordNet id".
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from relscope._atomic import atomic_write_text
from relscope.errors import FormatError

__all__ = ["Label", "LabelMap", "describe_category", "load_label_map", "save_label_map"]

MAX_LABEL_MAP_BYTES = 64 * 1024 * 1024
_KNOWN_KEYS = {"index", "name", "word_net_id"}
_PADDED_INDEX = re.compile(r"^\d+$")


@dataclass(frozen=True)
class Label:
    """One class: output index, human-readable name and optional WordNet id."""

    index: int
    name: str
    word_net_id: str | None = None


class LabelMap(Sequence[Label]):
    """An ordered collection of labels with look-ups by index, WordNet id, name or category.

    Examples
    --------
    >>> labels = LabelMap([Label(0, "cat"), Label(1, "dog", "n02084071")])
    >>> labels.by_index(1).name
    'dog'
    >>> labels.resolve("n02084071").index, labels.resolve("00000000").name
    (1, 'cat')
    """

    def __init__(self, labels: Iterable[Label], *, source: str | os.PathLike[str] = "<labels>"):
        self._labels = sorted(labels, key=lambda label: label.index)
        self.source = str(source)
        self._by_index: dict[int, Label] = {}
        self._by_wnid: dict[str, Label] = {}
        self._by_name: dict[str, Label] = {}
        for position, label in enumerate(self._labels):
            where = f"[{position}]"
            if label.index in self._by_index:
                raise FormatError(
                    self.source, where, "unique indices", f"index {label.index} twice"
                )
            if label.word_net_id and label.word_net_id in self._by_wnid:
                raise FormatError(
                    self.source, where, "unique word_net_id values", f"{label.word_net_id!r} twice"
                )
            self._by_index[label.index] = label
            if label.word_net_id:
                self._by_wnid[label.word_net_id] = label
            self._by_name.setdefault(label.name, label)

    def __len__(self) -> int:
        return len(self._labels)

    def __getitem__(self, position):  # type: ignore[override]
        return self._labels[position]

    def __iter__(self) -> Iterator[Label]:
        return iter(self._labels)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LabelMap) and self._labels == other._labels

    def __repr__(self) -> str:
        return f"LabelMap({len(self)} labels from {self.source})"

    @property
    def indices(self) -> list[int]:
        """All class indices in ascending order."""
        return [label.index for label in self._labels]

    def by_index(self, index: int) -> Label:
        """The label with output index ``index``."""
        try:
            return self._by_index[int(index)]
        except KeyError:
            raise KeyError(f"{self.source}: no label with index {index}") from None

    def name(self, index: int) -> str:
        """The human-readable name of class ``index``, or ``str(index)`` if unknown."""
        label = self._by_index.get(int(index))
        return label.name if label is not None else str(index)

    def __contains__(self, index: object) -> bool:
        return isinstance(index, int | np.integer) and int(index) in self._by_index

    def resolve(self, reference: str | int) -> Label:
        """Find a label by index, WordNet id, zero-padded index string or name (in that order)."""
        if isinstance(reference, int | np.integer):
            return self.by_index(int(reference))
        if reference in self._by_wnid:
            return self._by_wnid[reference]
        if _PADDED_INDEX.match(reference) and int(reference) in self._by_index:
            return self._by_index[int(reference)]
        if reference in self._by_name:
            return self._by_name[reference]
        raise KeyError(f"{self.source}: no label matches {reference!r}")

    def category_name(self, index: int) -> str:
        """The category key ViRelAy uses for class ``index``: its WordNet id, else ``%08d``."""
        label = self._by_index.get(int(index))
        if label is not None and label.word_net_id:
            return label.word_net_id
        return f"{int(index):08d}"

    def to_json(self) -> list[dict[str, object]]:
        """The JSON form (always with ``word_net_id``, as ViRelAy requires)."""
        return [
            {"index": label.index, "name": label.name, "word_net_id": label.word_net_id or ""}
            for label in self._labels
        ]

    @classmethod
    def from_names(cls, names: Iterable[str]) -> LabelMap:
        """A label map with indices 0..n-1 for the given names."""
        return cls(Label(i, str(name)) for i, name in enumerate(names))


def _parse_entry(entry: object, position: int, source: str) -> Label:
    where = f"[{position}]"
    if not isinstance(entry, dict):
        raise FormatError(source, where, "an object with index and name", type(entry).__name__)
    for key, kind in (("index", "an integer >= 0"), ("name", "a string")):
        if key not in entry:
            raise FormatError(source, f"{where}.{key}", kind, "nothing")
    index, name = entry["index"], entry["name"]
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        raise FormatError(source, f"{where}.index", "an integer >= 0", repr(index))
    if not isinstance(name, str):
        raise FormatError(source, f"{where}.name", "a string", repr(name))
    wnid = entry.get("word_net_id")
    if wnid is not None and not isinstance(wnid, str):
        raise FormatError(source, f"{where}.word_net_id", "a string", repr(wnid))
    unknown = set(entry) - _KNOWN_KEYS
    if unknown:
        raise FormatError(source, where, "only index, name, word_net_id", f"keys {sorted(unknown)}")
    return Label(index, name, wnid or None)


def load_label_map(path: str | os.PathLike[str]) -> LabelMap:
    """Read and validate a label map JSON file."""
    path = Path(path)
    if not path.is_file():
        raise FormatError(path, "/", "an existing label map JSON file", "no such file")
    if path.stat().st_size > MAX_LABEL_MAP_BYTES:
        raise FormatError(path, "/", f"at most {MAX_LABEL_MAP_BYTES} bytes", "a larger file")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise FormatError(path, "/", "UTF-8 JSON", "undecodable bytes") from None
    except json.JSONDecodeError as error:
        raise FormatError(
            path, f"line {error.lineno} column {error.colno}", "valid JSON", error.msg
        ) from None
    if not isinstance(document, list):
        raise FormatError(path, "/", "a JSON array of labels", type(document).__name__)
    if not document:
        raise FormatError(path, "/", "at least one label", "an empty array")
    return LabelMap((_parse_entry(e, i, str(path)) for i, e in enumerate(document)), source=path)


def describe_category(category: str, labels: LabelMap | None) -> str:
    """A category key as people read it: with its class name from ``labels`` beside it.

    Keys the label map does not resolve, or whose name is the key itself, stay as they are.

    >>> labels = LabelMap([Label(3, "cat"), Label(4, "dog", "n02084071")])
    >>> describe_category("00000003", labels), describe_category("n02084071", labels)
    ('00000003 (cat)', 'n02084071 (dog)')
    >>> describe_category("00000009", labels), describe_category("00000003", None)
    ('00000009', '00000003')
    """
    if labels is None:
        return category
    try:
        name = labels.resolve(category).name
    except KeyError:
        return category
    return category if name == category else f"{category} ({name})"


def save_label_map(labels: LabelMap | Iterable[Label], path: str | os.PathLike[str]) -> Path:
    """Write a label map JSON file atomically and return its path."""
    labels = labels if isinstance(labels, LabelMap) else LabelMap(labels)
    atomic_write_text(path, json.dumps(labels.to_json(), indent=2, ensure_ascii=False) + "\n")
    return Path(path)
