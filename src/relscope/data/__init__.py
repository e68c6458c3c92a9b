"""On-disk formats of a relscope / ViRelAy project folder.

Dataset databases and image folders, attribution databases (streamed, sharded, resumable),
analysis databases, label maps and project files. Every reader validates what it opens and
raises :class:`relscope.errors.FormatError` naming the file, the key and the expectation.
"""

from relscope.data.labels import Label, LabelMap, load_label_map, save_label_map

__all__ = ["Label", "LabelMap", "load_label_map", "save_label_map"]
