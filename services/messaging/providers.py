"""Message providers: one interface; WeChat subscribe messages (订阅消息) in production, a sandbox that records what
it sent everywhere else. Like services/platform/payments.py's adapters: the sending job knows only the Protocol."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlencode

from services.platform.config import Settings


@dataclass(frozen=True)
class Outgoing:
    """One rendered message for one member, as the job hands it to a provider."""

    message_id: int
    member_id: int
    recipient: str | None  # the member's WeChat openid, when they signed in through WeChat
    template_key: str
    title: str
    text: str
    variables: Mapping[str, str]


class SendFailed(Exception):
    """The provider did not take the message: `permanent` ones are not retried (the member unsubscribed, no openid)."""

    def __init__(self, reason: str, *, permanent: bool = False) -> None:
        super().__init__(reason)
        self.permanent = permanent


class MessageProvider(Protocol):
    name: str

    async def send(self, message: Outgoing) -> str:
        """Deliver one message; returns the provider's message id, raises SendFailed."""
        ...


@dataclass
class SandboxMessageProvider:
    """Records every message it 'sent' (tests and development read `sent`); `fail_next` fails the next sends."""

    name: str = "sandbox"
    sent: list[Outgoing] = field(default_factory=list)
    fail_next: int = 0

    async def send(self, message: Outgoing) -> str:
        if self.fail_next > 0:
            self.fail_next -= 1
            raise SendFailed("sandbox: the provider did not answer")
        self.sent.append(message)
        return f"sbx_msg_{message.message_id}"


# (method, url, json body or None) -> the JSON answer. httpx in production; a fake in tests.
Transport = Callable[[str, str, dict[str, Any] | None], Awaitable[dict[str, Any]]]
WECHAT_API = "https://api.weixin.qq.com"
# WeChat's answers that retrying cannot fix: the user refused or used up the subscription, a bad openid or template.
PERMANENT_ERRCODES = frozenset({40003, 40037, 43101, 47003})


async def _httpx_transport(method: str, url: str, body: dict[str, Any] | None) -> dict[str, Any]:
    import httpx  # only production sends over HTTP

    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.request(method, url, json=body)
        answer: dict[str, Any] = response.json()
        return answer


@dataclass
class WeChatSubscribeProvider:
    """WeChat mini-program subscribe messages: `template_ids` maps our template keys to the ids registered in the
    WeChat console; each template's variables go out as its `data` keywords."""

    app_id: str
    app_secret: str
    template_ids: Mapping[str, str]
    transport: Transport = _httpx_transport
    name: str = "wechat"
    _token: tuple[str, float] | None = None

    def token_url(self) -> str:
        query = urlencode({"grant_type": "client_credential", "appid": self.app_id, "secret": self.app_secret})
        return f"{WECHAT_API}/cgi-bin/token?{query}"

    def request_for(self, message: Outgoing, access_token: str) -> tuple[str, dict[str, Any]]:
        """The subscribeMessage.send call for one message: its URL and JSON body."""
        if not message.recipient:
            raise SendFailed("the member has no WeChat openid", permanent=True)
        template_id = self.template_ids.get(message.template_key)
        if template_id is None:
            raise SendFailed(f"no WeChat template for {message.template_key}", permanent=True)
        body = {
            "touser": message.recipient,
            "template_id": template_id,
            "page": "pages/messages/index",
            "miniprogram_state": "formal",
            "lang": "zh_CN",
            "data": {name: {"value": value[:20]} for name, value in sorted(message.variables.items())},
        }
        return f"{WECHAT_API}/cgi-bin/message/subscribe/send?access_token={access_token}", body

    async def _access_token(self) -> str:
        if self._token is not None and self._token[1] > time.monotonic():
            return self._token[0]
        answer = await self.transport("GET", self.token_url(), None)
        if "access_token" not in answer:
            raise SendFailed(f"wechat token: {answer.get('errcode')} {answer.get('errmsg')}")
        self._token = (str(answer["access_token"]), time.monotonic() + int(answer.get("expires_in", 7200)) - 300)
        return self._token[0]

    async def send(self, message: Outgoing) -> str:
        url, body = self.request_for(message, await self._access_token())
        answer = await self.transport("POST", url, body)
        code = int(answer.get("errcode", 0))
        if code != 0:
            if code in {40001, 42001}:  # the access token went stale: fetch a new one next time
                self._token = None
            raise SendFailed(f"wechat {code}: {answer.get('errmsg')}", permanent=code in PERMANENT_ERRCODES)
        return str(answer.get("msgid", ""))


def configured_message_provider(settings: Settings) -> MessageProvider | None:
    """WeChat where configured; the sandbox outside production; none in a production without WeChat (messages wait)."""
    if settings.wechat_app_id and settings.wechat_app_secret and settings.wechat_message_templates:
        return WeChatSubscribeProvider(
            settings.wechat_app_id, settings.wechat_app_secret, dict(settings.wechat_message_templates)
        )
    return None if settings.is_production else SandboxMessageProvider()


class _Installed:
    provider: MessageProvider | None = SandboxMessageProvider()


def install(provider: MessageProvider | None) -> MessageProvider | None:
    """The provider this process's sending job uses (the app installs its configured one when it builds its state)."""
    _Installed.provider = provider
    return provider


def installed() -> MessageProvider | None:
    return _Installed.provider
