"""Production hardening: no demo accounts in production, staff passwords that resist guessing, and rate limits on
the staff calls that expose members' phones."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import func, select

from models import Staff
from resolvers.state import build_state
from services.seed import DemoRefused, seed_demo
from tests.conftest import gid

ROOT = Path(__file__).resolve().parents[2]


def test_seed_demo_refuses_in_production_and_writes_nothing(tmp_path):
    db = tmp_path / "prod.db"
    env = {
        **os.environ,
        "APP_ENV": "production",
        "DATABASE_URL": f"sqlite+aiosqlite:///{db}",
        "DATA_DIR": str(tmp_path),
        "SEED_DEMO": "1",
    }
    done = subprocess.run(
        [sys.executable, "-m", "services.cli", "seed-demo"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "APP_ENV=production" in done.stderr and "password" in done.stderr
    assert "demo-pass-2026" not in done.stdout + done.stderr
    assert not db.exists()


async def test_the_seed_function_itself_refuses_production_settings(settings):
    state = build_state(replace(settings, env="production"))
    try:
        async with state.sessionmaker() as session, session.begin():
            with pytest.raises(DemoRefused):
                await seed_demo(session, state.security)
    finally:
        await state.engine.dispose()


CREATE = """mutation($u: String!, $p: String!, $r: ID!) { createStaff(input: {username: $u, displayName: "Lily",
  password: $p, roleId: $r}) { errors { code field } staff { username } } }"""
WEAK = [
    "password",
    "12345678",
    "password1234",
    "1234567890",
    "qwertyuiop",
    "iloveyou12",
    "sh01.lily2026x",
    "LILY-sh01.lily",
]


@pytest.mark.parametrize("password", WEAK)
async def test_weak_staff_passwords_are_refused_and_nothing_is_created(api, state, chain, password):
    body = await api.gql(
        CREATE, {"u": "sh01.lily", "p": password, "r": gid("Role", chain.roles["CLERK"])}, as_="sh01.manager"
    )
    assert body["data"]["createStaff"] == {
        "errors": [{"code": "PASSWORD_TOO_WEAK", "field": "password"}],
        "staff": None,
    }
    async with state.sessionmaker() as session:
        assert await session.scalar(select(func.count()).where(Staff.username == "sh01.lily")) == 0


@pytest.mark.parametrize("password", ["a-long-password", "demo-pass-2026", "tea leaves at dawn"])
async def test_a_strong_password_is_accepted(api, chain, password):
    body = await api.gql(
        CREATE, {"u": "sh01.lily", "p": password, "r": gid("Role", chain.roles["CLERK"])}, as_="sh01.manager"
    )
    assert body["data"]["createStaff"] == {"errors": [], "staff": {"username": "sh01.lily"}}
    assert (await api.login("sh01.lily", password))["errors"] == []


@pytest.mark.postgres_too
async def test_reset_and_change_apply_the_same_rules_and_keep_the_old_password(api, chain):
    reset = await api.gql(
        'mutation($id: ID!) { resetStaffPassword(input: {id: $id, newPassword: "sh01.clerk-2026"}) { errors { code field } } }',
        {"id": gid("Staff", chain.staff["sh01.clerk"])},
        as_="sh01.manager",
    )
    assert reset["data"]["resetStaffPassword"]["errors"] == [{"code": "PASSWORD_TOO_WEAK", "field": "newPassword"}]
    change = await api.gql(
        'mutation { changeMyPassword(input: {currentPassword: "demo-pass-2026", newPassword: "password123"}) {'
        " errors { code field } } }",
        as_="sh01.manager",
    )
    assert change["data"]["changeMyPassword"]["errors"] == [{"code": "PASSWORD_TOO_WEAK", "field": "newPassword"}]
    for who in ("sh01.clerk", "sh01.manager"):
        assert (await api.login(who))["errors"] == []


SEARCH = "query($p: String) { members(filter: {phone: $p}) { edges { node { id } } } }"
REVEAL = "mutation($m: ID!) { revealMemberPhone(input: {memberId: $m}) { errors { code } phone } }"


def _refusal(body):
    return [(e["extensions"]["code"], e["extensions"].get("retryAfter", 0) > 0) for e in body.get("errors", [])]


async def test_phone_lookups_are_rate_limited_per_staff_member(api):
    for n in range(20):
        ok = await api.gql(SEARCH, {"p": f"1380013{n:04d}"}, as_="sh01.manager")
        assert "errors" not in ok, ok
    limited = await api.gql(SEARCH, {"p": "13800139999"}, as_="sh01.manager")
    assert _refusal(limited) == [("RATE_LIMITED", True)]
    # A search without a phone is not a phone lookup, and another staff member has a budget of their own.
    assert "errors" not in await api.gql(SEARCH, {"p": None}, as_="sh01.manager")
    assert "errors" not in await api.gql(SEARCH, {"p": "13800139999"}, as_="hq.admin")


async def test_phone_reveals_are_rate_limited_per_staff_member(api):
    registered = await api.gql(
        'mutation { registerMember(input: {phone: "13800138001", name: "王"}) { member { id } } }', as_="sh01.clerk"
    )
    member = registered["data"]["registerMember"]["member"]["id"]
    for _ in range(10):
        assert (await api.gql(REVEAL, {"m": member}, as_="sh01.manager"))["data"]["revealMemberPhone"]["phone"]
    limited = await api.gql(REVEAL, {"m": member}, as_="sh01.manager")
    assert _refusal(limited) == [("RATE_LIMITED", True)]
    assert limited["data"] is None
    assert (await api.gql(REVEAL, {"m": member}, as_="hq.admin"))["data"]["revealMemberPhone"]["phone"] == "13800138001"


def test_seed_demo_is_skipped_quietly_in_production_when_seed_demo_is_off(tmp_path):
    """`make run` in production with SEED_DEMO=0 goes on to serve; the refusal is for asking for the demo."""
    env = {
        **os.environ,
        "APP_ENV": "production",
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'p.db'}",
        "DATA_DIR": str(tmp_path),
        "SEED_DEMO": "0",
    }
    done = subprocess.run(
        [sys.executable, "-m", "services.cli", "seed-demo"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and "not loaded" in done.stdout
