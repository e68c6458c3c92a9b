"""Shared pytest configuration."""

import sys
from pathlib import Path

import pytest

# Test support modules (stand-alone jobs, model zoo work-arounds) live in tests/support.
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
def one_thread():
    """torch on one thread for the test: modules of hundreds of tiny float64 operations
    spend more on thread hand-offs than on arithmetic with two threads on a busy machine
    (test_patterns: 48 s instead of 7 s)."""
    import torch  # here, not at the top: not every test module loads torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def ray_cluster():
    """A real local Ray, shared by every Ray test, with this process as its driver.

    Two CPUs and a small object store, bound to 127.0.0.1, without dashboard, usage
    statistics or token authentication (an explicit address with authentication on waits
    20 s and fails), its session files in a temporary directory.
    """
    import os
    import shutil
    import tempfile

    # Short: Ray's Unix sockets live under it, and their paths are limited to 107 bytes.
    temp_dir = tempfile.mkdtemp(prefix="rs-ray-", dir="/tmp")
    settings = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
    saved = {key: os.environ.get(key) for key in settings}
    os.environ.update(settings)
    import ray

    # The workers import this checkout's relscope and the test modules (functions defined
    # there travel by reference), whatever the driver's sys.path was when Ray started.
    here = Path(__file__).parent
    paths = [str(here.parent / "src"), str(here), os.environ.get("PYTHONPATH", "")]
    ray.init(
        address="local",
        runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(p for p in paths if p)}},
        num_cpus=2,
        object_store_memory=150 * 1024 * 1024,
        include_dashboard=False,
        log_to_driver=False,
        _node_ip_address="127.0.0.1",
        _temp_dir=temp_dir,
    )
    try:
        yield ray
    finally:
        ray.shutdown()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(temp_dir, ignore_errors=True)
