"""Test harness: a fresh database per test, on SQLite by default, on PostgreSQL for the tests that opt in.

Which database a test runs on:
- A test that uses `database_url` (directly, or through `settings`, `state`, `api`, `chain`) runs on SQLite only.
- `@pytest.mark.postgres_too` (on a test, a class, or a module's `pytestmark`) runs it on SQLite and on PostgreSQL:
  ids end in `[sqlite]` / `[postgres]`. Opt in what depends on PostgreSQL's behaviour (concurrency, row locks,
  SKIP LOCKED, lengths and ranges it enforces, driver errors) and one smoke test per area file.
- `@pytest.mark.postgres_only` runs it on PostgreSQL only: what SQLite cannot do at all (several instances on one
  database, killed connections, lock timeouts).
- `@pytest.mark.postgres_preferred` runs it once: on PostgreSQL when it is reachable (always in CI), else on
  SQLite. For long explorations (the schema fuzz, the money machine) that are worth one database's time per run.
The PostgreSQL runs carry the `postgres` marker, so `-m "not postgres"` leaves them out (and with them the
postgres_preferred tests, when PostgreSQL is reachable).

SQLite copies a migrated template file per test; `state` copies a second template that already holds the demo
chain (seeded once per run, with every store open all day). PostgreSQL runs in a database of its own per run
(PG_TEST_URL names the server); it is migrated once, and truncated and seeded per test. Outside CI an unreachable
PostgreSQL or Redis skips those tests with the reason; with CI=true it fails the run.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import functools
import os
import secrets
import shutil
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import event, make_url, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

import models
import web.views as views_module  # where the app builds its schema
from app import create_app
from resolvers.state import AppState, build_state
from schema import build_schema
from services.access.auth import start_session
from services.members.accounts import member_for_identity
from services.platform.config import CHAIN_TZ, Settings
from services.platform.db import create_engine, create_sessionmaker, write_transaction
from services.platform.migrate import upgrade
from services.seed import DEMO_PASSWORD, seed_demo

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
PG_URL = os.environ.get("PG_TEST_URL", "postgresql://postgres@127.0.0.1:5432/test")
ALL_DAY = [{"weekday": d, "opens": "00:00", "closes": "00:00"} for d in range(7)]
RUN_ID = f"chain_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"


def _pg_dsn(database: str | None = None) -> str:
    base, _, current = PG_URL.rpartition("/")
    return f"{base}/{database or current}"


async def _pg_reachable() -> str | None:
    try:
        conn = await asyncpg.connect(_pg_dsn(), timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        return f"PostgreSQL not reachable at {PG_URL}: {exc}"
    await conn.close()
    return None


@pytest.fixture(scope="session", autouse=True)
def one_schema_per_mode() -> Iterator[None]:
    """Every app a test makes shares one built schema per mode, as a server process has one: building it takes
    a fifth of a second, and graphql-core's validation cache is keyed by the schema it validated against."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(views_module, "build_schema", functools.cache(build_schema))
        yield


@pytest.fixture(scope="session")
def pg_problem() -> str | None:
    return asyncio.run(_pg_reachable())


@pytest.fixture(scope="session")
def test_keys() -> tuple[str, str]:
    pem = (
        Ed25519PrivateKey.generate()
        .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        .decode()
    )
    return pem, base64.b64encode(secrets.token_bytes(32)).decode()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"

    async def make() -> None:
        engine = create_engine(f"sqlite+aiosqlite:///{path}")
        await upgrade(engine)
        await engine.dispose()

    asyncio.run(make())
    return path


