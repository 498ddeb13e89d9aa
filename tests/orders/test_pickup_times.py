"""Pickup times: in the future, inside the store's hours in its own time zone; a closed store takes no order for now
and says when it opens, in the quote and in the refusal."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, update

from models import Order, Store, StoreStatus, utcnow
from services.org.stores import next_opening
from tests.conftest import gid, table_counts
from tests.marketing_givens import given_menu

SHANGHAI = ZoneInfo("Asia/Shanghai")
MEMBER = "member:pickup-fan:13800138111"
PLACE = """mutation($in: PlaceOrderInput!) { placeOrder(input: $in) { errors { code field message }
  order { id pickupAt } } }"""
QUOTE = """query($in: QuoteInput!) { quote(input: $in) { total openNow nextOpening } }"""


async def _hours(state, store_id: int, opens: str, closes: str) -> None:
    async with state.sessionmaker() as session, session.begin():
        hours = [{"weekday": d, "opens": opens, "closes": closes} for d in range(7)]
        await session.execute(update(Store).where(Store.id == store_id).values(hours=hours))


def _order(menu: Any, key: str, pickup_at: datetime | None) -> dict[str, Any]:
    return {
        "in": {
            "storeId": gid("Store", menu.store),
            "idempotencyKey": key,
            "lines": [{"skuId": gid("Sku", menu.a), "quantity": 1}],
            "pickupAt": pickup_at.isoformat() if pickup_at else None,
        }
    }


async def _orders(state) -> int:
    async with state.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(Order)) or 0)


async def test_a_pickup_at_three_in_the_morning_or_in_the_past_is_refused(api, state, chain):
    menu = await given_menu(state, chain)
    await _hours(state, menu.store, "08:00", "22:00")
    await api.token(MEMBER)
    before = await table_counts(state)
    tomorrow = utcnow().astimezone(SHANGHAI).date() + timedelta(days=1)
    three_am = datetime(tomorrow.year, tomorrow.month, tomorrow.day, 3, 0, tzinfo=SHANGHAI)
    for key, when in (
        ("night", three_am),
        ("past", utcnow() - timedelta(days=2)),
        ("far", three_am + timedelta(days=9, hours=9)),
    ):
        body = await api.gql(PLACE, _order(menu, key, when), as_=MEMBER)
        errors = body["data"]["placeOrder"]["errors"]
        assert [(e["code"], e["field"]) for e in errors] == [("PICKUP_TIME_INVALID", "pickupAt")], key
        assert body["data"]["placeOrder"]["order"] is None
    night = await api.gql(PLACE, _order(menu, "night-2", three_am), as_=MEMBER)
    assert f"{tomorrow.isoformat()} 08:00" in night["data"]["placeOrder"]["errors"][0]["message"]
    assert await table_counts(state) == before


@pytest.mark.postgres_too
async def test_a_pickup_inside_the_hours_is_kept_on_the_order(api, state, chain):
    menu = await given_menu(state, chain)
    await _hours(state, menu.store, "08:00", "22:00")
    tomorrow = utcnow().astimezone(SHANGHAI).date() + timedelta(days=1)
    at = datetime(tomorrow.year, tomorrow.month, tomorrow.day, 9, 30, tzinfo=SHANGHAI)
    body = await api.gql(PLACE, _order(menu, "morning", at), as_=MEMBER)
    assert body["data"]["placeOrder"]["errors"] == []
    assert datetime.fromisoformat(body["data"]["placeOrder"]["order"]["pickupAt"]) == at


async def test_a_closed_store_refuses_an_order_for_now_and_the_quote_says_when_it_opens(api, state, chain):
    menu = await given_menu(state, chain)
    local = utcnow().astimezone(SHANGHAI)
    opens_at = (local + timedelta(hours=2)).replace(second=0, microsecond=0)
    await _hours(state, menu.store, opens_at.strftime("%H:%M"), (local + timedelta(hours=3)).strftime("%H:%M"))
    quoted = await api.gql(
        QUOTE,
        {"in": {"storeId": gid("Store", menu.store), "lines": [{"skuId": gid("Sku", menu.a), "quantity": 1}]}},
        as_=MEMBER,
    )
    assert quoted["data"]["quote"]["openNow"] is False
    assert datetime.fromisoformat(quoted["data"]["quote"]["nextOpening"]) == opens_at
    before = await _orders(state)
    refused = await api.gql(PLACE, _order(menu, "now", None), as_=MEMBER)
    [error] = refused["data"]["placeOrder"]["errors"]
    assert (error["code"], error["field"]) == ("STORE_CLOSED", "pickupAt")
    assert opens_at.strftime("%H:%M") in error["message"]
    assert await _orders(state) == before
    booked = await api.gql(PLACE, _order(menu, "then", opens_at + timedelta(minutes=10)), as_=MEMBER)
    assert booked["data"]["placeOrder"]["errors"] == []
    assert await _orders(state) == before + 1


async def test_an_open_store_quotes_open_now_and_takes_an_order_for_now(api, state, chain):
    menu = await given_menu(state, chain)
    quoted = await api.gql(
        QUOTE,
        {"in": {"storeId": gid("Store", menu.store), "lines": [{"skuId": gid("Sku", menu.a), "quantity": 1}]}},
        as_=MEMBER,
    )
    assert quoted["data"]["quote"]["openNow"] is True
    body = await api.gql(PLACE, _order(menu, "asap", None), as_=MEMBER)
    assert body["data"]["placeOrder"]["errors"] == []


def _store(hours: list[tuple[int, str, str]], status: StoreStatus = StoreStatus.OPEN) -> Store:
    return Store(
        status=status, timezone="Asia/Shanghai", hours=[{"weekday": d, "opens": o, "closes": c} for d, o, c in hours]
    )


def test_next_opening_in_the_stores_time_zone():
    monday = date(2026, 11, 23)  # a Monday
    weekdays = _store([(d, "08:00", "22:00") for d in range(5)])

    def at(day: date, hhmm: str) -> datetime:
        h, m = (int(x) for x in hhmm.split(":"))
        return datetime(day.year, day.month, day.day, h, m, tzinfo=SHANGHAI)

    assert next_opening(weekdays, at(monday, "03:00")) == at(monday, "08:00")
    assert next_opening(weekdays, at(monday, "12:00")) == at(monday, "12:00")  # open: now
    assert next_opening(weekdays, at(monday, "22:00")) == at(monday + timedelta(days=1), "08:00")
    # Friday night: closed all weekend, so Monday morning; the answer is the same instant whatever zone asks.
    friday_night = at(monday + timedelta(days=4), "23:00").astimezone(UTC)
    assert next_opening(weekdays, friday_night) == at(monday + timedelta(days=7), "08:00")
    late = _store([(0, "22:00", "02:00")])
    assert next_opening(late, at(monday + timedelta(days=1), "01:00")) == at(monday + timedelta(days=1), "01:00")
    assert next_opening(late, at(monday + timedelta(days=1), "03:00")) == at(monday + timedelta(days=7), "22:00")
    assert next_opening(_store([(d, "00:00", "00:00") for d in range(7)]), at(monday, "03:00")) == at(monday, "03:00")
    assert next_opening(_store([]), at(monday, "03:00")) is None
    assert next_opening(_store([(0, "08:00", "22:00")], StoreStatus.CLOSED), at(monday, "03:00")) is None


async def test_a_closed_store_takes_no_delivery_and_a_delivery_takes_no_pickup_time(api, state, chain):
    menu = await given_menu(state, chain)
    local = utcnow().astimezone(SHANGHAI)
    await _hours(
        state,
        menu.store,
        (local + timedelta(hours=2)).strftime("%H:%M"),
        (local + timedelta(hours=3)).strftime("%H:%M"),
    )
    delivery = {
        "contactName": "王",
        "phone": "13800138111",
        "address": "人民广场 1 号",
        "lat": 31.2335,
        "lng": 121.4737,
    }
    order = _order(menu, "deliver", None)
    order["in"] |= {"fulfilment": "DELIVERY", "delivery": delivery}
    closed = await api.gql(PLACE, order, as_=MEMBER)
    assert [(e["code"], e["field"]) for e in closed["data"]["placeOrder"]["errors"]] == [("STORE_CLOSED", "storeId")]
    order["in"] |= {"idempotencyKey": "deliver-2", "pickupAt": (utcnow() + timedelta(hours=2, minutes=10)).isoformat()}
    timed = await api.gql(PLACE, order, as_=MEMBER)
    assert [(e["code"], e["field"]) for e in timed["data"]["placeOrder"]["errors"]] == [("INVALID_INPUT", "pickupAt")]
