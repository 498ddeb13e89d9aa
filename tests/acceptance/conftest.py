"""The product as deployed: the server as a real process (as `make run` starts it), and clients the project did not
write (the graphql-ws reference client and graphql-http's audits under Node, `gql` in Python).

Nothing here imports the app: the server is `python -m services.cli migrate`, `python -m services.cli seed-demo`
and `python -m uvicorn app:app` on a free port, and the tests talk to it only over the socket. Servers are
package-scoped, so they start once and stop when the acceptance tests are done: one development server, one
production server, and for the business day a development server on PostgreSQL (when PG_TEST_URL's server is
reachable, or CI=true).

Node and npm: the pinned packages of tests/acceptance/node are installed with `npm ci` once per session when
node_modules is missing or was installed from another package-lock.json. Without Node 18+ the Node tests skip with
the reason; with CI=true they fail.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

ROOT = Path(__file__).resolve().parents[2]
NODE_DIR = Path(__file__).resolve().parent / "node"
IN_CI = os.environ.get("CI", "") == "true"
DEMO_PASSWORD = "demo-pass-2026"  # README: every demo account's password
MEMBER_CODE = "alice:13800138000"  # README: the local provider's `subject:phone` code (development only)
STARTUP_TIMEOUT_S = 60.0
PG_URL = os.environ.get("PG_TEST_URL", "postgresql://postgres@127.0.0.1:5432/test")
INSTALLED_MARKER = ".installed-from-lock"
WS_SESSION_CHECK_S = "5"  # README's default: how often a signed-in websocket's session is re-checked


@dataclass(frozen=True)
class Server:
    """A running server process: where it answers, and the environment it was started with."""

    url: str  # http://127.0.0.1:<port>
    env: dict[str, str]
    log: Path

    @property
    def graphql(self) -> str:
        return f"{self.url}/graphql"

    @property
    def ws(self) -> str:
        return "ws" + self.graphql.removeprefix("http")

    @property
    def pii_key(self) -> bytes:
        return base64.b64decode(self.env["PII_KEY"])

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:]) if self.log.exists() else ""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def new_keys() -> dict[str, str]:
    """JWT_PRIVATE_KEY and PII_KEY as production takes them (services/access/keys.py)."""
    pem = (
        Ed25519PrivateKey.generate()
        .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        .decode()
    )
    return {"JWT_PRIVATE_KEY": pem, "PII_KEY": base64.b64encode(secrets.token_bytes(32)).decode()}


# What the app reads from the environment (services/platform/config.py, README's table): never inherited from the caller's shell.
APP_SETTINGS = frozenset(
    {
        "APP_ENV",
        "DATABASE_URL",
        "REDIS_URL",
        "DATA_DIR",
        "JWT_PRIVATE_KEY",
        "PII_KEY",
        "ACCESS_TOKEN_TTL",
        "REFRESH_TOKEN_TTL",
        "SEED_DEMO",
        "LOG_JSON",
        "LOG_LEVEL",
        "CORS_ORIGINS",
        "WECHAT_APP_ID",
        "WECHAT_APP_SECRET",
        "RUN_JOBS",
        "METRICS_TOKEN",
        "DB_LOCK_TIMEOUT_MS",
        "DB_STATEMENT_TIMEOUT_MS",
        "WS_SESSION_CHECK_S",
        "FACTS_INTERVAL_S",
        "JOBS_INTERVAL_S",
        "MESSAGES_INTERVAL_S",
        "WECHAT_MESSAGE_TEMPLATES",
    }
)


def base_env(data_dir: Path, database_url: str) -> dict[str, str]:
    """The development environment `make run` gives the server, on a database of the test's own."""
    env = {k: v for k, v in os.environ.items() if k not in APP_SETTINGS}
    env.update(
        {
            "APP_ENV": "development",
            "DATABASE_URL": database_url,
            "DATA_DIR": str(data_dir),
            "RUN_JOBS": "1",
            "SEED_DEMO": "1",
            "LOG_JSON": "1",
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
            "WS_SESSION_CHECK_S": WS_SESSION_CHECK_S,
            # The running app's report fold (README: every 10 s), sooner so the business day's wait is short.
            "FACTS_INTERVAL_S": "2",
            # The job runner (README: every 30 s), sooner so a late payment's refund comes within the test's wait.
            "JOBS_INTERVAL_S": "1",
            # The message sending job (README: every 10 s), sooner so the day's promotion goes out within its wait.
            "MESSAGES_INTERVAL_S": "1",
            **new_keys(),
        }
    )
    return env


