"""The HTTP API fuzzed from its own OpenAPI description (schemathesis) against the real server.

Schemathesis reads /api/openapi.json from the running web app (real Redis, the in-process
worker) and generates requests for every operation: valid ones from the schemas (positive) and
ones that break them (negative: wrong types, unknown fields, bad enums...). Every answer must be
documented: no 5xx, a documented status and content type, a body matching its schema (also
checked with our own validator, tests.bots.test_api), and no ERROR log line on the server.

Bounded: MAX_EXAMPLES per operation and mode, derandomized (the same cases on every run, so a
failure reproduces), no shrinking; about 15 s on 2 cores.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.core.result import Ok

from tests.bots.test_api import ALICE, Client, api_client
from tests.support.service import Service

MAX_EXAMPLES = 30
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
CHECK_NAMES = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
)

# aiohttp's own multipart reader calls its deprecated StreamReader.unread_data() each time it
# meets a boundary (aiohttp 3.14, multipart.py): not something this code can avoid.
pytestmark = pytest.mark.filterwarnings(
    r"ignore:unread_data\(\) is deprecated:DeprecationWarning:aiohttp.multipart"
)


@dataclass
class Tally:
    cases: int = 0
    by_operation: dict[str, int] = field(default_factory=dict)
    #: "<status> <error code>" -> how many
    statuses: dict[str, int] = field(default_factory=dict)


def fuzz(api: Client) -> Tally:
    """Every operation in both modes, in this thread (the server runs on the test's loop)."""
    # from_dict, not from_url: from_url leaves out the operation that serves the document itself
    doc = requests.get(api.base + "/api/openapi.json", timeout=10).json()
    schema = schemathesis.openapi.from_dict(doc)
    checks = [getattr(schemathesis.checks, name) for name in CHECK_NAMES]
    # as alice: past the key check, into what the handlers do (tests.bots.test_api covers keys)
    auth = {"Authorization": f"Bearer {ALICE}"}
    tally = Tally()

    def send(http: requests.Session, case: schemathesis.Case) -> None:
        response = case.call(base_url=api.base, session=http, headers=auth)
        case.validate_response(response, checks=checks, headers=auth)
        body: Any = response.json()
        api.validate(case.method, case.formatted_path, response.status_code, body)
        tally.cases += 1
        label = case.operation.label
        tally.by_operation[label] = tally.by_operation.get(label, 0) + 1
        seen = f"{response.status_code} {body['error']['code'] if body.get('error') else ''}"
        tally.statuses[seen.strip()] = tally.statuses.get(seen.strip(), 0) + 1

    with requests.Session() as http:
        for result in schema.get_all_operations():
            assert isinstance(result, Ok), result  # the document is valid
            operation = result.ok()
            # a request with neither parameters nor a body has nothing to break
            inputs = bool(operation.body) or any(True for _ in operation.iter_parameters())
            for mode in MODES if inputs else MODES[:1]:
                run = given(case=operation.as_strategy(generation_mode=mode))(
                    lambda case: send(http, case)
                )
                settings(
                    max_examples=MAX_EXAMPLES,
                    derandomize=True,
                    database=None,
                    deadline=None,
                    phases=[Phase.explicit, Phase.generate],
                    suppress_health_check=list(HealthCheck),
                )(run)()
    return tally


async def test_fuzz_the_api_from_its_openapi_description(
    service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with api_client(service) as api:
        tally = await asyncio.to_thread(fuzz, api)
    print(f"schemathesis: {tally.cases} cases {tally.by_operation}, statuses {tally.statuses}")
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    # every operation was exercised, in both modes, and the server said more than "no"
    assert set(tally.by_operation) == {
        "POST /api/stemify",
        "GET /api/jobs/{job_id}",
        "DELETE /api/jobs/{job_id}",
        "POST /api/jobs/{job_id}/mixes",
        "GET /api/openapi.json",
    }
    assert tally.cases >= len(tally.by_operation) * len(MODES) * 5
    assert {s.split()[0] for s in tally.statuses} >= {"200", "400", "404", "422"}
    assert service.uploads() == []
    assert service.tmp_leftovers() == []
