"""Reading datasets does not import PyTorch: the web app serves projects without it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
from PIL import Image

import relscope
from relscope.data.dataset import write_hdf5_dataset

# Runs in a fresh interpreter, where nothing has imported torch yet.
READ = textwrap.dedent(
    """
    import sys

    import relscope.data
    from relscope.data.dataset import open_dataset

    hdf5, folder = sys.argv[1:]
    for path in (hdf5, folder):
        with open_dataset(path) as dataset:
            image = dataset.sample(len(dataset) - 1).data
            assert image.dtype.name == "float32" and image.ndim == 3, image.shape
            batch = next(dataset.batches(2))
            assert batch.data.shape[0] == 2, batch.data.shape
            assert len(dataset.labels()) == len(dataset.ids()) == len(dataset)
    assert "torch" not in sys.modules, "reading a dataset imported torch"
    print("torch-free")
    """
)


def test_opening_and_reading_datasets_does_not_import_torch(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    hdf5 = write_hdf5_dataset(
        tmp_path / "data.h5", rng.random((3, 1, 4, 4), dtype=np.float32), np.array([0, 1, 0])
    )
    folder = tmp_path / "images"
    for name in ("cat/a.png", "cat/b.png", "dog/c.png"):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)).save(folder / name)
    # The child imports the same relscope as this process (the source tree under test).
    source = str(Path(relscope.__file__).parents[1])
    path = os.pathsep.join(filter(None, [source, os.environ.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, "-c", READ, str(hdf5), str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ | {"PYTHONPATH": path},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "torch-free"


def test_indexing_gives_tensors_and_plus_concatenates(tmp_path: Path) -> None:
    import torch
    from torch.utils.data import ConcatDataset

    from relscope.data.dataset import open_dataset

    data = np.arange(2 * 1 * 2 * 2, dtype=np.float32).reshape(2, 1, 2, 2)
    path = write_hdf5_dataset(tmp_path / "data.h5", data, np.array([3, 1]))
    with open_dataset(path) as dataset:
        image, label = dataset[1]
        assert torch.equal(image, torch.from_numpy(data[1]))
        assert label.dtype == torch.int64 and int(label) == 1
        both = dataset + dataset
        assert isinstance(both, ConcatDataset) and len(both) == 4
        assert torch.equal(both[3][0], image)
