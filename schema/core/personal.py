"""Personal data in GraphQL inputs: each input field that could hold it says so, once, where it is declared.

    contact_name: str = personal()
    phone: str = personal(Sensitivity.PHONE)
    password: str = personal(Sensitivity.SECRET)
    name: str = not_personal()  # a store's name

The audit log keeps a mutation's input redacted by these declarations, and the request's logs leave the
hidden values out (schema/core/transaction.py). tests/access/test_personal_data.py walks every input type of the schema
and fails on a field whose name suggests personal data but that declares nothing.
"""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.types.base import StrawberryContainer, has_object_definition
from strawberry.types.field import StrawberryField
from strawberry.types.lazy_type import LazyType
from strawberry.utils.str_converters import to_camel_case

from resolvers.audit import PII, Plan, Sensitivity

__all__ = ["Sensitivity", "declared", "not_personal", "personal", "plan_for"]


def personal(kind: Sensitivity = Sensitivity.PERSONAL, **field: Any) -> Any:
    """An input field holding personal data (or a phone, or a secret): kept out of the audit log and logs."""
    return strawberry.field(metadata={PII: kind}, **field)


def not_personal(**field: Any) -> Any:
    """An input field whose name suggests personal data but which holds none (a store's address, a SKU's name)."""
    return strawberry.field(metadata={PII: Sensitivity.NOT_PERSONAL}, **field)


def declared(field: StrawberryField) -> Sensitivity | None:
    kind = field.metadata.get(PII) if field.metadata else None
    return Sensitivity(kind) if kind is not None else None


def _inner(type_: Any) -> Any:
    while isinstance(type_, StrawberryContainer | LazyType):  # Optional, List, a forward reference
        type_ = type_.resolve_type() if isinstance(type_, LazyType) else type_.of_type
    return type_


def plan_for(type_: Any) -> Plan:
    """What each camelCase key of an input type's JSON holds, nested inputs included (as the audit records it)."""
    inner = _inner(type_)
    if not has_object_definition(inner):
        return {}
    plan: dict[str, Any] = {}
    for field in inner.__strawberry_definition__.fields:
        key = to_camel_case(field.python_name)
        kind = declared(field)
        nested = _inner(field.type)
        if kind is not None:
            plan[key] = kind
        elif has_object_definition(nested) and nested is not inner:
            plan[key] = plan_for(nested)
    return plan
