"""Member identity providers: WeChat code-to-session in production, a local provider elsewhere."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import httpx

from services.platform.errors import DomainError, ErrorCode


@dataclass(frozen=True)
class ExternalIdentity:
    provider: str
    subject: str
    phone: str | None = None


class IdentityProvider(Protocol):
    name: str

    async def exchange(self, code: str) -> ExternalIdentity:
        """Turn the front end's one-time login code into a stable subject."""
        ...


_LOCAL_CODE = re.compile(r"^(?P<subject>[A-Za-z0-9_\-]{1,64})(?::(?P<phone>\+?[\d\- ]{11,16}))?$")


class LocalIdentityProvider:
    """Development and tests: the code is `subject` or `subject:phone`. Never enabled in production."""

    name = "local"

    async def exchange(self, code: str) -> ExternalIdentity:
        match = _LOCAL_CODE.match(code)
        if not match:
            raise DomainError(ErrorCode.IDENTITY_REJECTED, "The sign-in code was not accepted.", "code")
        return ExternalIdentity(self.name, match["subject"], match["phone"])


class WeChatIdentityProvider:
    """WeChat mini-program login: jscode2session exchanges wx.login()'s code for the openid."""

    name = "wechat"
    endpoint = "https://api.weixin.qq.com/sns/jscode2session"

    def __init__(self, app_id: str, app_secret: str, client: httpx.AsyncClient | None = None) -> None:
        self._app_id = app_id
        self._app_secret = app_secret
        self._client = client or httpx.AsyncClient(timeout=5.0)

    async def exchange(self, code: str) -> ExternalIdentity:
        if not code or len(code) > 128:
            raise DomainError(ErrorCode.IDENTITY_REJECTED, "The sign-in code was not accepted.", "code")
        params = {
            "appid": self._app_id,
            "secret": self._app_secret,
            "js_code": code,
            "grant_type": "authorization_code",
        }
        response = await self._client.get(self.endpoint, params=params)
        response.raise_for_status()
        body = response.json()
        if body.get("errcode") or not body.get("openid"):
            raise DomainError(ErrorCode.IDENTITY_REJECTED, "WeChat did not accept the sign-in code.", "code")
        # unionid ties the same person across the chain's apps; prefer it when WeChat gives one.
        return ExternalIdentity(self.name, str(body.get("unionid") or body["openid"]))


def enabled(providers: Mapping[str, IdentityProvider], name: str) -> IdentityProvider:
    """The identity provider a member signs in with, if this deployment enables it."""
    idp = providers.get(name)
    if idp is None:
        raise DomainError(ErrorCode.IDENTITY_REJECTED, f"Sign-in with {name} is not enabled.", "provider")
    return idp