@pytest.fixture(scope="session")
def pg_database(pg_problem: str | None) -> Iterator[str]:
    if pg_problem:
        if IN_CI:
            pytest.fail(f"CI=true but {pg_problem}")
        pytest.skip(pg_problem)

    async def create() -> None:
        conn = await asyncpg.connect(_pg_dsn())
        await conn.execute(f'CREATE DATABASE "{RUN_ID}"')
        await conn.close()
        engine = create_engine(_pg_dsn(RUN_ID))
        await upgrade(engine)
        await engine.dispose()

    async def drop() -> None:
        conn = await asyncpg.connect(_pg_dsn())
        await conn.execute(f'DROP DATABASE IF EXISTS "{RUN_ID}" WITH (FORCE)')
        await conn.close()

    asyncio.run(create())
    yield _pg_dsn(RUN_ID)
    asyncio.run(drop())


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """SQLite unless the test opts in to PostgreSQL (see the module docstring)."""
    if "database_url" not in metafunc.fixturenames:
        return
    postgres = pytest.param("postgres", marks=pytest.mark.postgres)
    marked = {m.name for m in metafunc.definition.iter_markers()}
    if "postgres_only" in marked:
        metafunc.parametrize("database_url", [postgres], indirect=True)
    elif marked & {"postgres_too", "postgres_preferred"}:
        metafunc.parametrize("database_url", ["sqlite", postgres], indirect=True)


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty migrated database: SQLite, or PostgreSQL for the tests marked to run there."""
    if getattr(request, "param", "sqlite") == "sqlite":
        preferred = request.node.get_closest_marker("postgres_preferred")
        if preferred and (IN_CI or not request.getfixturevalue("pg_problem")):
            pytest.skip("runs once, on PostgreSQL, in this run")
        path = tmp_path / "test.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite+aiosqlite:///{path}"
    url: str = request.getfixturevalue("pg_database")
    return url


# The sequences of the tables' ids (owned by their columns), by their quoted names.
_OWNED_SEQUENCES = """SELECT s.oid::regclass::text FROM pg_class s
  JOIN pg_depend d ON d.objid = s.oid AND d.classid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
  JOIN pg_namespace n ON n.oid = s.relnamespace WHERE s.relkind = 'S' AND n.nspname = current_schema()"""
_EMPTYING: dict[str, str] = {}  # database URL -> the script that empties it


async def _truncate(engine: AsyncEngine) -> None:
    """Empty every table and restart its ids, as TRUNCATE ... RESTART IDENTITY would: a DELETE per table (children
    first) and a setval per id sequence, sent as one script. A TRUNCATE of the 75 tables took half a second per test
    on PostgreSQL (a new file for each table); deleting the rows a test left takes a few milliseconds."""
    async with engine.begin() as conn:
        key = engine.url.render_as_string()
        if key not in _EMPTYING:
            sequences = (await conn.execute(text(_OWNED_SEQUENCES))).scalars().all()
            deletes = [f'DELETE FROM "{t.name}";' for t in reversed(models.Base.metadata.sorted_tables)]
            restarts = ["SELECT setval('{}', 1, false);".format(name.replace("'", "''")) for name in sequences]
            _EMPTYING[key] = "".join(deletes + restarts)
        raw = await conn.get_raw_connection()
        await raw.driver_connection.execute(_EMPTYING[key])  # type: ignore[union-attr]


def make_settings(database_url: str, data_dir: Path, test_keys: tuple[str, str]) -> Settings:
    """The settings every test app runs with, over `database_url`."""
    pem, pii = test_keys
    return Settings(
        env="test",
        database_url=database_url,
        data_dir=data_dir,
        jwt_private_key=pem,
        pii_key=pii,
        # Real argon2id, cheaper parameters: dozens of hashes per test.
        argon2_time_cost=1,
        argon2_memory_kib=1024,
        log_json=False,
        # Statement counts and revocation tests expect every request to read its session; the caches have their own tests
        # (tests/access/test_viewer_cache.py), and the acceptance servers run with the default.
        session_cache_s=0.0,
        settings_cache_s=0.0,
        # Fixtures write through their own sessions, which announce nothing; tests/api/test_public_cache.py turns
        # it on.
        public_cache_s=0.0,
        report_cache_s=0.0,  # reports computed per request; tests/analytics/test_report_cache.py turns it on
    )


# The caches make_settings turns off, as deployed: what a suite that must hold "with caching on" runs with.
CACHES = ("session_cache_s", "settings_cache_s", "public_cache_s", "report_cache_s")


def with_caches(settings: Settings) -> Settings:
    """`settings` with every per-instance cache at its deployed default."""
    defaults: dict[str, float] = {f.name: f.default for f in dataclasses.fields(Settings) if f.name in CACHES}  # type: ignore[misc]
    return dataclasses.replace(settings, **defaults)  # type: ignore[arg-type]


@pytest.fixture
def settings(database_url: str, tmp_path: Path, test_keys: tuple[str, str]) -> Settings:
    return make_settings(database_url, tmp_path / "data", test_keys)


async def _seed(st: AppState) -> None:
    async with st.sessionmaker() as session, session.begin():
        await seed_demo(session, st.security)
        # A closed store takes no order for now; tests run at any hour, so here the demo stores never close.
        await session.execute(update(models.Store).values(hours=ALL_DAY))


class DemoTemplate:
    """The migrated SQLite template with the demo chain seeded into it, made once per run. The demo schedules
    today's recurring jobs, so it is made again if the chain's day turns while the run goes on."""

    def __init__(self, empty: Path, directory: Path) -> None:
        self.empty, self.directory = empty, directory
        self.made: dict[str, Path] = {}

    async def path(self, settings: Settings) -> Path:
        day = datetime.now(CHAIN_TZ).date().isoformat()
        if day not in self.made:
            path = self.directory / f"demo-{day}.db"
            shutil.copy(self.empty, path)
            st = build_state(replace(settings, database_url=f"sqlite+aiosqlite:///{path}"))
            try:
                await _seed(st)
            finally:
                await st.engine.dispose()
            self.made[day] = path
        return self.made[day]


@pytest.fixture(scope="session")
def sqlite_demo_template(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> DemoTemplate:
    return DemoTemplate(sqlite_template, tmp_path_factory.mktemp("demo"))


@pytest.fixture
async def state(settings: Settings, request: pytest.FixtureRequest) -> AsyncIterator[AppState]:
    """The app's state over the test's database, which holds the demo chain."""
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite":
        template: DemoTemplate = request.getfixturevalue("sqlite_demo_template")
        assert url.database
        shutil.copy(await template.path(settings), url.database)
        st = build_state(settings)
    else:
        st = build_state(settings)
        await _truncate(st.engine)
        await _seed(st)
    yield st
    await st.engine.dispose()


@dataclass
class Chain:
    """The seeded demo chain: store and staff ids by code and username."""

    stores: dict[str, int]
    staff: dict[str, int]
    roles: dict[str, int]


async def chain_of(state: AppState) -> Chain:
    async with state.sessionmaker() as session:
        stores = {s.code: s.id for s in (await session.scalars(select(models.Store))).all()}
        staff = {s.username: s.id for s in (await session.scalars(select(models.Staff))).all()}
        roles = {r.code: r.id for r in (await session.scalars(select(models.Role))).all()}
    return Chain(stores, staff, roles)


@pytest.fixture
async def chain(state: AppState) -> Chain:
    return await chain_of(state)


async def mint_token(state: AppState, who: str) -> str:
    """An access token for a staff username, or for a member when `who` is `member:<code>`, made as sign-in makes
    it (a sessions row and its token family) but without the request: for tests whose subject is not sign-in."""
    async with write_transaction(state.sessionmaker) as session:
        if who.startswith("member:"):
            identity = await state.identity_providers["local"].exchange(who.removeprefix("member:"))
            member, _ = await member_for_identity(session, state.cipher, identity, store_id=None)
            tokens = await start_session(session, state.security, member_id=member.id)
        else:
            staff_id = await session.scalar(select(models.Staff.id).where(models.Staff.username == who))
            assert staff_id is not None, who
            tokens = await start_session(session, state.security, staff_id=staff_id)
    return tokens.access_token


async def fresh_engine(database_url: str, sqlite_template: Path, tmp_path: Path) -> AsyncEngine:
    """An engine on an empty migrated database (for tests that run their own event loop, like state machines)."""
    if database_url.startswith("postgresql"):
        engine = create_engine(database_url)
        await _truncate(engine)
        return engine
    path = tmp_path / f"{uuid.uuid4().hex}.db"
    shutil.copy(sqlite_template, path)
    return create_engine(f"sqlite+aiosqlite:///{path}")


async def in_own_loop(state: AppState, work: Callable[[Callable[[Any], Any], Any], None]) -> None:
    """Run `work(run, sessionmaker)` in a thread with an event loop and an engine of its own over the test's database:
    Hypothesis drives examples synchronously, so inside an async test each example's coroutine goes through `run`."""
    url = state.engine.url.render_as_string(hide_password=False)

    def thread() -> None:
        loop = asyncio.new_event_loop()
        engine = create_engine(url)
        try:
            work(loop.run_until_complete, create_sessionmaker(engine))
        finally:
            loop.run_until_complete(engine.dispose())
            loop.close()

    await asyncio.to_thread(thread)


