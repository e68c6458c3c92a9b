"""Schema-driven fuzzing of the HTTP API (schemathesis): no input gets a server error, the
Explorer's operations and the Designer's (the project names a model it can build)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from relscope.app import create_app
from support.projects import make_project_folder

# Collection needs the schema, so the project is made at import, in its own folder.
PROJECT = make_project_folder(
    Path(tempfile.mkdtemp(prefix="relscope-fuzz-")), model="support.designer_models:tiny_cnn"
)
schema = schemathesis.openapi.from_asgi("/api/openapi.json", create_app([PROJECT]))


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_input_gets_a_server_error(case):
    case.call_and_validate(checks=[not_a_server_error])
