"""Datasets: HDF5 dataset databases and image folders behind one reader interface.

Two on-disk layouts are read, both compatible with the ViRelAy viewer:

HDF5 dataset database (:mod:`~relscope.data.dataset.hdf5`)
    ``data`` is either a float array ``N x C x H x W`` (equal-size images) or a group
    ``data/<id>`` of ``C x H x W`` arrays (varying sizes). ``label`` holds ``N`` integer class
    indices or ``N x K`` booleans (multi-label); with a ``data`` group it is a group
    ``label/<id>`` of integer scalars or boolean ``K``-vectors. An optional group
    ``index/<id>`` gives each id its integer position; without it the sample order is the
    key order of ``data`` as h5py iterates it (which is what ViRelAy uses).

Image folder (:mod:`~relscope.data.dataset.folder`)
    One sub-folder per class; every image file below the root is a sample, in sorted order of
    the relative POSIX paths (ViRelAy's sorted glob order).

Both are :class:`ImageDataset` objects (:mod:`~relscope.data.dataset.base`): whole-sample
access (:meth:`ImageDataset.sample`), all labels without decoding images
(:meth:`ImageDataset.labels`) and fast batched reading (:meth:`ImageDataset.batches`), all
in NumPy, and ``(image, label)`` tensors by indexing, for a
:class:`torch.utils.data.DataLoader`. Only indexing imports PyTorch
(:mod:`~relscope.data.dataset.tensors`). :func:`write_hdf5_dataset`
(:mod:`~relscope.data.dataset.writer`) writes a dataset database.
"""

from relscope.data.dataset.base import Batch, ImageDataset, Sample
from relscope.data.dataset.folder import IMAGE_EXTENSIONS, ImageFolderDataset
from relscope.data.dataset.hdf5 import HDF5Dataset
from relscope.data.dataset.kinds import DATASET_KINDS, open_dataset
from relscope.data.dataset.sampling import DOWN_SAMPLING_METHODS, UP_SAMPLING_METHODS
from relscope.data.dataset.writer import write_hdf5_dataset

__all__ = [
    "DATASET_KINDS",
    "DOWN_SAMPLING_METHODS",
    "IMAGE_EXTENSIONS",
    "UP_SAMPLING_METHODS",
    "Batch",
    "HDF5Dataset",
    "ImageDataset",
    "ImageFolderDataset",
    "Sample",
    "open_dataset",
    "write_hdf5_dataset",
]
