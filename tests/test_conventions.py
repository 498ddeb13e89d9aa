"""API conventions: masked bugs with a request id, health checks, GET for queries only, the exported schema."""

from __future__ import annotations

import ast
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from services.org import stores as store_service

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
    from services.access import roles

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
    from services.platform.config import Settings

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
    from schema.core.trusted import documents

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


def _unwired_services_functions(root: Path) -> list[str]:
    """Public top-level functions in services/ that no app code (outside tests/, bench/, migrations/) refers to.

    Such a function runs in tests but never in the running app: a fold nobody triggers, a job nobody schedules.
    References are names and attributes in the syntax tree (calls, imports, handler tables), not text matches.
    """
    skip = {"tests", "bench", "migrations", ".venv", "node_modules"}
    used: dict[str, int] = {}
    defined: list[tuple[Path, ast.FunctionDef | ast.AsyncFunctionDef]] = []
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).parts
        if skip.intersection(parts):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        if parts[0] == "services":
            defined += [(path, n) for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
        for node in ast.walk(tree):
            name = (
                node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else None
            )  # fmt: skip
            names = [a.name.rsplit(".", 1)[-1] for a in node.names] if isinstance(node, ast.ImportFrom) else [name]
            for n in names:
                if n:
                    used[n] = used.get(n, 0) + 1
    return [
        f"{path.relative_to(root)}:{fn.lineno} {fn.name}"
        for path, fn in defined
        if not fn.name.startswith("_") and not used.get(fn.name)
    ]


def test_every_public_services_function_is_reached_by_the_app():
    assert _unwired_services_functions(ROOT) == []


def test_the_unwired_check_finds_a_function_only_tests_call(tmp_path):
    (tmp_path / "services").mkdir()
    (tmp_path / "tests").mkdir()
    (tmp_path / "services" / "facts.py").write_text("def fold():\n    pass\n\ndef used():\n    pass\n")
    (tmp_path / "app.py").write_text("from services.analytics.facts import used\nused()\n")
    (tmp_path / "tests" / "test_x.py").write_text("from services.analytics.facts import fold\nfold()\n")
    assert _unwired_services_functions(tmp_path) == ["services/facts.py:1 fold"]
