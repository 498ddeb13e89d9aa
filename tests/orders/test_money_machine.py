"""The money path as a Hypothesis state machine (issue #14's Proof), once per run: on PostgreSQL, else SQLite.

Members place pickup orders (sometimes with stored value or points) and pay them through the sandbox's signed
notification: on time, late (after a cancel or an expiry), twice (a second transaction), out of order, replayed.
Staff refund (partial, full, replayed with one key, concurrently with one key), top up at the counter with tenders,
and sell at the POS with mixed tenders; the job runner runs what is due (expiries, late refunds, closes). After every
step: money the provider took = money it gave back + money held on the books; the provider's record equals the
payments and refunds tables; each order's paid is the sum of its payments and refunded <= paid; each store's
settlement equals its ledgers for the day; no reservation outlives its order; stored value balances = lots =
entries; no job FAILED.

The database is shared by the examples of one run (seeding per example would take most of the budget), so every
invariant is stated over the whole database and the provider, not over one example's orders.
MONEY_MACHINE_EXAMPLES and MONEY_MACHINE_STEPS make longer runs (the invariants read every row after each step, so a
run slows as the database grows: 80 x 50 runs for over ten minutes on SQLite); MONEY_MACHINE_SHRINK=1 shrinks.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import httpx
import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from sqlalchemy import func, select

from app import create_app
from models import (
    BalanceEntry,
    BalanceKind,
    BalanceLot,
    CounterTopUp,
    Job,
    JobStatus,
    Member,
    Order,
    OrderLine,
    OrderStatus,
    Payment,
    PaymentStatus,
    Refund,
    StockLevel,
    Store,
    utcnow,
)
from resolvers.state import AppState, build_state
from services.orders.settlement import day_bounds
from services.platform import jobs
from services.platform.errors import DomainError, ErrorCode
from services.platform.payments import SandboxProvider
from tests.conftest import Api, gid, pk, with_caches
from tests.factories import list_in_store, make_library

EXAMPLES = int(os.environ.get("MONEY_MACHINE_EXAMPLES", "20"))
STEPS = int(os.environ.get("MONEY_MACHINE_STEPS", "30"))
# No shrinking by default: the examples share one database, so a shorter replay is not the same world (and shrinking
# a stateful failure over HTTP takes minutes); the failing steps are printed as they ran.
PHASES = (Phase.generate,) if not os.environ.get("MONEY_MACHINE_SHRINK") else tuple(Phase)
MEMBERS = ("member:mm-a", "member:mm-b")
PRICES = (1500, 2390)
SOLD = {
    OrderStatus.PAID,
    OrderStatus.PREPARING,
    OrderStatus.READY,
    OrderStatus.DELIVERING,
    OrderStatus.COMPLETED,
    OrderStatus.PARTIALLY_REFUNDED,
    OrderStatus.REFUNDED,
}
TAKEN = (PaymentStatus.SUCCEEDED, PaymentStatus.LATE, PaymentStatus.REFUNDED_LATE)
# Refusals a rule may meet in a legal sequence (refunding a cancelled order, cancelling a paid one, ...).
REFUSALS = {
    "INVALID_TRANSITION",
    "INVALID_INPUT",
    "INSUFFICIENT_BALANCE",
    "INSUFFICIENT_POINTS",
    "ORDER_NOT_PAYABLE",
    "NOT_FOUND",
    "OUT_OF_STOCK",
    "INSUFFICIENT_STOCK",
}

PLACE = """mutation($s: ID!, $lines: [CartLineInput!]!, $key: String!, $sv: Int!, $p: Int!) { placeOrder(input: {
  storeId: $s, lines: $lines, idempotencyKey: $key, useStoredValue: $sv, usePoints: $p}) {
  errors { code field message } order { id status payable } payment { params } } }"""
CANCEL = "mutation($id: ID!) { cancelMyOrder(input: {id: $id}) { errors { code } order { status } } }"
REFUND = """mutation($idempotencyKey: String!, $id: ID!, $lines: [CartLineInput!]) {
  refundOrder(input: {idempotencyKey: $idempotencyKey, id: $id, lines: $lines}) {
  errors { code field message } refund { id amount tenders { method amount } } } }"""
TOP_UP = """mutation($m: ID!, $a: Int, $k: String!, $t: [TenderInput!]!) { topUpStoredValue(input: {memberId: $m,
  amount: $a, idempotencyKey: $k, tenders: $t}) { errors { code field message } member { storedValue { total } } } }"""
CHECKOUT = """mutation($key: String!, $lines: [CartLineInput!]!, $t: [TenderInput!]!, $m: ID) {
  posCheckout(input: {clientOrderId: $key, lines: $lines, tenders: $t, memberId: $m}) {
  errors { code field message } order { id payable } } }"""
SETTLEMENT = "query($s: ID!, $d: Date!) { settlement(storeId: $s, date: $d) { figures } }"
DELETE = "mutation { deleteMyAccount { errors { code } deleted } }"
MAX_DELETIONS = 40
SIGN_IN = """mutation($c: String!, $s: ID) { memberSignIn(input: {provider: "local", code: $c, storeId: $s}) {
  errors { code } tokens { accessToken } member { id } } }"""


@dataclass
class Env:
    """One run's world, in the machine's own event loop: the app over the test's database, its sandbox, and what the
    payers handed the provider (delivered or still in flight)."""

    run: Any
    state: AppState
    api: Api
    sandbox: SandboxProvider
    store: int
    skus: list[int]
    members: dict[str, int]
    delivered: dict[str, int] = field(default_factory=dict)  # txn -> amount, notifications the app has seen
    in_flight: dict[str, int] = field(default_factory=dict)  # txn -> amount, paid but not yet notified
    offset: timedelta = timedelta(0)  # how far the clock has been run forward for the job runner


# Rules always add to their bundles (these stand for "nothing came of it"): which rules Hypothesis can draw must not
# depend on the database, which the examples share, or it reports its data generation as flaky.
NO_ORDER: tuple[str, str | None] = ("", None)
NO_NOTE: tuple[str, dict[str, str], bytes, int] = ("", {}, b"", 0)
SEEN: Counter[str] = Counter()  # what the rules met, printed with -s


def _key() -> str:
    return uuid.uuid4().hex


def _ok(payload: dict[str, Any], what: str) -> bool:
    """True when the mutation did it; a refusal must be one a legal sequence can meet, never an unknown error."""
    codes = {e["code"] for e in payload["errors"]}
    SEEN[f"{what}: {sorted(codes) or 'ok'}"] += 1
    assert codes <= REFUSALS, (what, payload)
    return not codes


class MoneyMachine(RuleBasedStateMachine):
    env: ClassVar[Env]
    orders = Bundle("orders")  # (order global id, the member who placed it, or None for a counter sale)
    notes = Bundle("notes")  # (txn, headers, body, amount)

    def _gql(self, query: str, variables: dict[str, Any], who: str) -> dict[str, Any]:
        body: dict[str, Any] = self.env.run(self.env.api.gql(query, variables, as_=who))
        assert "errors" not in body, body  # no transport error, no 500: a refusal is a payload error
        data: dict[str, Any] = body["data"]
        return data

    async def _db(self, fn: Any) -> Any:
        async with self.env.state.sessionmaker() as session:
            return await fn(session)

    def _member_balances(self, member_id: int) -> tuple[int, int]:
        async def read(session: Any) -> tuple[int, int]:
            m = await session.get(Member, member_id)
            return m.balance_principal + m.balance_bonus, m.points_balance

        result: tuple[int, int] = self.env.run(self._db(read))
        return result

    # ------------------------------------------------------------------------------------------------ rules

    @rule(
        target=orders,
        who=st.sampled_from(MEMBERS),
        qty=st.lists(st.integers(0, 2), min_size=2, max_size=2),
        sv=st.sampled_from([0, 0, 300, 10**9]),
        points=st.sampled_from([0, 0, 100]),
        replay=st.booleans(),
        pay=st.sampled_from(["now", "now", "later"]),
    )
    def place(self, who: str, qty: list[int], sv: int, points: int, replay: bool, pay: str) -> Any:
        env = self.env
        lines = [{"skuId": gid("Sku", s), "quantity": q} for s, q in zip(env.skus, qty, strict=True) if q]
        if not lines:
            lines = [{"skuId": gid("Sku", env.skus[0]), "quantity": 1}]
        balance, point_balance = self._member_balances(env.members[who])
        variables = {
            "s": gid("Store", env.store),
            "lines": lines,
            "key": _key(),
            "sv": min(sv, balance, sum(PRICES) * 2 - 1),
            "p": min(points, point_balance),
        }
        placed = self._gql(PLACE, variables, who)["placeOrder"]
        if not _ok(placed, "placeOrder"):
            return NO_ORDER
        if replay:  # the answer was lost: the same key gives the same order and the same pay parameters
            again = self._gql(PLACE, variables, who)["placeOrder"]
            assert again["order"]["id"] == placed["order"]["id"]
            if placed["payment"] is not None:  # re-issued with a fresh nonce, for the same prepay and amount
                shown = ("prepayId", "amount")
                assert [again["payment"]["params"][k] for k in shown] == [placed["payment"]["params"][k] for k in shown]
            else:
                assert again["payment"] is None
        order = (placed["order"]["id"], who)
        if pay == "now":
            self.pay_now(order, 1)
        return order

    @rule(target=notes, order=orders)
    def payer_pays(self, order: tuple[str, str | None]) -> Any:
        """The payer pays the order's provider payment (again, if it was paid): the notification is in flight."""
        if order == NO_ORDER:
            return NO_NOTE
        ref = f"ORD{pk(order[0]):012d}"
        amount = self.env.sandbox.prepaid.get(ref)
        if amount is None:  # a counter sale, or covered by stored value and points
            return NO_NOTE
        try:
            headers, body = self.env.sandbox.notification(provider_ref=ref, amount=amount, txn=f"T{_key()[:12]}")
        except DomainError as closed:
            assert closed.code is ErrorCode.ORDER_NOT_PAYABLE
            status = self.env.run(self._db(lambda s: s.scalar(select(Order.status).where(Order.id == pk(order[0])))))
            assert status is OrderStatus.CANCELLED, status  # only an ended order's payment is closed
            return NO_NOTE
        txn = str(__import__("orjson").loads(body)["transaction_id"])
        self.env.in_flight[txn] = amount
        return (txn, headers, body, amount)

    @rule(target=notes, order=orders, times=st.integers(1, 2))
    def pay_now(self, order: tuple[str, str | None], times: int) -> Any:
        """The payer pays and the provider tells us straight away (on time, or twice when the order is paid)."""
        note = self.payer_pays(order)
        if note != NO_NOTE:
            self.deliver(note, times, at_once=False)
        return note

    @rule(note=notes, times=st.integers(1, 3), at_once=st.booleans())
    def deliver(self, note: tuple[str, dict[str, str], bytes, int], times: int, at_once: bool) -> None:
        """The provider delivers (or re-delivers) a notification, until it hears SUCCESS; replays at once, too."""
        if note == NO_NOTE:
            return
        txn, headers, body, amount = note

        async def post() -> httpx.Response:
            response: httpx.Response = await self.env.api.http.post(
                "/payments/notify/sandbox", content=body, headers=headers
            )
            return response

        async def all_of() -> list[httpx.Response]:
            if at_once:
                return list(await asyncio.gather(*(post() for _ in range(times))))
            return [await post() for _ in range(times)]

        answers = self.env.run(all_of())
        assert [(a.status_code, a.json()) for a in answers] == [(200, {"code": "SUCCESS"})] * times
        self.env.in_flight.pop(txn, None)
        self.env.delivered[txn] = amount

    @rule(order=orders)
    def cancel(self, order: tuple[str, str | None]) -> None:
        if order == NO_ORDER or order[1] is None:
            return
        _ok(self._gql(CANCEL, {"id": order[0]}, order[1])["cancelMyOrder"], "cancelMyOrder")

    @rule(order=orders, partial=st.booleans(), mode=st.sampled_from(["once", "replay", "concurrent"]))
    def refund(self, order: tuple[str, str | None], partial: bool, mode: str) -> None:
        env = self.env
        if order == NO_ORDER:
            return

        async def first_line(session: Any) -> int:
            line = await session.scalar(
                select(OrderLine).where(OrderLine.order_id == pk(order[0])).order_by(OrderLine.id).limit(1)
            )
            return int(line.sku_id)

        variables: dict[str, Any] = {"id": order[0], "idempotencyKey": _key()}
        if partial:
            variables["lines"] = [{"skuId": gid("Sku", env.run(self._db(first_line))), "quantity": 1}]

        async def send() -> dict[str, Any]:
            body: dict[str, Any] = await env.api.gql(REFUND, variables, as_="sh01.manager")
            return body

        async def at_once() -> list[dict[str, Any]]:
            return list(await asyncio.gather(*(send() for _ in range(3))))

        if mode == "concurrent":
            answers = env.run(at_once())
        else:
            answers = [env.run(send()) for _ in range(2 if mode == "replay" else 1)]
        payloads = [a["data"]["refundOrder"] for a in answers]
        if _ok(payloads[0], "refundOrder"):
            # One key, one refund: every answer is the first one.
            assert all(p == payloads[0] for p in payloads), payloads
            assert sum(t["amount"] for t in payloads[0]["refund"]["tenders"]) == payloads[0]["refund"]["amount"]

    @rule(
        who=st.sampled_from(MEMBERS),
        amount=st.sampled_from([1000, 5000]),
        split=st.sampled_from(["CASH", "CARD", "WECHAT_PAY", "ALIPAY", "CASH+CARD", "ALIPAY+CASH"]),
        replay=st.booleans(),
    )
    def counter_top_up(self, who: str, amount: int, split: str, replay: bool) -> None:
        if self._member_balances(self.env.members[who])[0] >= 20_000:
            return  # enough to spend; more top-ups would crowd out the other rules
        methods = split.split("+")
        shares = [amount // len(methods)] * len(methods)
        shares[0] += amount - sum(shares)
        variables = {
            "m": gid("Member", self.env.members[who]),
            "a": amount,
            "k": _key(),
            "t": [{"method": m, "amount": a} for m, a in zip(methods, shares, strict=True)],
        }
        done = self._gql(TOP_UP, variables, "sh01.clerk")["topUpStoredValue"]
        assert done["errors"] == [], done
        if replay:
            assert self._gql(TOP_UP, variables, "sh01.clerk")["topUpStoredValue"] == done

    @rule(
        target=orders,
        who=st.sampled_from([None, *MEMBERS]),
        qty=st.integers(1, 3),
        sv_share=st.sampled_from([0, 1, 2]),
        replay=st.booleans(),
    )
    def pos_checkout(self, who: str | None, qty: int, sv_share: int, replay: bool) -> Any:
        """A counter sale paid cash + card (+ stored value for a member who has it)."""
        env = self.env
        lines = [{"skuId": gid("Sku", env.skus[1]), "quantity": qty}]
        member = gid("Member", env.members[who]) if who else None
        balance = self._member_balances(env.members[who])[0] if who else 0
        key = f"pos-{_key()}"

        def tenders(total: int) -> list[dict[str, Any]]:
            sv = min(balance, total * sv_share // 3)
            cash = (total - sv) // 2
            parts = [("CASH", cash), ("CARD", total - sv - cash), ("STORED_VALUE", sv)]
            return [{"method": m, "amount": a} for m, a in parts if a > 0]

        def sell(total: int) -> dict[str, Any]:
            payload: dict[str, Any] = self._gql(
                CHECKOUT, {"key": key, "lines": lines, "t": tenders(total), "m": member}, "sh01.clerk"
            )["posCheckout"]
            return payload

        total = PRICES[1] * qty
        sold = sell(total)
        if sold["errors"] and sold["errors"][0]["field"] == "tenders":  # a member price: the answer names the total
            total = int(sold["errors"][0]["message"].split("add up to ")[1].split(" ")[0])
            sold = sell(total)
        assert sold["errors"] == [], sold
        if replay:  # the tablet retries with its clientOrderId: the same sale, nothing twice
            assert sell(total)["order"]["id"] == sold["order"]["id"]
        return (sold["order"]["id"], None)

    @rule(who=st.sampled_from(MEMBERS))
    def delete_account(self, who: str) -> None:
        """The member deletes their account (open orders settled first; refused while they hold principal), then
        the same person signs up again: the slot goes on with a new account, the old orders stay in the books."""
        env = self.env
        if SEEN["deleteMyAccount: ok"] >= MAX_DELETIONS:
            return  # each deletion signs a new member up: stay under memberSignIn's 60 a minute from one address
        if not _ok(self._gql(DELETE, {}, who)["deleteMyAccount"], "deleteMyAccount"):
            return
        subject = f"{who.removeprefix('member:')}-{uuid.uuid4().hex[:8]}"
        signed = env.run(env.api.gql(SIGN_IN, {"c": subject, "s": gid("Store", env.store)}))["data"]["memberSignIn"]
        assert signed["errors"] == [], signed
        env.api.tokens[who] = signed["tokens"]["accessToken"]
        env.members[who] = pk(signed["member"]["id"])

    @rule(minutes=st.sampled_from([0, 16, 60]))
    def run_jobs(self, minutes: int) -> None:
        """The job runner at a later time: expiries past their 15 minutes, late refunds, closes, retries."""
        env = self.env
        env.offset = max(env.offset, timedelta(minutes=minutes))
        at = utcnow() + env.offset + timedelta(seconds=1)
        env.run(jobs.run_due(env.state.sessionmaker, at, providers=env.state.payment_providers))

    # ------------------------------------------------------------------------------------------- invariants

    @invariant()
    def money_is_accounted_for(self) -> None:
        self.env.run(_check(self.env))


async def _check(env: Env) -> None:
    sandbox = env.sandbox
    async with env.state.sessionmaker() as session:
        payments = list(await session.scalars(select(Payment)))
        refunds = list(await session.scalars(select(Refund)))
        orders = {o.id: o for o in await session.scalars(select(Order))}
        failed = await session.scalar(select(func.count()).select_from(Job).where(Job.status == JobStatus.FAILED))
        assert failed == 0, list(await session.scalars(select(Job.last_error).where(Job.status == JobStatus.FAILED)))

        # The provider: what payers paid (in flight or notified) is what it says it took; what it gave back is what
        # the books say went back through it (order refunds by the provider's method, and late payments refunded).
        took = sum(prepaid * sandbox.received.get(ref, 0) for ref, prepaid in sandbox.prepaid.items())
        assert took == sum(env.delivered.values()) + sum(env.in_flight.values())
        gave_back = sum(sum(done.values()) for done in sandbox.refunds.values())
        provider_payments = [p for p in payments if p.provider]
        by_ref: dict[str, list[Payment]] = defaultdict(list)
        for p in provider_payments:
            by_ref[p.provider_ref or ""].append(p)
        order_refunds_through_provider = 0
        for r in refunds:
            ref = next((p.provider_ref for p in _provider_payments_of(orders[r.order_id], provider_payments)), None)
            if ref is not None:
                order_refunds_through_provider += r.by_method.get("WECHAT_PAY", 0)
        late_refunded = sum(p.amount for p in provider_payments if p.status is PaymentStatus.REFUNDED_LATE)
        assert gave_back == order_refunds_through_provider + late_refunded, (gave_back, order_refunds_through_provider)
        # Money held: paid provider payments and late ones not yet given back, less what order refunds returned.
        held = sum(p.amount for p in provider_payments if p.status in (PaymentStatus.SUCCEEDED, PaymentStatus.LATE))
        assert sum(env.delivered.values()) == gave_back + held - order_refunds_through_provider
        # Each delivered notification is on the books once, with its transaction id.
        booked = {p.provider_txn: p.amount for p in provider_payments if p.status in TAKEN}
        assert booked == env.delivered
        for ref, rows in by_ref.items():
            assert sum(done for done in sandbox.refunds.get(ref, {}).values()) <= sandbox.prepaid[ref] * max(
                1, sandbox.received.get(ref, 0)
            )

        # Each order: paid is the sum of its payments, refunded <= paid; a sold order is paid in full.
        paid: dict[int, int] = defaultdict(int)
        for p in payments:
            if p.status is PaymentStatus.SUCCEEDED:
                paid[p.order_id] += p.amount
        refunded: dict[int, int] = defaultdict(int)
        for r in refunds:
            refunded[r.order_id] += r.amount
        for order in orders.values():
            total = order.payable + order.points_value + order.stored_value_used
            if order.status in SOLD:
                assert paid[order.id] == total, (order.id, order.status, paid[order.id], total)
            else:
                assert not any(
                    p.order_id == order.id and p.provider and p.status is PaymentStatus.SUCCEEDED for p in payments
                ), order.id
            assert refunded[order.id] <= paid[order.id], (order.id, refunded[order.id], paid[order.id])
            if order.status is OrderStatus.REFUNDED:
                assert refunded[order.id] == paid[order.id], (order.id, refunded[order.id], paid[order.id])

        # No reservation outlives its order: reserved = the lines of open (unpaid) orders.
        open_lines: dict[tuple[int, int], int] = defaultdict(int)
        for line in await session.scalars(
            select(OrderLine).join(Order, Order.id == OrderLine.order_id).where(Order.status == OrderStatus.CREATED)
        ):
            open_lines[(orders[line.order_id].store_id, line.sku_id)] += line.quantity
        levels = {(lv.store_id, lv.sku_id): lv.reserved for lv in await session.scalars(select(StockLevel))}
        assert {k: v for k, v in levels.items() if v} == {k: v for k, v in open_lines.items() if v}

        # Stored value: each member's balance = the sum of their lots = the sum of their ledger.
        for member in await session.scalars(select(Member)):
            lots = (
                await session.execute(
                    select(
                        func.coalesce(func.sum(BalanceLot.principal_left), 0),
                        func.coalesce(func.sum(BalanceLot.bonus_left), 0),
                    ).where(BalanceLot.member_id == member.id)
                )
            ).one()
            entries = (
                await session.execute(
                    select(
                        func.coalesce(func.sum(BalanceEntry.principal), 0),
                        func.coalesce(func.sum(BalanceEntry.bonus), 0),
                    ).where(BalanceEntry.member_id == member.id)
                )
            ).one()
            balance = (member.balance_principal, member.balance_bonus)
            assert balance == tuple(lots) == tuple(entries), (member.id, balance, tuple(lots), tuple(entries))

        store = await session.get(Store, env.store)
        assert store is not None
        day = datetime.now(ZoneInfo(store.timezone)).date()
        start, end = day_bounds(store, day)
        ledger = await _ledger(session, env.store, start, end, payments, refunds)
    figures = await env.api.gql(SETTLEMENT, {"s": gid("Store", env.store), "d": day.isoformat()}, as_="hq.admin")
    figures = figures["data"]["settlement"]["figures"]
    shown = {
        k: ({m: v for m, v in figures[k].items() if v} if k in ("takings", "topUpTakings", "refunds") else figures[k])
        for k in ledger
    }
    assert shown == ledger


def _provider_payments_of(order: Order, provider_payments: list[Payment]) -> list[Payment]:
    return [p for p in provider_payments if p.order_id == order.id]


def _in(at: datetime | None, start: datetime, end: datetime) -> bool:
    if at is None:
        return False
    at = at if at.tzinfo else at.replace(tzinfo=start.tzinfo)
    return start <= at < end


async def _ledger(
    session: Any, store_id: int, start: datetime, end: datetime, payments: list[Payment], refunds: list[Refund]
) -> dict[str, Any]:
    """The day's figures summed row by row from the ledgers (payments, refunds, counter top-ups, balance entries)."""
    takings: dict[str, int] = defaultdict(int)
    for p in payments:
        if p.store_id == store_id and p.status in TAKEN and _in(p.paid_at, start, end):
            takings[p.method.value] += p.amount
    top_ups: dict[str, int] = defaultdict(int)
    for t in await session.scalars(select(CounterTopUp).where(CounterTopUp.store_id == store_id)):
        if _in(t.created_at, start, end):
            for method, amount in t.by_method.items():
                top_ups[method] += amount
                takings[method] += amount
    back: dict[str, int] = defaultdict(int)
    for r in refunds:
        if r.store_id == store_id and _in(r.created_at, start, end):
            for method, amount in r.by_method.items():
                back[method] += amount
    late_in = late_out = 0
    for p in payments:
        if p.store_id == store_id and p.status in (PaymentStatus.LATE, PaymentStatus.REFUNDED_LATE):
            late_in += p.amount if _in(p.paid_at, start, end) else 0
            if p.status is PaymentStatus.REFUNDED_LATE and _in(p.refunded_at, start, end):
                late_out += p.amount
                back[p.method.value] += p.amount
    sold = [0, 0]
    for e in await session.scalars(
        select(BalanceEntry).where(BalanceEntry.store_id == store_id, BalanceEntry.kind == BalanceKind.TOP_UP)
    ):
        if _in(e.created_at, start, end):
            sold[0] += e.principal
            sold[1] += e.bonus
    money = [m for m in ("WECHAT_PAY", "ALIPAY", "CASH", "CARD", "STORED_VALUE")]

    def nonzero(d: dict[str, int]) -> dict[str, int]:
        return {k: v for k, v in d.items() if v}

    return {
        "takings": nonzero(takings),
        "topUpTakings": nonzero(top_ups),
        "refunds": nonzero(back),
        "latePayments": {"received": late_in, "refunded": late_out},
        "storedValueSold": {"principal": sold[0], "bonus": sold[1]},
        "net": sum(takings[m] for m in money) - sum(back[m] for m in money) - sum(top_ups.values()),
    }


async def _summary(state: AppState) -> dict[str, Any]:
    async with state.sessionmaker() as session:
        payments = (
            await session.execute(
                select(Payment.status, func.count()).where(Payment.provider.is_not(None)).group_by(Payment.status)
            )
        ).all()
        orders = (await session.execute(select(Order.status, func.count()).group_by(Order.status))).all()
        refunds = await session.scalar(select(func.count()).select_from(Refund))
        top_ups = await session.scalar(select(func.count()).select_from(CounterTopUp))
    return {
        "provider payments": {s.value: n for s, n in payments},
        "orders": {s.value: n for s, n in orders},
        "refunds": refunds,
        "counter top-ups": top_ups,
    }


async def _given(state: AppState) -> tuple[list[int], int]:
    from sqlalchemy import update

    from models import StoreListing

    library = await make_library(state, products=2, skus_per_product=1)
    async with state.sessionmaker() as session:
        store = int(await session.scalar(select(Store.id).where(Store.code == "SH01")) or 0)
    await list_in_store(state, store, library.sku_ids, on_hand=100_000)
    async with state.sessionmaker() as session, session.begin():
        for sku, price in zip(library.sku_ids, PRICES, strict=True):
            await session.execute(
                update(StoreListing)
                .where(StoreListing.store_id == store, StoreListing.sku_id == sku)
                .values(price=price)
            )
    return library.sku_ids, store


@pytest.mark.postgres_preferred
async def test_the_money_path_keeps_its_books(state: AppState) -> None:
    skus, store = await _given(state)

    def thread() -> None:
        loop = asyncio.new_event_loop()
        # An engine, sandbox and app of this loop's own, over the same database, with every cache on as deployed.
        own = build_state(with_caches(state.settings))

        async def open_env() -> tuple[Env, httpx.AsyncClient]:
            http = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=create_app(state=own)), base_url="http://testserver"
            )
            api = Api(http)
            members = {}
            for who in MEMBERS:
                signed = await api.gql(SIGN_IN, {"c": who.removeprefix("member:"), "s": gid("Store", store)})
                signed = signed["data"]["memberSignIn"]
                api.tokens[who] = signed["tokens"]["accessToken"]
                members[who] = pk(signed["member"]["id"])
            sandbox = own.payment_providers["sandbox"]
            assert isinstance(sandbox, SandboxProvider)
            return Env(loop.run_until_complete, own, api, sandbox, store, skus, members), http

        env, http = loop.run_until_complete(open_env())
        try:
            MoneyMachine.env = env
            SEEN.clear()
            run_state_machine_as_test(
                MoneyMachine,
                settings=settings(
                    max_examples=EXAMPLES,
                    stateful_step_count=STEPS,
                    deadline=None,
                    phases=PHASES,
                    suppress_health_check=list(HealthCheck),
                ),
            )
            print("money machine saw:", loop.run_until_complete(_summary(own)), dict(SEEN))  # with -s: what ran
        finally:
            loop.run_until_complete(http.aclose())
            loop.run_until_complete(own.engine.dispose())
            loop.close()

    await asyncio.to_thread(thread)
