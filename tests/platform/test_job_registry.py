"""Jobs register themselves from their own domain: the queue and runner (services/platform/jobs.py) import no domain, every
kind the code enqueues has a handler once the app or the operator commands start, and services import no cycle."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# What the runner may build on: the platform (infrastructure), never a domain nor access. Payment providers are
# gateway adapters in the platform (JobEnv hands them to the handlers that refund). import-linter's contract
# "services/platform imports no domain" (pyproject.toml) says the same for the whole platform package.


def _modules(*tops: str) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for top in tops:
        path = ROOT / top
        for p in [path] if path.suffix == ".py" else sorted(path.rglob("*.py")):
            found[".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")] = p
    return found


def _imports(tree: ast.AST) -> list[tuple[str, ast.stmt]]:
    """Every module an import names (`from a import b` names a and a.b, as b may be a module), anywhere in the file."""
    out: list[tuple[str, ast.stmt]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, node) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out += [(node.module, node)] + [(f"{node.module}.{a.name}", node) for a in node.names]
    return out


def test_the_runner_imports_no_domain():
    tree = ast.parse((ROOT / "services" / "platform" / "jobs.py").read_text())
    services = {name for name, _ in _imports(tree) if name.startswith("services.")}
    beyond = sorted(s for s in services if not s.startswith("services.platform"))
    assert beyond == [], f"services/platform/jobs.py imports beyond the platform: {beyond}"


def _str_constants(tree: ast.Module) -> dict[str, str]:
    names: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            names.update({t.id: node.value.value for t in node.targets if isinstance(t, ast.Name)})
    return names


def _enqueued_kinds() -> set[str]:
    """Every kind passed to `enqueue(kind=...)` in the code, as a literal or a module constant."""
    kinds: set[str] = set()
    for name, path in _modules("app.py", "services", "resolvers", "schema").items():
        tree = ast.parse(path.read_text())
        constants = _str_constants(tree)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            called = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
            if called != "enqueue":
                continue
            kind = next(k.value for k in node.keywords if k.arg == "kind")
            if isinstance(kind, ast.Constant) and isinstance(kind.value, str):
                kinds.add(kind.value)
            elif isinstance(kind, ast.Name) and kind.id in constants:
                kinds.add(constants[kind.id])
            elif name != "services.platform.jobs":  # the queue's own helpers pass on a kind they were given
                pytest.fail(f"{path.relative_to(ROOT)}:{node.lineno}: enqueue with a kind this test cannot read")
    return kinds


ENQUEUED = _enqueued_kinds()

REGISTERED = """
import json, sys
{setup}
from services.platform import jobs
print(json.dumps({{"handlers": sorted(jobs.HANDLERS), "seeders": sorted(jobs.SEEDERS),
                  "periodic": sorted(jobs.PERIODIC), "modules": sorted(m for m in sys.modules if m.startswith("services"))}}))
"""


def _registered(setup: str, tmp_path: Path) -> dict[str, list[str]]:
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/registry.db",
        "DATA_DIR": str(tmp_path),
        "APP_ENV": "development",
        "LOG_JSON": "0",
        "REDIS_URL": "",
    }
    done = subprocess.run(
        [sys.executable, "-c", REGISTERED.format(setup=setup)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    registered: dict[str, list[str]] = json.loads(done.stdout.strip().splitlines()[-1])
    return registered


def test_the_code_enqueues_the_kinds_this_test_reads():
    assert {"orders.expire", "groups.expire", "orders.refund", "payments.refund_late", "points.expire"} <= ENQUEUED


@pytest.mark.parametrize(
    "setup",
    [
        "import app\napp.create_app()",  # what `uvicorn app:app` builds
        "import services.cli",  # `python -m services.cli run-jobs` and `seed-demo`
        "import services.registry",  # the composition point alone
    ],
)
def test_every_enqueued_kind_has_a_handler_once_the_entry_point_is_loaded(setup, tmp_path):
    registered = _registered(setup, tmp_path)
    handlers = set(registered["handlers"])
    assert not ENQUEUED - handlers, f"no handler for {sorted(ENQUEUED - handlers)}"
    assert set(registered["seeders"]) <= handlers
    # Daily work schedules itself; the points expiry seeds two years; the runner folds reports and sends messages
    # on an interval.
    daily = {"members.rfm", "coupons.birthday", "recs.copurchase", "points.expire"}
    assert daily | {"messages.points_expiring", "messages.birthday_coupon", "messages.cards_expiring"} <= set(
        registered["seeders"]
    )
    assert registered["periodic"] == ["facts.fold", "messages.send"]


def test_the_runner_alone_registers_nothing(tmp_path):
    """Importing the queue loads no domain: what runs comes from the modules the entry point imported."""
    registered = _registered("", tmp_path)
    assert registered["handlers"] == [] and registered["seeders"] == [] and registered["periodic"] == []
    loaded = {".".join(m.split(".")[:2]) for m in registered["modules"] if m.count(".") >= 1}
    assert loaded == {"services.platform"}, loaded


def test_services_import_no_cycle():
    """Between service modules, counting imports inside functions too: a cycle means a rule is in the wrong place."""
    modules = _modules("services")
    edges = {
        name: {target for target, _ in _imports(ast.parse(path.read_text())) if target in modules and target != name}
        for name, path in modules.items()
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = stack[stack.index(v) :]
            del stack[stack.index(v) :]
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in modules:
        if v not in index:
            visit(v)
    assert cycles == []


def test_imports_inside_functions_in_services_say_why():
    unexplained = []
    for path in _modules("services").values():
        lines = path.read_text().splitlines()
        tree = ast.parse("\n".join(lines))
        top = {id(node) for node in tree.body}
        for name, node in _imports(tree):
            if id(node) not in top and not _guarded(tree, node) and "#" not in lines[node.lineno - 1]:
                unexplained.append(f"{path.relative_to(ROOT)}:{node.lineno}: {name}")
    assert unexplained == []


def _guarded(tree: ast.Module, node: ast.stmt) -> bool:
    """An import under a top-level `if TYPE_CHECKING:` (or try/except) is still a module-level import."""
    return any(isinstance(top, ast.If | ast.Try) and node in ast.walk(top) for top in tree.body)
