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
