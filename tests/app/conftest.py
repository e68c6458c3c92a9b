"""Fixtures of the application's tests: one headless Chromium per test module."""

import pytest

from support.browser import chromium


@pytest.fixture(scope="module")
def browser():
    with chromium() as launched:
        yield launched
