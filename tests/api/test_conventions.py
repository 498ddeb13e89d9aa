"""API conventions: masked bugs with a request id, health checks, GET for queries only, the exported schema."""

from __future__ import annotations

import ast
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from services.org import stores as store_service

ROOT = Path(__file__).resolve().parents[2]


async def test_unexpected_errors_are_masked_with_the_request_id_and_logged_in_full(api, monkeypatch, caplog):
    async def broken(*args, **kwargs):
        raise RuntimeError("secret detail: SELECT * FROM staff")

    monkeypatch.setattr(store_service, "list_stores", broken)
    with caplog.at_level(logging.ERROR, logger="chain.graphql"):
        response = await api.http.post(
            "/graphql", json={"query": "{ stores { edges { cursor } } }"}, headers={"x-request-id": "req-12345678"}
        )
    error = response.json()["errors"][0]
    assert error["message"] == "Internal server error."
    assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR", "requestId": "req-12345678"}
    assert "SELECT" not in response.text and "secret" not in response.text
    assert any("req-12345678" in r.getMessage() and r.exc_info for r in caplog.records)


@pytest.mark.postgres_too
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


@pytest.mark.postgres_too
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
    result = subprocess.run(
        [sys.executable, "-m", "schema.export", "--check", "schema.graphql"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_trusted_documents_are_current_and_valid_against_the_schema():
    from graphql import parse, validate

    from schema import schema
    from schema.core.trusted import documents

    result = subprocess.run(
        [sys.executable, "-m", "schema.export", "--trusted", "--check", "trusted-documents.json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
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
    References are names and attributes in the syntax tree (calls, imports, handler tables), not text matches; a
    function registered with the job runner (`@jobs.job`, `@jobs.daily`, `@jobs.periodic`) is reached through it.
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
            name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else None
            names = [a.name.rsplit(".", 1)[-1] for a in node.names] if isinstance(node, ast.ImportFrom) else [name]
            for n in names:
                if n:
                    used[n] = used.get(n, 0) + 1
    return [
        f"{path.relative_to(root)}:{fn.lineno} {fn.name}"
        for path, fn in defined
        if not fn.name.startswith("_") and not used.get(fn.name) and not _registered_with_the_runner(fn)
    ]


def _registered_with_the_runner(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    calls = [d.func for d in fn.decorator_list if isinstance(d, ast.Call)]
    return any(isinstance(f, ast.Attribute) and f.attr in {"job", "daily", "periodic"} for f in calls)


def test_every_public_services_function_is_reached_by_the_app():
    assert _unwired_services_functions(ROOT) == []


def test_the_unwired_check_finds_a_function_only_tests_call(tmp_path):
    (tmp_path / "services").mkdir()
    (tmp_path / "tests").mkdir()
    (tmp_path / "services" / "facts.py").write_text("def fold():\n    pass\n\ndef used():\n    pass\n")
    (tmp_path / "app.py").write_text("from services.analytics.facts import used\nused()\n")
    (tmp_path / "tests" / "test_x.py").write_text("from services.analytics.facts import fold\nfold()\n")
    assert _unwired_services_functions(tmp_path) == ["services/facts.py:1 fold"]


def _code_files() -> list[Path]:
    return [p for d in ("schema", "resolvers", "services") for p in sorted((ROOT / d).rglob("*.py"))]


def test_permissions_are_named_through_the_perm_enum():
    """Every permission the code checks is a `Perm` member; its value is typed once, in the catalogue."""
    from services.access.permissions import PERMISSIONS, Perm

    assert set(PERMISSIONS) == set(Perm), "every permission is described"
    values = {p.value for p in Perm}
    typed = [
        f"{path.relative_to(ROOT)}:{node.lineno} {node.value!r}"
        for path in _code_files()
        if path != ROOT / "services" / "access" / "permissions.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Constant) and node.value in values
    ]
    assert typed == []


def test_every_node_type_is_fetched_through_its_scoped_load():
    """node(id:) reaches a type through strawberry's resolve_nodes, which goes through the type's own `load`."""
    from strawberry import relay

    import schema
    from schema.core.node import Loaded

    del schema
    pending, node_types = list(relay.Node.__subclasses__()), []
    while pending:
        cls = pending.pop()
        pending += cls.__subclasses__()
        node_types.append(cls)
    assert node_types
    assert [t.__name__ for t in node_types if not (issubclass(t, Loaded) and "load" in vars(t))] == []


def test_enums_are_registered_not_aliased():
    """A Python enum is registered with strawberry.enum(...) once and used as itself in annotations, so no alias
    needs a type: ignore."""
    aliases = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for path in _code_files()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Assign)
        and isinstance(node.value, ast.Call)
        and ast.unparse(node.value.func) == "strawberry.enum"
    ]
    assert aliases == []
