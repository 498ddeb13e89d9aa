"""Payment providers: one interface; WeChat Pay and Alipay in production, a sandbox that signs like them.

The sandbox creates a prepay and later notifies `POST /payments/notify/sandbox` with a body signed by
HMAC-SHA256 under its secret, as the real providers sign theirs; the endpoint verifies before trusting it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.platform.errors import DomainError, ErrorCode


@dataclass(frozen=True)
class Prepay:
    provider_ref: str
    client_params: dict[str, str]


@dataclass(frozen=True)
class Notification:
    provider_ref: str
    provider_txn: str
    amount: int
    succeeded: bool


async def paid_once(
    session: AsyncSession, model: Any, paid: Any, provider: str, note: Notification, at: datetime | None, what: str
) -> tuple[Any, bool]:
    """The online purchase (a row of `model`: provider, provider_ref, status, amount, provider_txn, paid_at) that
    `note` is about, locked, and whether the note pays it now: marked `paid` once; a repeat or a failed payment
    changes nothing; a wrong amount changes nothing and is refused."""
    row = await session.scalar(
        select(model).where(model.provider == provider, model.provider_ref == note.provider_ref).with_for_update()
    )
    if row is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No such payment.")
    if row.status is paid or not note.succeeded:
        return row, False
    if note.amount != row.amount:
        raise DomainError(ErrorCode.PAYMENT_AMOUNT_MISMATCH, f"The amount paid does not match the {what}.")
    row.status, row.provider_txn, row.paid_at = paid, note.provider_txn, at or datetime.now(UTC)
    return row, True


class PaymentProvider(Protocol):
    name: str

    def create_prepay(self, *, provider_ref: str, amount: int, description: str) -> Prepay: ...

    def verify_notification(self, headers: dict[str, str], body: bytes) -> Notification:
        """Check the signature and parse; raise DomainError(PAYMENT_SIGNATURE_INVALID) if it does not verify."""
        ...

    def refund(self, *, provider_ref: str, refund_ref: str, amount: int) -> str:
        """Ask the provider to give `amount` back for a payment; returns the provider's refund id."""
        ...

    def close(self, *, provider_ref: str) -> None:
        """Close an unpaid payment order, so the payer can no longer pay it (WeChat's closeorder, Alipay's
        trade.close). Closing twice is harmless; a payment that got in before the close arrives as a late one."""
        ...


class SandboxProvider:
    name = "sandbox"
    SIGNATURE_HEADER = "x-sandbox-signature"

    def __init__(self, secret: bytes) -> None:
        self._secret = hashlib.sha256(b"sandbox-pay:" + secret).digest()
        # Like the real providers, it remembers what each prepay was for and what was refunded against it
        # (refund id -> amount), refusing to give back more than was paid and answering a repeated refund id once.
        self.prepaid: dict[str, int] = {}
        self.refunds: dict[str, dict[str, int]] = {}
        # How many times payers paid each out-trade-no (twice, for a duplicate payment), and the closed ones.
        self.received: dict[str, int] = {}
        self.closed: set[str] = set()
        # Fault injection for tests and drills: the next calls time out (after doing their work, when `done`).
        self.time_out_next: int = 0
        self.time_out_after_done = False

    def _maybe_time_out(self, *, done: bool) -> None:
        if self.time_out_next > 0 and done == self.time_out_after_done:
            self.time_out_next -= 1
            raise DomainError(ErrorCode.PAYMENT_PROVIDER_UNAVAILABLE, "The payment provider did not answer; try again.")

    def _sign(self, body: bytes) -> str:
        return hmac.new(self._secret, body, hashlib.sha256).hexdigest()

    def create_prepay(self, *, provider_ref: str, amount: int, description: str) -> Prepay:
        self._maybe_time_out(done=False)
        if provider_ref in self.closed:
            raise DomainError(ErrorCode.ORDER_NOT_PAYABLE, "The payment order is closed.")
        self.prepaid[provider_ref] = amount
        nonce = secrets.token_hex(8)
        params = {"prepayId": f"sbx_{provider_ref}", "amount": str(amount), "nonce": nonce}
        params["paySign"] = self._sign(orjson.dumps(params, option=orjson.OPT_SORT_KEYS))
        return Prepay(provider_ref=provider_ref, client_params=params)

    def refund(self, *, provider_ref: str, refund_ref: str, amount: int) -> str:
        if amount <= 0:
            raise DomainError(ErrorCode.INVALID_INPUT, "Refund a positive amount.", "amount")
        self._maybe_time_out(done=False)
        done = self.refunds.setdefault(provider_ref, {})
        if refund_ref not in done:
            paid = self.prepaid.get(provider_ref)
            if paid is not None:  # a duplicate payment took the amount more than once
                paid *= max(1, self.received.get(provider_ref, 0))
            if paid is not None and sum(done.values()) + amount > paid:
                raise DomainError(ErrorCode.PAYMENT_REFUND_REFUSED, "The provider refused: more than was paid.")
            done[refund_ref] = amount
        self._maybe_time_out(done=True)  # the money moved, but the answer was lost
        return f"sbx_refund_{refund_ref}"

    def close(self, *, provider_ref: str) -> None:
        self._maybe_time_out(done=False)
        self.closed.add(provider_ref)

    def notification(self, *, provider_ref: str, amount: int, txn: str | None = None) -> tuple[dict[str, str], bytes]:
        """The payer pays: the headers and signed body the sandbox then sends. A closed payment order takes no money,
        so it never produces a notification (ORDER_NOT_PAYABLE)."""
        if provider_ref in self.closed:
            raise DomainError(ErrorCode.ORDER_NOT_PAYABLE, "The payment order is closed; the payer cannot pay it.")
        self.received[provider_ref] = self.received.get(provider_ref, 0) + 1
        body = orjson.dumps(
            {
                "out_trade_no": provider_ref,
                "transaction_id": txn or f"sbx_txn_{secrets.token_hex(6)}",
                "amount": amount,
                "trade_state": "SUCCESS",
            }
        )
        return {self.SIGNATURE_HEADER: self._sign(body)}, body

    def verify_notification(self, headers: dict[str, str], body: bytes) -> Notification:
        signature = headers.get(self.SIGNATURE_HEADER, "")
        if not hmac.compare_digest(signature, self._sign(body)):
            raise DomainError(ErrorCode.PAYMENT_SIGNATURE_INVALID, "The notification signature does not verify.")
        try:
            data = orjson.loads(body)
            return Notification(
                str(data["out_trade_no"]),
                str(data["transaction_id"]),
                int(data["amount"]),
                data["trade_state"] == "SUCCESS",
            )
        except (KeyError, ValueError, TypeError, orjson.JSONDecodeError) as exc:
            raise DomainError(ErrorCode.PAYMENT_SIGNATURE_INVALID, "The notification is malformed.") from exc


def preferred_provider(providers: Mapping[str, PaymentProvider]) -> PaymentProvider:
    """The provider new payments go through: WeChat Pay where configured, else the sandbox."""
    for name in ("wechat", "sandbox"):
        if name in providers:
            return providers[name]
    raise DomainError(ErrorCode.INVALID_INPUT, "No payment provider is configured.")


def configured_providers(*, production: bool, secret: bytes) -> dict[str, PaymentProvider]:
    """The providers this deployment takes payments through (WeChat Pay and Alipay adapters plug in here)."""
    providers: dict[str, PaymentProvider] = {}
    if not production:
        providers["sandbox"] = SandboxProvider(secret)
    return providers