def gid(type_name: str, pk: int) -> str:
    return base64.b64encode(f"{type_name}:{pk}".encode()).decode()


def pk(global_id: str) -> int:
    """The primary key inside a global id."""
    return int(base64.b64decode(global_id).decode().split(":", 1)[1])


@dataclass
class Api:
    """Sends GraphQL as a front end does: POST /graphql with JSON, a bearer token when signed in."""

    http: httpx.AsyncClient
    tokens: dict[str, str] = field(default_factory=dict)

    async def post(
        self, query: str, variables: dict[str, Any] | None = None, token: str | None = None
    ) -> httpx.Response:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        return await self.http.post("/graphql", json={"query": query, "variables": variables or {}}, headers=headers)

    async def gql(
        self, query: str, variables: dict[str, Any] | None = None, *, as_: str | None = None
    ) -> dict[str, Any]:
        token = await self.token(as_) if as_ else None
        if "$idempotencyKey" in query and "idempotencyKey" not in (variables or {}):
            # A fresh key per call, as a front end makes one per intent; replay tests pass their own.
            variables = {**(variables or {}), "idempotencyKey": uuid.uuid4().hex}
        response = await self.post(query, variables, token)
        body: dict[str, Any] = response.json()
        return body

    async def login(self, username: str, password: str = DEMO_PASSWORD) -> dict[str, Any]:
        body = await self.gql(
            "mutation($u: String!, $p: String!) { login(input: {username: $u, password: $p}) {"
            " errors { code message field } tokens { accessToken refreshToken } staff { id username } } }",
            {"u": username, "p": password},
        )
        result: dict[str, Any] = body["data"]["login"]
        return result

    async def member_sign_in(self, code: str, store_id: str | None = None) -> dict[str, Any]:
        body = await self.gql(
            'mutation($c: String!, $s: ID) { memberSignIn(input: {provider: "local", code: $c, storeId: $s}) {'
            " errors { code message field } created tokens { accessToken refreshToken } member { id phone } } }",
            {"c": code, "s": store_id},
        )
        result: dict[str, Any] = body["data"]["memberSignIn"]
        return result

    async def token(self, who: str) -> str:
        """A token for a staff username, or for a member when `who` is `member:<code>`."""
        if who not in self.tokens:
            if who.startswith("member:"):
                self.tokens[who] = (await self.member_sign_in(who.removeprefix("member:")))["tokens"]["accessToken"]
            else:
                self.tokens[who] = (await self.login(who))["tokens"]["accessToken"]
        return self.tokens[who]