def cli(env: dict[str, str], *args: str) -> None:
    """`python -m services.cli ...` as `make run` calls it; a failure shows the command's output."""
    done = subprocess.run(
        [sys.executable, "-m", "services.cli", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    if done.returncode != 0:
        pytest.fail(f"services.cli {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")


def prepare_database(env: dict[str, str]) -> None:
    """Migrate and load the demo chain, always in development mode (seed-demo refuses in production)."""
    dev = {**env, "APP_ENV": "development"}
    cli(dev, "migrate")
    cli(dev, "seed-demo")


@contextmanager
def running(env: dict[str, str], log: Path) -> Iterator[Server]:
    """`uvicorn app:app` on a free port until /readyz answers; terminated (then killed) afterwards."""
    port = free_port()
    server = Server(url=f"http://127.0.0.1:{port}", env=env, log=log)
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "app:app", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_ready(server, process)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _wait_ready(server: Server, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the server exited with {process.returncode} before it was ready:\n{server.log_tail()}")
        try:
            if httpx.get(f"{server.url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail(f"the server was not ready within {STARTUP_TIMEOUT_S:.0f} s:\n{server.log_tail()}")


def post(
    server: Server, query: str, variables: dict[str, Any] | None = None, token: str | None = None, **extra: Any
) -> dict[str, Any]:
    """One GraphQL request over plain HTTP (for setup that is not itself under test)."""
    headers = {"authorization": f"Bearer {token}"} if token else {}
    body: dict[str, Any] = {"query": query, "variables": variables or {}, **extra}
    if not query:
        body.pop("query")
    response = httpx.post(server.graphql, json=body, headers=headers, timeout=30)
    result: dict[str, Any] = response.json()
    return result


def staff_login(server: Server, username: str) -> dict[str, str]:
    """Tokens of a demo account, by the README's login mutation (development: anonymous text is allowed)."""
    body = post(
        server,
        "mutation($u: String!, $p: String!) { login(input: {username: $u, password: $p}) "
        "{ errors { code message } tokens { accessToken refreshToken } } }",
        {"u": username, "p": DEMO_PASSWORD},
    )
    login = body["data"]["login"]
    assert login["errors"] == [], login
    tokens: dict[str, str] = login["tokens"]
    return tokens


def member_sign_in(server: Server, code: str = MEMBER_CODE, store_id: str | None = None) -> dict[str, str]:
    body = post(
        server,
        'mutation($c: String!, $s: ID) { memberSignIn(input: {provider: "local", code: $c, storeId: $s}) '
        "{ errors { code message } tokens { accessToken refreshToken } } }",
        {"c": code, "s": store_id},
    )
    signed = body["data"]["memberSignIn"]
    assert signed["errors"] == [], signed
    tokens: dict[str, str] = signed["tokens"]
    return tokens


@pytest.fixture(scope="package")
def dev_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The development server, as `make run` starts it, on a SQLite file of its own."""
    data = tmp_path_factory.mktemp("dev-server")
    env = base_env(data, f"sqlite+aiosqlite:///{data}/chain.db")
    prepare_database(env)
    with running(env, data / "server.log") as server:
        yield server


async def _pg(statement: str) -> None:
    conn = await asyncpg.connect(PG_URL, timeout=3)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture(scope="package")
def pg_dev_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The development server on a PostgreSQL database of its own (PG_TEST_URL's server; skipped when unreachable
    outside CI, a failure with CI=true)."""
    database = f"chain_accept_{os.getpid()}_{secrets.token_hex(4)}"
    try:
        asyncio.run(_pg(f'CREATE DATABASE "{database}"'))
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        problem = f"PostgreSQL not reachable at {PG_URL}: {exc}"
        if IN_CI:
            pytest.fail(f"CI=true but {problem}")
        pytest.skip(problem)
    data = tmp_path_factory.mktemp("pg-dev-server")
    env = base_env(data, f"{PG_URL.rpartition('/')[0]}/{database}")
    try:
        prepare_database(env)
        with running(env, data / "server.log") as server:
            yield server
    finally:
        asyncio.run(_pg(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))


@dataclass(frozen=True)
class Production:
    server: Server
    # A member's tokens, signed in before the production server started (production members sign in with WeChat,
    # which a test cannot reach; the session is the same kind either way).
    member: dict[str, str]


@pytest.fixture(scope="package")
def production(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Production]:
    """APP_ENV=production with what production needs set; the database seeded in development mode first."""
    data = tmp_path_factory.mktemp("prod-server")
    env = base_env(data, f"sqlite+aiosqlite:///{data}/chain.db")
    prepare_database(env)
    with running(env, data / "dev-stage.log") as dev_stage:
        member = member_sign_in(dev_stage, "prod-alice:13800138001")
    prod_env = {
        **env,
        "APP_ENV": "production",
        "SEED_DEMO": "0",
        "METRICS_TOKEN": secrets.token_urlsafe(24),
        "CORS_ORIGINS": "https://hq.example.com",
        "WECHAT_APP_ID": "wx-acceptance",
        "WECHAT_APP_SECRET": secrets.token_urlsafe(24),
    }
    with running(prod_env, data / "server.log") as server:
        yield Production(server=server, member=member)


# --- Node ------------------------------------------------------------------------------------------------------


def _node_problem() -> str | None:
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            return f"{tool} is not on PATH (the graphql-ws and graphql-http checks need Node.js 18+)"
    version = subprocess.run([shutil.which("node") or "node", "--version"], capture_output=True, text=True, timeout=30)
    major = version.stdout.strip().lstrip("v").split(".")[0]
    if not major.isdigit() or int(major) < 18:
        return f"Node.js 18+ is needed (global fetch), found {version.stdout.strip() or version.stderr.strip()}"
    return None


def _lock_digest() -> str:
    return hashlib.sha256((NODE_DIR / "package-lock.json").read_bytes()).hexdigest()


def _installed_is_current() -> bool:
    """node_modules was installed by `npm ci` from this very package-lock.json (a digest left beside it)."""
    marker = NODE_DIR / "node_modules" / INSTALLED_MARKER
    return marker.exists() and marker.read_text().strip() == _lock_digest()


@pytest.fixture(scope="session")
def node() -> Path:
    """The node binary, with tests/acceptance/node's pinned packages installed (npm ci when missing or stale)."""
    problem = _node_problem()
    if problem:
        if IN_CI:
            pytest.fail(f"CI=true but {problem}")
        pytest.skip(problem)
    if not _installed_is_current():
        done = subprocess.run(
            [shutil.which("npm") or "npm", "ci", "--no-audit", "--no-fund"],
            cwd=NODE_DIR,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode != 0:
            message = f"npm ci failed in {NODE_DIR}:\n{done.stdout}\n{done.stderr}"
            if IN_CI:
                pytest.fail(message)
            pytest.skip(message)
        (NODE_DIR / "node_modules" / INSTALLED_MARKER).write_text(_lock_digest())
    return Path(shutil.which("node") or "node")


def run_node(node: Path, script: str, args: dict[str, Any], timeout: float = 60) -> Any:
    """Run tests/acceptance/node/<script> with `args` as JSON in argv; it prints one JSON document."""
    done = subprocess.run(
        [str(node), script, json.dumps(args)], cwd=NODE_DIR, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, f"{script} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return json.loads(done.stdout)


# --- The trusted-document manifest the front ends are built against -------------------------------------------


def manifest() -> list[dict[str, Any]]:
    """trusted-documents.json's operations: {id, name, type, frontEnd, body}."""
    operations: list[dict[str, Any]] = json.loads((ROOT / "trusted-documents.json").read_text())["operations"]
    return operations


def manifest_document(front_end: str, kind: str, field: str) -> dict[str, Any] | None:
    """The front end's first `kind` (query / mutation / subscription) document whose root field is `field`."""
    root = re.compile(rf"\s*{re.escape(field)}\s*[({{]")
    for op in manifest():
        if op["frontEnd"] == front_end and op["type"] == kind and root.match(op["body"].split("{", 1)[1]):
            return op
    return None
