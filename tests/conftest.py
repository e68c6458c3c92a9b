"""Shared pytest configuration."""

import sys
from pathlib import Path

# Test support modules (stand-alone jobs, model zoo work-arounds) live in tests/support.
sys.path.insert(0, str(Path(__file__).parent))
