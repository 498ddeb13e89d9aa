"""Every mutation runs in one transaction with its audit entry; a refusal changes nothing but the log."""

from __future__ import annotations

import dataclasses
import enum
from datetime import date
from typing import Any

from strawberry import relay
from strawberry.extensions.field_extension import AsyncExtensionResolver, FieldExtension
from strawberry.types import Info
from strawberry.types.base import has_object_definition
from strawberry.types.field import StrawberryField
from strawberry.types.unset import UnsetType
from strawberry.utils.str_converters import to_camel_case

from resolvers import DomainError
from resolvers import audit as audit_resolvers
from resolvers.audit import Plan
from resolvers.context import Context
from schema.core.common import UserError
from schema.core.personal import plan_for


def jsonable(value: Any) -> Any:
    """An input object as plain JSON with camelCase keys, leaving out fields not given."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            to_camel_case(f.name): jsonable(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if not isinstance(getattr(value, f.name), UnsetType) and getattr(value, f.name) is not None
        }
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, date):  # and datetime
        return value.isoformat()
    if isinstance(value, relay.GlobalID):
        return str(value)
    return value


def _node_ids(value: Any) -> list[str]:
    if isinstance(value, relay.Node) and has_object_definition(value):
        name = value.__strawberry_definition__.name
        return [str(relay.GlobalID(type_name=name, node_id=str(value.id)))]  # type: ignore[attr-defined]
    return []


class MutationTransaction(FieldExtension):
    """Open the mutation's transaction, write its audit entry, commit both or neither (resolvers/audit.py)."""

    def __init__(self) -> None:
        self.payload_type: Any = None
        self.plan: Plan = {}

    def apply(self, field: StrawberryField) -> None:
        self.payload_type = field.type
        # What the input's fields hold, as their input types declare it (schema/core/personal.py).
        self.plan = next((plan_for(a.type) for a in field.arguments if a.python_name == "input"), {})

    def _refusal(self, error: DomainError) -> Any:
        user_error = UserError(code=error.code, message=error.message, field=error.field)
        return self.payload_type(errors=[user_error], **error.details)

    async def resolve_async(
        self, next_: AsyncExtensionResolver, source: Any, info: Info[Context, None], **kwargs: Any
    ) -> Any:
        def targets(result: Any) -> list[str]:
            return [gid for f in dataclasses.fields(result) for gid in _node_ids(getattr(result, f.name))]

        return await audit_resolvers.in_mutation(
            info.context,
            info.field_name,
            jsonable(kwargs.get("input")),
            self.plan,
            lambda: next_(source, info, **kwargs),
            targets,
            self._refusal,
        )
