"""Sign-in: staff login, tokens that expire or are forged, refresh rotation, reuse, logout, lock-out."""

import time
from datetime import timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select

from models import AuthSession, Member, MemberIdentity, utcnow
from services.access.security import AccessClaims, Security
from services.platform.errors import Unauthenticated

ME = "{ me { __typename ... on StaffViewer { staff { username } permissions scope store { code } role { code } }"
ME += " ... on MemberViewer { member { id phone } } } }"
REFRESH = (
    "mutation($t: String!) { refreshToken(input: {refreshToken: $t}) {"
    " errors { code field } tokens { accessToken refreshToken } } }"
)


@pytest.mark.postgres_too
async def test_staff_login_returns_tokens_and_me_shows_role_permissions_and_store(api):
    result = await api.login("sh01.clerk")
    assert result["errors"] == []
    token = result["tokens"]["accessToken"]
    me = (await api.post(ME, token=token)).json()["data"]["me"]
    assert me["__typename"] == "StaffViewer"
    assert me["staff"]["username"] == "sh01.clerk"
    assert me["scope"] == "STORE" and me["store"]["code"] == "SH01" and me["role"]["code"] == "CLERK"
    assert "order.checkout" in me["permissions"] and "staff.manage" not in me["permissions"]


async def test_anonymous_me_is_null(api):
    assert (await api.gql(ME))["data"]["me"] is None


async def test_wrong_password_and_unknown_user_get_the_same_coded_error(api):
    wrong = await api.login("sh01.clerk", "not-the-password")
    unknown = await api.login("nobody.here", "whatever-password")
    assert wrong["tokens"] is None and unknown["tokens"] is None
    assert wrong["errors"][0]["code"] == unknown["errors"][0]["code"] == "INVALID_CREDENTIALS"
    assert wrong["errors"][0]["message"] == unknown["errors"][0]["message"]


async def test_expired_forged_and_malformed_tokens_are_refused_with_reasons(api, state, chain):
    login = await api.login("hq.admin")
    sid = (await api.post(ME, token=login["tokens"]["accessToken"])).status_code
    assert sid == 200
    async with state.sessionmaker() as session:
        session_id = await session.scalar(select(func.max(AuthSession.id)))
    claims = AccessClaims("staff", chain.staff["hq.admin"], session_id)
    expired, _ = state.security.issue_access_token(claims, now=utcnow() - timedelta(hours=2))
    other_keys = type(state.security.keys)(
        Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate().public_key(), b"k" * 32
    )
    forged, _ = Security(state.settings, other_keys).issue_access_token(claims)
    hs256 = jwt.encode({"sub": "staff:1", "sid": session_id, "exp": 9999999999, "iat": 1}, "s" * 32, algorithm="HS256")
    cases = {
        expired: "TOKEN_EXPIRED",
        forged: "TOKEN_INVALID",
        hs256: "TOKEN_INVALID",
        "not.a.jwt": "TOKEN_INVALID",
        "": "TOKEN_INVALID",
    }
    for token, reason in cases.items():
        response = await api.http.post("/graphql", json={"query": ME}, headers={"authorization": f"Bearer {token}"})
        assert response.status_code == 401, token
        error = response.json()["errors"][0]
        assert error["extensions"] == {"code": "UNAUTHENTICATED", "reason": reason}, token
    response = await api.http.post("/graphql", json={"query": ME}, headers={"authorization": "Basic abc"})
    assert response.status_code == 401


async def test_refresh_rotates_and_reusing_a_spent_token_revokes_the_family(api):
    first = (await api.login("sh02.manager"))["tokens"]
    rotated = (await api.gql(REFRESH, {"t": first["refreshToken"]}))["data"]["refreshToken"]
    assert rotated["errors"] == []
    assert rotated["tokens"]["refreshToken"] != first["refreshToken"]
    assert (await api.post(ME, token=rotated["tokens"]["accessToken"])).status_code == 200

    reused = (await api.gql(REFRESH, {"t": first["refreshToken"]}))["data"]["refreshToken"]
    assert reused["tokens"] is None and reused["errors"][0]["code"] == "TOKEN_REUSED"
    # The whole family is gone: the newest refresh token and the access token both stop working.
    after = (await api.gql(REFRESH, {"t": rotated["tokens"]["refreshToken"]}))["data"]["refreshToken"]
    assert after["errors"][0]["code"] == "TOKEN_INVALID"
    response = await api.post(ME, token=rotated["tokens"]["accessToken"])
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["reason"] == "SESSION_REVOKED"


async def test_unknown_refresh_token_is_refused(api):
    result = (await api.gql(REFRESH, {"t": "made-up"}))["data"]["refreshToken"]
    assert result["errors"] == [{"code": "TOKEN_INVALID", "field": "refreshToken"}]


async def test_logout_ends_the_session(api):
    tokens = (await api.login("sz01.clerk"))["tokens"]
    body = (await api.post("mutation { logout { ok errors { code } } }", token=tokens["accessToken"])).json()
    assert body["data"]["logout"] == {"ok": True, "errors": []}
    assert (await api.post(ME, token=tokens["accessToken"])).status_code == 401
    refreshed = (await api.gql(REFRESH, {"t": tokens["refreshToken"]}))["data"]["refreshToken"]
    assert refreshed["errors"][0]["code"] == "TOKEN_INVALID"


