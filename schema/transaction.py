"""Every mutation runs in one transaction with its audit entry; a refusal changes nothing but the log."""

from __future__ import annotations

import dataclasses
import enum
import logging
from datetime import date
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from strawberry import relay
from strawberry.extensions.field_extension import AsyncExtensionResolver, FieldExtension
from strawberry.types import Info
from strawberry.types.base import has_object_definition
from strawberry.types.field import StrawberryField
from strawberry.types.unset import UnsetType
from strawberry.utils.str_converters import to_camel_case

from models import AuditOutcome
from resolvers.context import Context, tracking
from schema.common import UserError
from schema.personal import plan_for
from services import logs
from services.audit import AuditEntry, Plan, hidden_values, record, redact
from services.auth import PersistentRefusal
from services.db import begin_write
from services.errors import AccessDenied, DomainError
from services.events import Event, take_pending

log = logging.getLogger("chain.mutation")


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
    """Open the mutation's transaction, write its audit entry, commit both or neither."""

    def __init__(self) -> None:
        self.payload_type: Any = None
        self.plan: Plan = {}

    def apply(self, field: StrawberryField) -> None:
        self.payload_type = field.type
        # What the input's fields hold, as their input types declare it (schema/personal.py).
        self.plan = next((plan_for(a.type) for a in field.arguments if a.python_name == "input"), {})

    def _entry(
        self, info: Info[Context, None], input_data: Any, outcome: AuditOutcome, code: str | None, targets: list[str]
    ) -> AuditEntry:
        ctx = info.context
        viewer = ctx.viewer
        # Where the rules it ran found it acted (a store whose scope it passed, the counter's, a store it created),
        # else the viewer's own store.
        acting = ctx.acting
        store_id = acting.store_id if acting.store_id is not None else viewer.store_id
        input_ids = [v for k, v in (input_data or {}).items() if (k == "id" or k.endswith("Id")) and isinstance(v, str)]
        return AuditEntry(
            request_id=ctx.request_id,
            actor_kind=viewer.kind.value,
            operation=info.field_name,
            outcome=outcome,
            staff_id=acting.staff_id if acting.staff_id is not None else viewer.staff_id,
            member_id=viewer.member_id,
            role_code=viewer.role_code,
            store_id=store_id,
            target_ids=tuple(dict.fromkeys([*input_ids, *targets, *ctx.audit_targets])),
            input=redact(input_data, self.plan) if input_data is not None else None,
            error_code=code,
            ip=ctx.ip,
        )

    async def _record_apart(self, info: Info[Context, None], entry: AuditEntry) -> None:
        """Record a refused or failed mutation in a transaction of its own, after the rollback."""
        try:
            async with info.context.app.sessionmaker() as session, session.begin():
                record(session, entry)
        except Exception:
            log.exception("could not write the audit entry for %s", entry.operation)

    async def _publish(self, info: Info[Context, None], events: list[Event]) -> None:
        """After the commit: a lost event must not turn a committed change into an error."""
        if not events:
            return
        try:
            await info.context.app.broker.publish(events)
        except Exception:
            log.exception("could not publish %d events after %s", len(events), info.field_name)

    def _refusal(self, error: DomainError) -> Any:
        user_error = UserError(code=error.code, message=error.message, field=error.field)
        return self.payload_type(errors=[user_error], **error.details)

    async def resolve_async(
        self, next_: AsyncExtensionResolver, source: Any, info: Info[Context, None], **kwargs: Any
    ) -> Any:
        ctx = info.context
        input_data = jsonable(kwargs.get("input"))
        logs.hide(hidden_values(input_data, self.plan))  # whatever this request logs from here on leaves them out
        session = ctx.app.sessionmaker()
        ctx.tx, ctx.audit_targets = session, []
        with tracking() as ctx.acting:
            return await self._run(next_, source, info, session, input_data, **kwargs)

    async def _run(
        self, next_: AsyncExtensionResolver, source: Any, info: Info[Context, None], session: AsyncSession,
        input_data: Any, **kwargs: Any,
    ) -> Any:  # fmt: skip
        ctx = info.context
        try:
            async with session.begin():
                await begin_write(session)
                try:
                    result = await next_(source, info, **kwargs)
                except PersistentRefusal as exc:
                    # The refusal itself must stick (a reused refresh token revokes its family), and so must what
                    # it announces (the revoked session's websockets close).
                    record(session, self._entry(info, input_data, AuditOutcome.REFUSED, exc.code, []))
                    result = self._refusal(exc)
                else:
                    targets = [gid for f in dataclasses.fields(result) for gid in _node_ids(getattr(result, f.name))]
                    record(session, self._entry(info, input_data, AuditOutcome.OK, None, targets))
            await self._publish(info, take_pending(session))
            return result
        except DomainError as exc:
            await self._record_apart(info, self._entry(info, input_data, AuditOutcome.REFUSED, exc.code, []))
            return self._refusal(exc)
        except AccessDenied as exc:
            outcome = AuditOutcome.UNAUTHENTICATED if exc.code == "UNAUTHENTICATED" else AuditOutcome.FORBIDDEN
            await self._record_apart(info, self._entry(info, input_data, outcome, exc.code, []))
            raise
        except Exception:
            await self._record_apart(info, self._entry(info, input_data, AuditOutcome.FAILED, "INTERNAL", []))
            raise
        finally:
            ctx.tx = None
            await session.close()
