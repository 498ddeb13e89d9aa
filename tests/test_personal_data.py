"""Personal data (issue 13, item 9): declared once, redacted from the audit log and logs by that declaration,
erased when a member deletes their account, and all of it in the member's export."""

from __future__ import annotations

import logging
import re

from graphql import GraphQLInputObjectType
from strawberry.schema.schema_converter import GraphQLCoreConverter

from schema import members_api as members
from schema import schema
from schema.personal import Sensitivity, declared
from services.audit import hidden_values, redact
from tests.conftest import gid
from tests.factories import list_in_store, make_library

# A field whose name says it could hold personal data (or a secret) must say whether it does.
SUGGESTS_PERSONAL = re.compile(
    r"phone|mobile|name|contact|address|birth|e?mail|idcard|idnumber|passport|password|passcode|code|token|secret"
    r"|otp|gender|sex|^lat$|^lng$|latitude|longitude|location|subject|openid|unionid|signature|note|remark|reason"
    r"|comment|ip$",
    re.IGNORECASE,
)


def _input_fields() -> list[tuple[str, str, object]]:
    found = []
    for gql_type in schema._schema.type_map.values():
        if isinstance(gql_type, GraphQLInputObjectType) and not gql_type.name.startswith("__"):
            for name, gql_field in gql_type.fields.items():
                found.append((gql_type.name, name, gql_field.extensions[GraphQLCoreConverter.DEFINITION_BACKREF]))
    return found


def test_every_input_field_that_may_hold_personal_data_declares_whether_it_does():
    fields = _input_fields()
    assert len({t for t, _, _ in fields}) > 50  # the walk sees the whole schema, not a part of it
    undeclared = [f"{t}.{n}" for t, n, field in fields if SUGGESTS_PERSONAL.search(n) and declared(field) is None]
    assert undeclared == [], "declare these personal(...) or not_personal() in their input types"


# --- redaction in the audit log and the logs -------------------------------------------------------------------

CONTACT = {"contactName": "李雷", "phone": "13912345678", "address": "南京西路1700号 12楼", "lat": 31.2260,
           "lng": 121.4480}  # fmt: skip
PROFILE_NAME, BIRTHDAY = "韩梅梅", "1991-07-08"
PLACE = """mutation($s: ID!, $l: [CartLineInput!]!, $key: String!, $d: DeliveryAddressInput, $sv: Int) {
  placeOrder(input: {storeId: $s, lines: $l, idempotencyKey: $key, fulfilment: DELIVERY, delivery: $d,
                     useStoredValue: $sv}) {
    errors { code field message } order { id status payable } } }"""
PLACE_PICKUP = """mutation($s: ID!, $l: [CartLineInput!]!, $key: String!, $sv: Int) {
  placeOrder(input: {storeId: $s, lines: $l, idempotencyKey: $key, useStoredValue: $sv}) {
    errors { code field message } order { id status payable } } }"""
PROFILE = """mutation($n: String, $b: Date) { updateMyProfile(input: {name: $n, birthday: $b, gender: FEMALE}) {
  errors { code } member { id name } } }"""
AUDIT = """query($op: String) { auditLogs(first: 100, filter: {operation: $op}) {
  edges { node { operation outcome input targetIds } } } }"""
DELETE = "mutation { deleteMyAccount { errors { code message } deleted } }"


async def _sku_in(state, store_id: int, price: int = 1500, on_hand: int = 20) -> int:
    library = await make_library(state, products=1, skus_per_product=1, price=price)
    await list_in_store(state, store_id, library.sku_ids, on_hand=on_hand)
    return library.sku_ids[0]


def _lines(sku: int, qty: int = 1) -> list[dict[str, object]]:
    return [{"skuId": gid("Sku", sku), "quantity": qty}]


async def _audit(api, operation: str) -> list[dict]:
    body = await api.gql(AUDIT, {"op": operation}, as_="hq.admin")
    return [e["node"] for e in body["data"]["auditLogs"]["edges"]]


