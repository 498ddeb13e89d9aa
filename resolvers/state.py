"""What the app holds for its whole life: settings, engine, sessions, keys, providers."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any, TypedDict

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.access.auth import ACCESS_CHANGED, SESSION_REVOKED
from services.access.identity import IdentityProvider, LocalIdentityProvider, WeChatIdentityProvider
from services.access.keys import load_keys
from services.access.limits import Limits as Limits
from services.access.pii import PiiCipher
from services.access.security import Security
from services.access.viewer_cache import ViewerCache
from services.analytics.facts import FACTS_FOLDED
from services.analytics.report_cache import ReportCache
from services.catalog.listings import listing_bands
from services.members.code import MemberCodes
from services.messaging.providers import MessageProvider, configured_message_provider, install
from services.org.settings import SETTINGS_CHANGED, SettingsMemo
from services.platform.config import Settings as Settings
from services.platform.db import create_engine, create_read_sessionmaker, create_sessionmaker
from services.platform.events import Broker as Broker
from services.platform.events import Event, create_broker
from services.platform.metrics import Metrics
from services.platform.payments import PaymentProvider, configured_providers
from services.platform.public_reads import PUBLIC_CHANGED, Bands, PublicReads
from services.platform.ratelimit import Counter, LocalCounter, create_counter

log = logging.getLogger("chain.app")
# The topics that make something an instance remembers wrong.
ANNOUNCED = (SESSION_REVOKED, ACCESS_CHANGED, SETTINGS_CHANGED, PUBLIC_CHANGED, FACTS_FOLDED)


@dataclass
class AppState:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    # Reads outside a mutation (loaders, query resolvers, the token check): autocommit on PostgreSQL.
    read_sessionmaker: async_sessionmaker[AsyncSession]
    security: Security
    cipher: PiiCipher
    broker: Broker
    member_codes: MemberCodes
    payment_providers: dict[str, PaymentProvider] = field(default_factory=dict)
    identity_providers: dict[str, IdentityProvider] = field(default_factory=dict)
    limits: Limits = field(default_factory=Limits)
    rate_counter: Counter = field(default_factory=LocalCounter)
    metrics: Metrics = field(default_factory=Metrics)
    # What the instance remembers between requests, dropped by the announcements below (ANNOUNCED).
    viewers: ViewerCache = field(default_factory=ViewerCache)
    chain_settings: SettingsMemo = field(default_factory=SettingsMemo)
    # The public documents' answers (web/public_cache.py): a store's menu, nearby stores, a store's page.
    public_reads: PublicReads[Any] = field(default_factory=PublicReads)
    report_cache: ReportCache = field(default_factory=ReportCache)

    def __post_init__(self) -> None:
        if self.public_reads.bands is None:
            self.public_reads.bands = self.read_bands

    async def read_bands(self, moved: dict[int, set[int]]) -> Bands:
        """The bands of SKUs that moved, by store and listing, read afresh: what the public reads write in."""
        async with self.read_sessionmaker() as session:
            found = await listing_bands(session, [(s, k) for s, skus in moved.items() for k in skus])
        read: Bands = {store_id: {} for store_id in moved}  # a store none of whose moved SKUs it lists: nothing
        for store_id, listings in found.items():
            read[store_id] = {listing_id: band.value for listing_id, band in listings.items()}
        return read

    def forget(self, events: list[Event]) -> None:
        """What a change committed here announced, applied here at once (before the broadcast reaches the others)."""
        for event in events:
            self.viewers.apply(event)
            self.chain_settings.apply(event)
            self.public_reads.apply(event)
            self.report_cache.apply(event)

    async def follow_announcements(self) -> None:
        """For the app's life: apply what any instance announces (through Redis when configured)."""
        await asyncio.gather(*(self._follow(topic) for topic in ANNOUNCED))

    async def _follow(self, topic: str) -> None:
        while True:
            try:
                async for event in self.broker.subscribe(topic):
                    self.forget([event])
            except Exception:  # the broker went away: forget everything remembered, then listen again
                log.exception("announcements on %s stopped; listening again", topic)
                self.viewers.clear()
                self.chain_settings.forget()
                self.public_reads.clear()
                self.report_cache.clear()
                await asyncio.sleep(1.0)

    # Where the sending job delivers messages (services/messaging/providers.py); None: they wait.
    message_provider: MessageProvider | None = None


class LifespanState(TypedDict):
    """What the app's lifespan yields: Starlette gives a copy to every request as `request.state` (`.chain`)."""

    chain: AppState


def build_state(settings: Settings) -> AppState:
    engine = create_engine(
        settings.database_url,
        lock_timeout_ms=settings.db_lock_timeout_ms,
        statement_timeout_ms=settings.db_statement_timeout_ms,
    )
    keys = load_keys(settings)
    providers: dict[str, IdentityProvider] = {}
    if not settings.is_production:
        providers["local"] = LocalIdentityProvider()
    if settings.wechat_app_id and settings.wechat_app_secret:
        providers["wechat"] = WeChatIdentityProvider(settings.wechat_app_id, settings.wechat_app_secret)
    payment_providers = configured_providers(production=settings.is_production, secret=keys.pii_key)
    return AppState(
        settings=settings,
        engine=engine,
        sessionmaker=create_sessionmaker(engine),
        read_sessionmaker=create_read_sessionmaker(engine),
        security=Security(settings, keys),
        cipher=PiiCipher(keys.pii_key),
        broker=create_broker(settings.redis_url),
        member_codes=MemberCodes(keys.pii_key),
        identity_providers=providers,
        payment_providers=payment_providers,
        rate_counter=create_counter(settings.redis_url),
        metrics=Metrics(engine),
        viewers=ViewerCache(ttl_s=settings.session_cache_s),
        chain_settings=SettingsMemo(ttl_s=settings.settings_cache_s),
        public_reads=PublicReads(ttl_s=settings.public_cache_s),
        report_cache=ReportCache(ttl_s=settings.report_cache_s),
        message_provider=install(configured_message_provider(settings)),
    )
