"""Message root fields: members' consent and inbox (mini-program), HQ's templates, sends and message log."""

from __future__ import annotations

import strawberry

from models import MessageStatus
from resolvers import Perm
from resolvers import messaging as messaging_resolvers
from resolvers.context import Context
from resolvers.messaging import Audience
from schema.core.common import Connection, decode_id, decode_optional_id
from schema.core.permissions import IsMember, only, requires
from schema.core.transaction import MutationTransaction
from schema.messaging.types import (
    CreateMessageTemplateInput,
    Message,
    MessageConsent,
    MessageConsentPayload,
    MessageFilterInput,
    MessageSend,
    MessageTemplate,
    MessageTemplatePayload,
    SendMessageInput,
    SendMessagePayload,
    SetMessageConsentInput,
    UpdateMessageTemplateInput,
)


@strawberry.type
class MessagingQuery:
    @strawberry.field(extensions=only(IsMember()), description="The member's answer per topic (no answer is no)")
    async def my_message_consents(self, info: strawberry.Info[Context, None]) -> list[MessageConsent]:
        return [MessageConsent.from_model(c) for c in await messaging_resolvers.my_consents(info.context)]

    @strawberry.field(extensions=only(IsMember()), description="Messages that reached the member, newest first")
    async def my_messages(
        self, info: strawberry.Info[Context, None], first: int | None = 20, after: str | None = None
    ) -> Connection[Message]:
        page = await messaging_resolvers.my_messages(info.context, first=first, after=after)
        return Connection[Message].of(page, Message.from_model)

    @strawberry.field(extensions=requires(Perm.MESSAGE_MANAGE), description="HQ: message templates")
    async def message_templates(
        self, info: strawberry.Info[Context, None], first: int | None = 20, after: str | None = None
    ) -> Connection[MessageTemplate]:
        page = await messaging_resolvers.templates(info.context, first=first, after=after)
        return Connection[MessageTemplate].of(page, MessageTemplate.from_model)

    @strawberry.field(extensions=requires(Perm.MESSAGE_MANAGE), description="HQ: every message, newest first")
    async def messages(
        self,
        info: strawberry.Info[Context, None],
        filter: MessageFilterInput | None = None,
        first: int | None = 20,
        after: str | None = None,
    ) -> Connection[Message]:
        f = filter or MessageFilterInput()
        page = await messaging_resolvers.message_log(
            info.context,
            status=MessageStatus(f.status) if f.status else None,
            send_id=decode_optional_id(f.send_id, "MessageSend", "sendId"),
            member_id=decode_optional_id(f.member_id, "Member", "memberId"),
            first=first,
            after=after,
        )
        return Connection[Message].of(page, Message.from_model)

    @strawberry.field(extensions=requires(Perm.MESSAGE_MANAGE), description="HQ: one send, with its effect")
    async def message_send(self, info: strawberry.Info[Context, None], id: strawberry.ID) -> MessageSend | None:
        send = await messaging_resolvers.message_send(info.context, decode_id(id, "MessageSend"))
        return MessageSend.from_model(send) if send else None


@strawberry.type
class MessagingMutation:
    @strawberry.mutation(
        extensions=[*only(IsMember()), MutationTransaction()], description="Agree to (or refuse) a topic's messages"
    )
    async def set_message_consent(
        self, info: strawberry.Info[Context, None], input: SetMessageConsentInput
    ) -> MessageConsentPayload:
        consents = await messaging_resolvers.set_consent(info.context, input.topic, input.granted)
        return MessageConsentPayload(consents=[MessageConsent.from_model(c) for c in consents])

    @strawberry.mutation(extensions=[*requires(Perm.MESSAGE_MANAGE), MutationTransaction()])
    async def create_message_template(
        self, info: strawberry.Info[Context, None], input: CreateMessageTemplateInput
    ) -> MessageTemplatePayload:
        template = await messaging_resolvers.create_template(
            info.context,
            key=input.key,
            topic=input.topic,
            title=input.title,
            body=input.body,
            variables=input.variables,
        )
        return MessageTemplatePayload(template=MessageTemplate.from_model(template))

    @strawberry.mutation(extensions=[*requires(Perm.MESSAGE_MANAGE), MutationTransaction()])
    async def update_message_template(
        self, info: strawberry.Info[Context, None], input: UpdateMessageTemplateInput
    ) -> MessageTemplatePayload:
        template = await messaging_resolvers.update_template(
            info.context,
            decode_id(input.id, "MessageTemplate"),
            title=input.title,
            body=input.body,
            variables=input.variables,
        )
        return MessageTemplatePayload(template=MessageTemplate.from_model(template))

    @strawberry.mutation(
        extensions=[*requires(Perm.MESSAGE_MANAGE), MutationTransaction()],
        description="HQ: a template to a segment, a tag, a level or listed members (only those who agreed get it)",
    )
    async def send_message(self, info: strawberry.Info[Context, None], input: SendMessageInput) -> SendMessagePayload:
        audience = Audience(
            segment=input.segment,
            tag_id=decode_optional_id(input.tag_id, "MemberTag", "tagId"),
            level_id=decode_optional_id(input.level_id, "MemberLevel", "levelId"),
            member_ids=None
            if input.member_ids is None
            else tuple(decode_id(v, "Member", f"memberIds[{i}]") for i, v in enumerate(input.member_ids)),
        )
        variables = {v.name: v.value for v in input.variables}
        send = await messaging_resolvers.send_message(
            info.context,
            decode_id(input.template_id, "MessageTemplate", "templateId"),
            variables,
            audience,
            input.idempotency_key,
        )
        return SendMessagePayload(send=MessageSend.from_model(send))