async def test_disabled_staff_is_locked_out_on_the_next_request(api, chain):
    clerk = (await api.login("hz01.clerk"))["tokens"]
    assert (await api.post(ME, token=clerk["accessToken"])).status_code == 200
    disabled = await api.gql(
        "mutation($id: ID!) { setStaffActive(input: {id: $id, active: false}) { errors { code } staff { active } } }",
        {"id": _staff_gid(chain, "hz01.clerk")},
        as_="hz01.manager",
    )
    assert disabled["data"]["setStaffActive"] == {"errors": [], "staff": {"active": False}}
    response = await api.post(ME, token=clerk["accessToken"])
    assert response.status_code == 401
    assert (await api.gql(REFRESH, {"t": clerk["refreshToken"]}))["data"]["refreshToken"]["tokens"] is None
    assert (await api.login("hz01.clerk"))["errors"][0]["code"] == "ACCOUNT_DISABLED"


async def test_member_first_sign_in_creates_the_member_once(api, state, chain):
    from tests.conftest import gid

    first = await api.member_sign_in("wx-openid-1:13800138000", gid("Store", chain.stores["SH01"]))
    second = await api.member_sign_in("wx-openid-1:13800138000")
    assert first["errors"] == [] and first["created"] is True and second["created"] is False
    assert first["member"]["id"] == second["member"]["id"]
    me = (await api.post(ME, token=second["tokens"]["accessToken"])).json()["data"]["me"]
    assert me == {"__typename": "MemberViewer", "member": {"id": first["member"]["id"], "phone": "13800138000"}}
    async with state.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Member)) == 1
        assert await session.scalar(select(func.count()).select_from(MemberIdentity)) == 1
        stored = await session.scalar(select(Member))
        # The phone is encrypted at rest: the plaintext is nowhere in the row.
        assert b"13800138000" not in (stored.phone_enc or b"")
        assert stored.home_store_id == chain.stores["SH01"]


async def test_member_sign_in_with_a_rejected_code_creates_nothing(api, state):
    result = await api.member_sign_in("bad code with spaces")
    assert result["errors"][0]["code"] == "IDENTITY_REJECTED"
    async with state.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Member)) == 0


async def test_changing_my_password_ends_my_other_sessions(api):
    here = (await api.login("sh03.manager"))["tokens"]["accessToken"]
    elsewhere = (await api.login("sh03.manager"))["tokens"]["accessToken"]
    body = (
        await api.post(
            'mutation { changeMyPassword(input: {currentPassword: "demo-pass-2026", newPassword: "new-pass-2026"})'
            " { errors { code } } }",
            token=here,
        )
    ).json()
    assert body["data"]["changeMyPassword"]["errors"] == []
    assert (await api.post(ME, token=here)).status_code == 200
    assert (await api.post(ME, token=elsewhere)).status_code == 401
    assert (await api.login("sh03.manager", "new-pass-2026"))["errors"] == []


def _staff_gid(chain, username):
    from tests.conftest import gid

    return gid("Staff", chain.staff[username])


@pytest.mark.postgres_too
async def test_two_concurrent_refreshes_of_one_token_succeed_at_most_once(api):
    import asyncio

    token = (await api.login("sz02.manager"))["tokens"]["refreshToken"]
    results = await asyncio.gather(*(api.gql(REFRESH, {"t": token}) for _ in range(2)))
    payloads = [r["data"]["refreshToken"] for r in results]
    assert sum(1 for p in payloads if p["tokens"]) <= 1
    assert any(p["errors"] for p in payloads)


async def test_wechat_provider_exchanges_the_code_for_the_union_id():
    import httpx

    from services.access.identity import WeChatIdentityProvider
    from services.platform.errors import DomainError

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.params["js_code"] == "good-code" and request.url.params["appid"] == "wxapp"
        if request.url.params["js_code"] == "good-code":
            return httpx.Response(200, json={"openid": "o-1", "unionid": "u-1", "session_key": "k"})
        return httpx.Response(200, json={"errcode": 40029, "errmsg": "invalid code"})

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    provider = WeChatIdentityProvider("wxapp", "secret", client)
    identity = await provider.exchange("good-code")
    assert (identity.provider, identity.subject) == ("wechat", "u-1")

    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"errcode": 40029, "errmsg": "invalid code"})

    provider = WeChatIdentityProvider("wxapp", "secret", httpx.AsyncClient(transport=httpx.MockTransport(refuse)))
    import pytest

    with pytest.raises(DomainError) as err:
        await provider.exchange("bad-code")
    assert err.value.code == "IDENTITY_REJECTED"


async def test_a_token_is_verified_once_and_still_expires_on_time(state, chain, monkeypatch):
    checked: list[str] = []
    real_decode = jwt.decode

    def counting_decode(token: str, *args: Any, **kwargs: Any) -> Any:
        checked.append(token)
        return real_decode(token, *args, **kwargs)

    monkeypatch.setattr(jwt, "decode", counting_decode)
    security = Security(state.settings, state.security.keys)
    token, expires = security.issue_access_token(AccessClaims("staff", chain.staff["hq.admin"], 1))
    first, second = security.decode_access_token(token), security.decode_access_token(token)
    assert first == second and first.subject_id == chain.staff["hq.admin"] and checked == [token]
    monkeypatch.setattr(time, "time", lambda: expires.timestamp())  # the second it expires
    with pytest.raises(Unauthenticated) as refused:
        security.decode_access_token(token)
    assert refused.value.reason == "TOKEN_EXPIRED" and checked == [token]
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    for _ in range(2):  # a bad signature is never remembered as good
        with pytest.raises(Unauthenticated):
            security.decode_access_token(tampered)
    assert checked.count(tampered) == 2
