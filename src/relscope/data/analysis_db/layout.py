"""Names and limits of the analysis database layout, shared by the writer and the reader.

See :mod:`relscope.data.analysis_db` for the layout itself.
"""

from __future__ import annotations

from typing import Literal

FORMAT = "relscope-analysis"
LAYOUTS = ("virelay", "nested")
Layout = Literal["virelay", "nested"]

INDEX, EMBEDDING, CLUSTER, SCORE = "index", "embedding", "cluster", "score"
# Clustering attributes with a fixed meaning; parameters may not shadow them.
CLUSTER_ATTRS = frozenset({"embedding", "k", "index", "params"})
UINT32_LIMIT = 2**32
INT64_MIN, UINT64_LIMIT = -(2**63), 2**64
