"""API conventions: masked bugs with a request id, health checks, GET for queries only, the exported schema."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from services import stores as store_service

ROOT = Path(__file__).resolve().parent.parent


async def test_unexpected_errors_are_masked_with_the_request_id_and_logged_in_full(api, monkeypatch, caplog):
    async def broken(*args, **kwargs):
        raise RuntimeError("secret detail: SELECT * FROM staff")

    monkeypatch.setattr(store_service, "list_stores", broken)
    with caplog.at_level(logging.ERROR, logger="chain.graphql"):
        response = await api.http.post("/graphql", json={"query": "{ stores { edges { cursor } } }"},
                                        headers={"x-request-id": "req-12345678"})  # fmt: skip
    error = response.json()["errors"][0]
    assert error["message"] == "Internal server error."
    assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR", "requestId": "req-12345678"}
    assert "SELECT" not in response.text and "secret" not in response.text
    assert any("req-12345678" in r.getMessage() and r.exc_info for r in caplog.records)


async def test_failed_mutation_is_rolled_back_masked_and_audited(api, state, monkeypatch, chain):
    from sqlalchemy import select

    from models import AuditLog, Store
    from services import roles

    real = store_service.create_store

    async def create_then_crash(session, *, fields):
        await real(session, fields=fields)
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(store_service, "create_store", create_then_crash)
    body = await api.gql(
        'mutation { createStore(input: {code: "BOOM", name: "x", city: "x", address: "x", lat: 1, lng: 1}) { errors { code } } }',
        as_="hq.admin",
    )
    assert body["errors"][0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    async with state.sessionmaker() as session:
        assert await session.scalar(select(Store).where(Store.code == "BOOM")) is None
        entry = await session.scalar(select(AuditLog).where(AuditLog.operation == "createStore"))
    assert entry.outcome.value == "FAILED"
    del roles


async def test_health_and_readiness(api):
    assert (await api.http.get("/healthz")).json() == {"status": "ok"}
    ready = await api.http.get("/readyz")
    assert ready.status_code == 200 and ready.json()["database"] == "ok"


async def test_readiness_fails_when_the_database_is_gone(tmp_path, settings):
    import httpx

    from app import create_app
    from services.config import Settings

    broken = Settings(**{**settings.__dict__, "database_url": "postgresql+asyncpg://nobody@127.0.0.1:1/none"})
    app = create_app(broken)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        response = await http.get("/readyz")
    assert response.status_code == 503


async def test_mutations_over_get_are_refused_and_queries_allowed(api):
    query = await api.http.get("/graphql", params={"query": "{ stores(first: 1) { edges { cursor } } }"})
    assert query.status_code == 200 and "errors" not in query.json()
    mutation = await api.http.get("/graphql", params={"query": "mutation { logout { errors { code } } }"})
    assert mutation.status_code in {400, 405}


async def test_request_id_is_echoed_or_made(api):
    given = await api.http.get("/healthz", headers={"x-request-id": "abcdef123456"})
    assert given.headers["x-request-id"] == "abcdef123456"
    made = await api.http.get("/healthz", headers={"x-request-id": "bad id with spaces"})
    assert len(made.headers["x-request-id"]) == 32


def test_schema_graphql_is_current():
    result = subprocess.run([sys.executable, "-m", "schema.export", "--check", "schema.graphql"], cwd=ROOT,
                            capture_output=True, text=True, check=False)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_trusted_documents_are_current_and_valid_against_the_schema():
    from graphql import parse, validate

    from schema import schema
    from schema.trusted import documents

    result = subprocess.run([sys.executable, "-m", "schema.export", "--trusted", "--check", "trusted-documents.json"],
                            cwd=ROOT, capture_output=True, text=True, check=False)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(documents()) >= 25
    for document in documents().values():
        assert validate(schema._schema, parse(document.body)) == [], document.name


@pytest.mark.parametrize("first", [0, 1, 100])
async def test_connections_accept_up_to_100(api, first):
    body = await api.gql("query($n: Int) { stores(first: $n) { edges { cursor } } }", {"n": first})
    assert "errors" not in body
