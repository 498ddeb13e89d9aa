"""Loaders for messages, their templates and HQ's sends: HQ with message.manage sees them all; a member only the
messages that reached them."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, false, select

from models import Message, MessageSend, MessageStatus, MessageTemplate
from resolvers.loaders.base import ScopedLoader, by_key
from services.access.permissions import Perm
from services.messaging.admin import Effect, effects


class MessageTemplateByIdLoader(ScopedLoader):
    async def batch_load_fn(self, keys: Sequence[int]) -> list[MessageTemplate | None]:
        if not (self.viewer.is_hq and self.viewer.can(Perm.MESSAGE_MANAGE)):
            return [None for _ in keys]
        rows = await self._rows(select(MessageTemplate).where(MessageTemplate.id.in_(keys)))
        return by_key(keys, rows, lambda t: t.id)


class MessageSendByIdLoader(ScopedLoader):
    async def batch_load_fn(self, keys: Sequence[int]) -> list[MessageSend | None]:
        if not (self.viewer.is_hq and self.viewer.can(Perm.MESSAGE_MANAGE)):
            return [None for _ in keys]
        return by_key(keys, await self._rows(select(MessageSend).where(MessageSend.id.in_(keys))), lambda s: s.id)


class MessageByIdLoader(ScopedLoader):
    async def batch_load_fn(self, keys: Sequence[int]) -> list[Message | None]:
        seen: ColumnElement[bool]
        if self.viewer.is_hq and self.viewer.can(Perm.MESSAGE_MANAGE):
            seen = Message.id.in_(keys)
        elif self.viewer.member_id is not None:
            seen = (Message.member_id == self.viewer.member_id) & (Message.status == MessageStatus.SENT)
        else:
            seen = false()
        return by_key(keys, await self._rows(select(Message).where(Message.id.in_(keys), seen)), lambda m: m.id)


class MessageSendEffectLoader(ScopedLoader):
    """A send's effect by (send id, days): a message log showing each message's send and its effect costs two
    statements, whatever the number of sends."""

    async def batch_load_fn(self, keys: Sequence[tuple[int, int]]) -> list[Effect]:
        async with self.sessionmaker() as session:
            found = await effects(session, self.viewer, keys)
        return [found[k] for k in keys]