def _everything_logged(caplog) -> str:
    return caplog.text + "\n".join(r.getMessage() + str(r.exc_info or "") + (r.exc_text or "") for r in caplog.records)


async def test_orders_and_profiles_leave_no_personal_values_in_the_audit_log_or_the_logs(
    api, state, chain, caplog, monkeypatch
):
    caplog.set_level(logging.DEBUG)
    sh01 = chain.stores["SH01"]
    sku = await _sku_in(state, sh01)
    token = await api.token("member:audited")
    placed = await api.post(PLACE, {"s": gid("Store", sh01), "l": _lines(sku), "key": "a-1", "d": CONTACT}, token)
    assert placed.json()["data"]["placeOrder"]["errors"] == []
    changed = await api.post(PROFILE, {"n": PROFILE_NAME, "b": BIRTHDAY}, token)
    assert changed.json()["data"]["updateMyProfile"]["member"]["name"] == PROFILE_NAME
    refused = await api.post(PLACE, {"s": gid("Store", sh01), "l": _lines(sku, 999), "key": "a-2", "d": CONTACT}, token)
    assert refused.json()["data"]["placeOrder"]["errors"][0]["code"] == "OUT_OF_STOCK"

    # An unexpected failure whose text carries the input (as a database error's parameters would) is logged in full,
    # but without the request's personal values.
    async def broken(session, viewer, changes):
        raise RuntimeError(f"cannot store name={changes.name!r} birthday={changes.birthday}")

    monkeypatch.setattr(members.members, "update_profile", broken)
    failed = (await api.post(PROFILE, {"n": PROFILE_NAME, "b": BIRTHDAY}, token)).json()
    assert failed["errors"][0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert "unexpected error" in caplog.text and "RuntimeError: cannot store name=" in caplog.text

    orders_logged = await _audit(api, "placeOrder")
    profiles_logged = await _audit(api, "updateMyProfile")
    assert sorted(e["outcome"] for e in orders_logged) == ["OK", "REFUSED"]
    assert sorted(e["outcome"] for e in profiles_logged) == ["FAILED", "OK"]
    for entry in orders_logged:
        assert entry["input"]["delivery"] == {"contactName": "[REDACTED]", "phone": "139****5678",
                                              "address": "[REDACTED]", "lat": "[REDACTED]", "lng": "[REDACTED]"}
        assert entry["input"]["idempotencyKey"] in {"a-1", "a-2"}  # what is not personal stays readable
    for entry in profiles_logged:
        assert entry["input"] == {"name": "[REDACTED]", "birthday": "[REDACTED]", "gender": "[REDACTED]"}
    recorded = str(orders_logged + profiles_logged)
    logged = _everything_logged(caplog)
    for value in (CONTACT["contactName"], CONTACT["phone"], CONTACT["address"], PROFILE_NAME, BIRTHDAY):
        assert value not in recorded, value
        assert value not in logged, value
    manager = await api.gql(AUDIT, {"op": "placeOrder"}, as_="sh01.manager")
    assert CONTACT["address"] not in str(manager) and "[REDACTED]" in str(manager)


def test_redaction_follows_the_declaration_into_nested_and_listed_inputs():
    plan = {"delivery": {"phone": Sensitivity.PHONE, "address": Sensitivity.PERSONAL},
            "people": {"name": Sensitivity.PERSONAL}, "code": Sensitivity.SECRET}  # fmt: skip
    given = {"delivery": {"phone": "13912345678", "address": "a street"}, "code": "s3cret", "note": "kept",
             "people": [{"name": "Li"}, {"name": None}]}  # fmt: skip
    assert redact(given, plan) == {"delivery": {"phone": "139****5678", "address": "[REDACTED]"}, "note": "kept",
                                   "code": "[REDACTED]", "people": [{"name": "[REDACTED]"}, {"name": None}]}  # fmt: skip
    assert hidden_values(given, plan) == {"13912345678", "a street", "s3cret", "Li"}
