"""Property-based run of the LIVE school API from its own OpenAPI document (schemathesis).

The document is fetched from the running gateway (``/api/v1/openapi.json``); every operation
gets generated requests (bounded: ``EXAMPLES`` per operation, a few hundred in all), sent with a
valid credential of school A. Checks on every answer: no 5xx, the status code is documented, the
Content-Type is documented, and the body is valid against its schema."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis  # a declared test dependency: missing is an install error, not a skip
from api_support import SCHOOL_A, LiveApi, live_api
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EXAMPLES = 25
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApi]:
    yield from live_api(Path(tmp_path_factory.mktemp("schemathesis")))


def test_every_operation_answers_within_its_document(api: LiveApi) -> None:
    schema = schemathesis.openapi.from_url(api.url + "openapi.json")
    base_url = api.url.rstrip("/").removesuffix("/api/v1")
    headers = {"Authorization": api.credentials[SCHOOL_A]}
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 14
    sent = 0
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def run(case) -> None:  # type: ignore[no-untyped-def]
            nonlocal sent
            sent += 1
            case.call_and_validate(base_url=base_url, headers=headers, checks=CHECKS)

        try:
            run()
        except Exception as exc:  # collect every operation's failure, then report them all
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}"[:3000])
    assert not failures, "\n\n".join(failures)
    assert sent >= 100
