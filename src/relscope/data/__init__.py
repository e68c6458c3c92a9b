"""On-disk formats of a relscope / ViRelAy project folder.

Dataset databases and image folders, attribution databases (streamed, sharded, resumable),
analysis databases, label maps and project files. Every reader validates what it opens and
raises :class:`relscope.errors.FormatError` naming the file, the key and the expectation.
"""

from relscope.data.analysis_db import (
    AnalysisDatabase,
    AnalysisWriter,
    CategoryAnalysis,
    Clustering,
    Embedding,
)
from relscope.data.attribution_db import (
    AttributionDatabase,
    AttributionRecord,
    AttributionSet,
    AttributionWriter,
    shard_indices,
    write_attribution_groups,
)
from relscope.data.check import Finding, ProjectReport, check_project, open_project_dataset
from relscope.data.dataset import (
    Batch,
    HDF5Dataset,
    ImageDataset,
    ImageFolderDataset,
    Sample,
    open_dataset,
    write_hdf5_dataset,
)
from relscope.data.labels import (
    Label,
    LabelMap,
    describe_category,
    load_label_map,
    save_label_map,
)
from relscope.data.project import (
    AnalysisSpec,
    AttributionSpec,
    DatasetSpec,
    Project,
    load_project,
    save_project,
)
from relscope.data.virelay import VirelayCheck, check_virelay

__all__ = [
    "AnalysisDatabase",
    "AnalysisSpec",
    "AnalysisWriter",
    "AttributionDatabase",
    "AttributionRecord",
    "AttributionSet",
    "AttributionSpec",
    "AttributionWriter",
    "Batch",
    "CategoryAnalysis",
    "Clustering",
    "DatasetSpec",
    "Embedding",
    "Finding",
    "HDF5Dataset",
    "ImageDataset",
    "ImageFolderDataset",
    "Label",
    "LabelMap",
    "Project",
    "ProjectReport",
    "Sample",
    "VirelayCheck",
    "check_project",
    "check_virelay",
    "describe_category",
    "load_label_map",
    "load_project",
    "open_dataset",
    "open_project_dataset",
    "save_label_map",
    "save_project",
    "shard_indices",
    "write_attribution_groups",
    "write_hdf5_dataset",
]
