"""Personal data (issue 13, item 9): declared once, redacted from the audit log and logs by that declaration,
erased when a member deletes their account, and all of it in the member's export."""

from __future__ import annotations

import re

from graphql import GraphQLInputObjectType
from strawberry.schema.schema_converter import GraphQLCoreConverter

from schema import schema
from schema.personal import declared

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
