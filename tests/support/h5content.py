"""Read a whole HDF5 file into plain Python for equality checks in tests."""

from pathlib import Path

import h5py
import numpy as np


def h5_content(path: str | Path) -> dict:
    """Map every object path to (kind, dtype, shape, bytes/attrs) so files can be compared."""
    content: dict = {}

    def attrs(obj) -> dict:
        return {k: np.asarray(v).tolist() for k, v in obj.attrs.items()}

    with h5py.File(path, "r") as handle:
        content["/@"] = attrs(handle)

        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                data = obj[()]
                content[name] = ("dataset", str(obj.dtype), obj.shape, np.asarray(data).tobytes())
            else:
                content[name] = ("group",)
            content[name + "@"] = attrs(obj)

        handle.visititems(visit)
    return content
