"""Fuzz: schemathesis generates documents for every root field from the schema; signed in as each role, at least
FUZZ_CASES cases per operation. No server error, no stack trace, no SQL in any answer.

`make test` fuzzes briefly (FUZZ_CASES defaults to 3); `make fuzz` runs it at length. It runs once per run: on
PostgreSQL (where lengths and ranges are enforced) when it is there, else on SQLite.
"""

from __future__ import annotations

import os
import re
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from app import create_app
from resolvers.state import build_state
from schema import schema
from tests.access.test_access_matrix import VIEWERS
from tests.conftest import Api, in_own_loop

CASES = int(os.environ.get("FUZZ_CASES", "3"))
LEAKS = re.compile(
    r"Traceback|File \"/|sqlalchemy|asyncpg|aiosqlite|SELECT .* FROM|INSERT INTO|UPDATE \w+ SET|"
    r"psycopg|IntegrityError|ProgrammingError|DataError",
    re.IGNORECASE,
)
OPERATIONS = [op.ok() for op in schemathesis.graphql.from_file(schema.as_str()).get_all_operations()]  # type: ignore[union-attr]


@pytest.mark.postgres_preferred
@pytest.mark.parametrize("viewer", list(VIEWERS))
async def test_no_generated_document_breaks_the_server_or_leaks_its_insides(state, chain, viewer):
    failures: list[str] = []
    counts: dict[str, int] = {}

    def examples(run: Any, _sessionmaker: Any) -> None:
        fuzzed = build_state(state.settings)  # an app of its own, in this thread's event loop, on the same database
        app = create_app(state=fuzzed)

        async def sign_in() -> str | None:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://fuzz") as http:
                who = VIEWERS[viewer]
                return await Api(http).token(who) if who else None

        token = run(sign_in())
        headers = {"authorization": f"Bearer {token}"} if token else {}
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://fuzz")

        async def send(body: dict[str, Any]) -> tuple[int, str]:
            response = await http.post("/graphql", json=body, headers=headers)
            return response.status_code, response.text

        def fuzz(operation: Any) -> None:
            @settings(max_examples=CASES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
            @given(operation.as_strategy())
            def one(case: Any) -> None:
                status, text = run(send({"query": case.body}))
                counts[operation.label] = counts.get(operation.label, 0) + 1
                if status >= 500 or "INTERNAL_SERVER_ERROR" in text or LEAKS.search(text):
                    failures.append(f"{operation.label}: {status} {text[:300]} <- {case.body[:300]}")

            one()

        for operation in OPERATIONS:
            fuzz(operation)
        run(http.aclose())
        run(fuzzed.broker.close())
        run(fuzzed.engine.dispose())

    await in_own_loop(state, examples)
    assert not failures, "\n".join(failures[:10])
    assert min(counts.values()) >= min(CASES, 1) and len(counts) == len(OPERATIONS)
