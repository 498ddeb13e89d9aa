"""Givens for the message tests: members with chosen consents, the chain's message settings, a sending pass."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from models import Member, Message, MessageConsent, MessageTopic, utcnow
from resolvers.state import AppState
from services.messaging.providers import SandboxMessageProvider
from services.messaging.sending import send_due
from services.org.settings import update_settings
from services.platform.db import write_transaction


async def member_agreeing_to(state: AppState, *topics: MessageTopic, name: str = "顾客", **fields: Any) -> int:
    """A member who said yes to `topics` and no to every other topic."""
    async with write_transaction(state.sessionmaker) as session:
        member = Member(name=name, level_id=1, **fields)
        session.add(member)
        await session.flush()
        for topic in MessageTopic:
            session.add(MessageConsent(member_id=member.id, topic=topic, granted=topic in topics, updated_at=utcnow()))
        return member.id


async def message_settings(state: AppState, *, cap: int = 50, quiet: tuple[int, int] = (0, 0)) -> None:
    async with write_transaction(state.sessionmaker) as session:
        await update_settings(session, message_cap_per_day=cap, quiet_hours_start=quiet[0], quiet_hours_end=quiet[1])


async def send_pass(state: AppState, provider: SandboxMessageProvider, now: datetime | None = None) -> int:
    """What the running app's job does on each pass."""
    return await send_due(state.sessionmaker, provider, now)


async def messages_of(state: AppState, member_id: int) -> list[Message]:
    async with state.sessionmaker() as session:
        stmt = select(Message).where(Message.member_id == member_id).order_by(Message.id)
        return list((await session.scalars(stmt)).all())
