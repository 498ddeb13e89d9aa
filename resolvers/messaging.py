"""Messages: the viewer and arguments in, service calls out. What schema/ builds calls from is re-exported."""

from __future__ import annotations

from collections.abc import Mapping

from models import Message, MessageConsent, MessageSend, MessageStatus, MessageTemplate, MessageTopic
from resolvers.context import Context
from services.messaging import admin
from services.messaging.admin import Audience as Audience
from services.messaging.admin import Effect as Effect
from services.platform.pagination import Page


async def set_consent(ctx: Context, topic: MessageTopic, granted: bool) -> list[MessageConsent]:
    return await admin.set_consent(ctx.session, ctx.viewer, topic, granted)


async def my_consents(ctx: Context) -> list[MessageConsent]:
    async with ctx.read() as session:
        return await admin.my_consents(session, ctx.viewer)


async def my_messages(ctx: Context, *, first: int | None, after: str | None) -> Page[Message]:
    async with ctx.read() as session:
        return await admin.my_messages(session, ctx.viewer, first=first, after=after)


async def create_template(
    ctx: Context, *, key: str, topic: MessageTopic, title: str, body: str, variables: list[str]
) -> MessageTemplate:
    return await admin.create_template(
        ctx.session, ctx.viewer, key=key, topic=topic, title=title, body=body, variables=variables
    )


async def update_template(
    ctx: Context, template_id: int, *, title: str, body: str, variables: list[str]
) -> MessageTemplate:
    return await admin.update_template(
        ctx.session, ctx.viewer, template_id, title=title, body=body, variables=variables
    )


async def templates(ctx: Context, *, first: int | None, after: str | None) -> Page[MessageTemplate]:
    async with ctx.read() as session:
        return await admin.templates(session, ctx.viewer, first=first, after=after)


async def send_message(
    ctx: Context, template_id: int, variables: Mapping[str, str], audience: Audience, key: str
) -> MessageSend:
    return await admin.send_message(
        ctx.session, ctx.viewer, template_id=template_id, variables=variables, audience=audience, key=key
    )


async def message_log(
    ctx: Context,
    *,
    status: MessageStatus | None,
    send_id: int | None,
    member_id: int | None,
    first: int | None,
    after: str | None,
) -> Page[Message]:
    async with ctx.read() as session:
        return await admin.message_log(
            session, ctx.viewer, status=status, send_id=send_id, member_id=member_id, first=first, after=after
        )


async def message_send(ctx: Context, send_id: int) -> MessageSend | None:
    async with ctx.read() as session:
        return await admin.message_send(session, ctx.viewer, send_id)


async def send_effect(ctx: Context, send_id: int, days: int) -> Effect:
    admin.check_effect_days(days)
    effect: Effect = await ctx.loaders.message_send_effect.load((send_id, days))
    return effect
