"""Message types: a member's consent per topic, HQ's templates and sends, each message with its status."""

from __future__ import annotations

from datetime import datetime
from typing import Self

import strawberry
from strawberry import relay

from models import Message as MessageModel
from models import MessageConsent as MessageConsentModel
from models import MessageSend as MessageSendModel
from models import MessageStatus, MessageTopic
from models import MessageTemplate as MessageTemplateModel
from resolvers import messaging as messaging_resolvers
from resolvers.context import Context
from schema.core.common import UserError
from schema.core.node import Loaded
from schema.core.personal import not_personal
from schema.members.types import Member

strawberry.enum(MessageTopic, name="MessageTopic", description="What a message is about; members consent per topic")
strawberry.enum(MessageStatus, name="MessageStatus")


@strawberry.type
class MessageConsent:
    topic: MessageTopic
    granted: bool

    @classmethod
    def from_model(cls, m: MessageConsentModel) -> Self:
        return cls(topic=m.topic, granted=m.granted)


@strawberry.type
class MessageVariable:
    name: str
    value: str


def _variables(values: dict[str, str]) -> list[MessageVariable]:
    return [MessageVariable(name=k, value=v) for k, v in sorted(values.items())]


@strawberry.type
class MessageTemplate(Loaded, relay.Node):
    id: relay.NodeID[int]
    key: str
    topic: MessageTopic
    title: str
    body: str = strawberry.field(description="With {name} placeholders for the variables")
    variables: list[str]
    updated_at: datetime

    @classmethod
    def from_model(cls, m: MessageTemplateModel) -> Self:
        return cls(
            id=m.id,
            key=m.key,
            topic=m.topic,
            title=m.title,
            body=m.body,
            variables=list(m.variables),
            updated_at=m.updated_at,
        )

    @classmethod
    async def load(cls, ctx: Context, pk: int) -> Self | None:
        m = await ctx.loaders.message_template_by_id.load(pk)
        return cls.from_model(m) if m else None


@strawberry.type
class MessageSendEffect:
    queued: int
    sent: int
    suppressed: int
    failed: int
    orders: int = strawberry.field(description="Paid orders its recipients placed within `days` after their message")
    days: int


@strawberry.type
class MessageSend(Loaded, relay.Node):
    id: relay.NodeID[int]
    created_at: datetime
    variables: list[MessageVariable]
    template_id: strawberry.Private[int]

    @classmethod
    def from_model(cls, m: MessageSendModel) -> Self:
        return cls(id=m.id, created_at=m.created_at, variables=_variables(m.variables), template_id=m.template_id)

    @classmethod
    async def load(cls, ctx: Context, pk: int) -> Self | None:
        m = await ctx.loaders.message_send_by_id.load(pk)
        return cls.from_model(m) if m else None

    @strawberry.field
    async def template(self, info: strawberry.Info[Context, None]) -> MessageTemplate | None:
        return await MessageTemplate.load(info.context, self.template_id)

    @strawberry.field(description="Campaign effect: messages by outcome and the orders that followed within `days`")
    async def effect(self, info: strawberry.Info[Context, None], days: int = 7) -> MessageSendEffect:
        e = await messaging_resolvers.send_effect(info.context, self.id, days)
        return MessageSendEffect(
            queued=e.queued, sent=e.sent, suppressed=e.suppressed, failed=e.failed, orders=e.orders, days=e.days
        )


@strawberry.type
class Message(Loaded, relay.Node):
    id: relay.NodeID[int]
    topic: MessageTopic
    template_key: str
    status: MessageStatus
    attempts: int
    variables: list[MessageVariable]
    title: str | None
    text: str | None
    due_at: datetime
    sent_at: datetime | None
    last_error: str | None
    created_at: datetime
    member_id: strawberry.Private[int]
    send_id: strawberry.Private[int | None]

    @classmethod
    def from_model(cls, m: MessageModel) -> Self:
        return cls(
            id=m.id,
            topic=m.topic,
            template_key=m.template_key,
            status=m.status,
            attempts=m.attempts,
            variables=_variables(m.variables),
            title=m.title,
            text=m.text,
            due_at=m.due_at,
            sent_at=m.sent_at,
            last_error=m.last_error,
            created_at=m.created_at,
            member_id=m.member_id,
            send_id=m.send_id,
        )

    @classmethod
    async def load(cls, ctx: Context, pk: int) -> Self | None:
        m = await ctx.loaders.message_by_id.load(pk)
        return cls.from_model(m) if m else None

    @strawberry.field(description="The member it is for (as the viewer may see members)")
    async def member(self, info: strawberry.Info[Context, None]) -> Member | None:
        return await Member.load(info.context, self.member_id)

    @strawberry.field(description="HQ's send it came from; none for triggered messages")
    async def send(self, info: strawberry.Info[Context, None]) -> MessageSend | None:
        return None if self.send_id is None else await MessageSend.load(info.context, self.send_id)


@strawberry.input
class SetMessageConsentInput:
    topic: MessageTopic
    granted: bool


@strawberry.type
class MessageConsentPayload:
    errors: list[UserError] = strawberry.field(default_factory=list)
    consents: list[MessageConsent] = strawberry.field(default_factory=list)


@strawberry.input
class CreateMessageTemplateInput:
    key: str = not_personal(description="Unique; a trigger's key (order.ready, ...) rewords that trigger's message")
    topic: MessageTopic
    title: str = not_personal()
    body: str = not_personal(description="{name} placeholders, each declared in variables")
    variables: list[str] = not_personal()


@strawberry.input
class UpdateMessageTemplateInput:
    id: strawberry.ID
    title: str = not_personal()
    body: str = not_personal()
    variables: list[str] = not_personal()


@strawberry.type
class MessageTemplatePayload:
    errors: list[UserError] = strawberry.field(default_factory=list)
    template: MessageTemplate | None = None


@strawberry.input
class MessageVariableInput:
    name: str = not_personal()
    value: str = not_personal()


@strawberry.input
class SendMessageInput:
    template_id: strawberry.ID
    idempotency_key: str = strawberry.field(description="The same key again sends nothing more")
    variables: list[MessageVariableInput] = strawberry.field(default_factory=list)
    segment: str | None = None
    tag_id: strawberry.ID | None = None
    level_id: strawberry.ID | None = None
    member_ids: list[strawberry.ID] | None = None


@strawberry.type
class SendMessagePayload:
    errors: list[UserError] = strawberry.field(default_factory=list)
    send: MessageSend | None = None


@strawberry.input
class MessageFilterInput:
    status: MessageStatus | None = None
    send_id: strawberry.ID | None = None
    member_id: strawberry.ID | None = None