@pytest.fixture
async def api(state: AppState) -> AsyncIterator[Api]:
    app = create_app(state=state)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http:
        yield Api(http)


@dataclass
class StatementCounter:
    statements: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.statements)


@contextmanager
def count_statements(engine: AsyncEngine) -> Iterator[StatementCounter]:
    """Count the SQL statements the engine sends while the block runs."""
    counter = StatementCounter()

    def on_execute(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        # Transaction control (SQLite's explicit BEGIN) is not a query.
        if not statement.lstrip().upper().startswith("BEGIN"):
            counter.statements.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", on_execute)
    try:
        yield counter
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", on_execute)


async def table_counts(state: AppState) -> dict[str, int]:
    """Row counts of every table except the audit log: a refused mutation must leave them all as they were."""
    counts = {}
    async with state.sessionmaker() as session:
        for table in models.Base.metadata.sorted_tables:
            if table.name != "audit_logs":
                counts[table.name] = int(await session.scalar(select(text("count(*)")).select_from(table)) or 0)
    return counts


__all__ = ["Api", "Chain", "chain_of", "count_statements", "gid", "mint_token", "pk", "replace", "table_counts"]


REDIS_URL = os.environ.get("REDIS_TEST_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
async def redis_url():
    client = aioredis.from_url(REDIS_URL)
    try:
        await client.ping()
    except (OSError, aioredis.ConnectionError) as exc:
        if IN_CI:
            pytest.fail(f"CI=true but Redis is not reachable at {REDIS_URL}: {exc}")
        pytest.skip(f"Redis not reachable at {REDIS_URL}")
    finally:
        await client.aclose()
    return REDIS_URL
