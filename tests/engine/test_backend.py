"""The local backend: every item once with its result, in this process or in a pool."""

from __future__ import annotations

import os

import pytest

from relscope.engine import Backend, LocalBackend
from relscope.errors import ConfigError


def square_and_pid(x: int) -> tuple[int, int]:
    return x * x, os.getpid()


def fails_on_three(x: int) -> int:
    if x == 3:
        raise ValueError("three")
    return x


def test_one_job_runs_in_order_in_this_process():
    pairs = list(LocalBackend().map(square_and_pid, [3, 1, 2]))
    assert [(item, result[0]) for item, result in pairs] == [(3, 9), (1, 1), (2, 4)]
    assert {result[1] for _, result in pairs} == {os.getpid()}


def test_a_pool_gives_every_item_with_its_result():
    backend = LocalBackend(jobs=2)
    assert isinstance(backend, Backend) and repr(backend) == "LocalBackend(jobs=2)"
    pairs = list(backend.map(square_and_pid, range(6)))
    assert sorted((item, result[0]) for item, result in pairs) == [(i, i * i) for i in range(6)]
    assert os.getpid() not in {result[1] for _, result in pairs}


@pytest.mark.parametrize("jobs", [1, 2])
def test_an_error_of_a_piece_is_raised(jobs):
    with pytest.raises(ValueError, match="three"):
        list(LocalBackend(jobs).map(fails_on_three, range(5)))


@pytest.mark.parametrize("jobs", [0, -1, 1.5, True])
def test_jobs_must_be_a_positive_integer(jobs):
    with pytest.raises(ConfigError, match="jobs must be a positive integer"):
        LocalBackend(jobs)
