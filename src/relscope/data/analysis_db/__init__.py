"""Analysis databases: per-category embeddings, clusterings and scores of a meta-analysis (HDF5).

Every category (usually a class, keyed like ViRelAy by WordNet id or ``%08d``) is a group::

    <category>/index             uint32 (N,)   samples of the category (attribution rows)
    <category>/embedding/<name>  float (N, d)  attrs: eigenvalue (1-D), embedding (str), index
    <category>/cluster/<name>    int (N,)      attrs: embedding (str), k, index, params (JSON)
    <category>/cluster/<flag>    bool (N,)     per-sample flags like ``train_split`` ("extras")
    <category>/score/<name>      float ()      relscope only, e.g. ``eigengap``; ViRelAy ignores it

Two physical layouts are read transparently:

``virelay``
    The default: category groups directly at the top level, one analysis per file, which is
    what ViRelAy's viewer reads and its example scripts write; the analysis name lives in the
    project file (relscope also keeps it in the file attribute ``analysis``).
``nested``
    Written only on request: top-level groups are analyses (``spray``, ``spray_abs``, ...),
    each holding category groups, so several analyses can share one file. ViRelAy cannot open
    such a file.

Errors about attributes name the key as ``<HDF5 path>@<attribute>``.

The package: :mod:`~relscope.data.analysis_db.records` (the in-memory model and its
validation), :mod:`~relscope.data.analysis_db.layout` (names and limits of the layout),
:mod:`~relscope.data.analysis_db.writer`, :mod:`~relscope.data.analysis_db.parse` (one
category group read back) and :mod:`~relscope.data.analysis_db.reader` (whole files).
"""

from relscope.data.analysis_db.layout import FORMAT, LAYOUTS
from relscope.data.analysis_db.layout import Layout as Layout  # re-exported, as before
from relscope.data.analysis_db.reader import AnalysisDatabase
from relscope.data.analysis_db.records import CategoryAnalysis, Clustering, Embedding
from relscope.data.analysis_db.writer import AnalysisWriter

__all__ = [
    "FORMAT",
    "LAYOUTS",
    "AnalysisDatabase",
    "AnalysisWriter",
    "CategoryAnalysis",
    "Clustering",
    "Embedding",
]
