"""Schemathesis against the app's own OpenAPI: every check, positive and negative data.

The explicit strategy API is used instead of ``schemathesis.pytest.from_fixture``, whose lazy
loader does not work with pytest 9.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig

from gateway.app import create_app
from tests.conftest import test_settings

CONFIG = SchemathesisConfig.from_path(Path(__file__).with_name("schemathesis.toml"))
MAX_EXAMPLES = 60


@pytest.fixture
def api_key(keys, candidates) -> str:
    return keys.create("Schemathesis")


@pytest.fixture
def api_schema(migrated_url, api_key):
    app = create_app(test_settings(migrated_url))
    return schemathesis.openapi.from_asgi("/openapi.json", app, config=CONFIG)


def _operations(api_schema):
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert {op.path for op in operations} == {
        "/v1/candidates/job-match",
        "/v1/candidates/job-match/{jobMatchId}",
    }
    return operations


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_api_conforms_to_its_openapi(api_schema, api_key, mode):
    for operation in _operations(api_schema):

        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def check(case):
            case.call_and_validate(headers={"X-API-Key": api_key})

        check()
