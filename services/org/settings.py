"""Chain-wide settings HQ controls: store-own products, the store price band, the default low-stock line."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models import Setting, utcnow
from services.platform import public_reads
from services.platform.errors import DomainError, ErrorCode
from services.platform.events import Event, emit

# Published when HQ changes the settings, so every instance's remembered copy is dropped.
SETTINGS_CHANGED = "settings.changed"


@dataclass(frozen=True)
class ChainSettings:
    stores_may_create_products: bool = False
    # Store prices may differ from the HQ base price by at most this many percent (unless a SKU sets min/max).
    price_band_percent: int = 20
    default_low_stock_threshold: int = 5
    # Points: earned per whole yuan spent, worth point_value_fen each when redeemed, paying at most
    # max_points_share_pct of an order; birthday purchases earn birthday_multiplier_pct of the usual.
    points_per_yuan: int = 1
    point_value_fen: int = 1
    max_points_share_pct: int = 50
    birthday_multiplier_pct: int = 200
    # How long an unpaid mini-program order holds its stock.
    unpaid_order_minutes: int = 15
    # Delivery: the fee, waived from an order value (0: never waived), and how far from the store it goes.
    delivery_fee_fen: int = 600
    free_delivery_over_fen: int = 5000
    delivery_radius_km: int = 5
    # Marketing: the campaign kinds a store may run on its own, and the deepest discount it may give.
    store_campaign_kinds: tuple[str, ...] = ("LIMITED_DISCOUNT", "FULL_REDUCTION")
    store_campaign_max_discount_pct: int = 30
    # Reports: whether store managers see cost, gross profit and margin for their own store (HQ always may, with
    # catalog.view_cost).
    stores_see_margin: bool = False
    # Messages to members: at most this many a member's local day, none between quiet_hours_start and
    # quiet_hours_end (hours, the member's time zone; equal hours: no quiet hours). Held ones go out when it ends.
    message_cap_per_day: int = 3
    quiet_hours_start: int = 22
    quiet_hours_end: int = 8
    # After-sales: a complaint is due this many hours after it is filed (its SLA).
    complaint_sla_hours: int = 24
    # Brand: a store's page (notice, photos, featured items) goes live only once HQ approves it.
    store_pages_need_approval: bool = True


async def get_settings(session: AsyncSession) -> ChainSettings:
    rows = (await session.scalars(select(Setting))).all()
    known = set(ChainSettings.__dataclass_fields__)
    values = {r.key: r.value for r in rows if r.key in known}
    if "store_campaign_kinds" in values:
        values["store_campaign_kinds"] = tuple(values["store_campaign_kinds"])
    return ChainSettings(**values)


async def update_settings(session: AsyncSession, **changes: Any) -> ChainSettings:
    current = await get_settings(session)
    given = {k: v for k, v in changes.items() if v is not None}
    updated = replace(current, **given)
    if not 0 <= updated.price_band_percent <= 100:
        raise DomainError(ErrorCode.INVALID_INPUT, "The price band is 0-100 percent.", "priceBandPercent")
    if not 0 <= updated.default_low_stock_threshold <= 1_000_000:
        raise DomainError(ErrorCode.INVALID_INPUT, "The threshold is not valid.", "defaultLowStockThreshold")
    for name, low, high in (
        ("points_per_yuan", 0, 1000),
        ("point_value_fen", 1, 10_000),
        ("max_points_share_pct", 0, 100),
        ("birthday_multiplier_pct", 100, 1000),
        ("unpaid_order_minutes", 1, 120),
        ("delivery_fee_fen", 0, 100_000),
        ("free_delivery_over_fen", 0, 10_000_000),
        ("delivery_radius_km", 0, 50),
        ("store_campaign_max_discount_pct", 0, 90),
        ("message_cap_per_day", 0, 50),
        ("quiet_hours_start", 0, 23),
        ("quiet_hours_end", 0, 23),
        ("complaint_sla_hours", 1, 720),
    ):
        if not low <= getattr(updated, name) <= high:
            field = "".join(w.capitalize() if i else w for i, w in enumerate(name.split("_")))
            raise DomainError(ErrorCode.INVALID_INPUT, f"{field} must be {low}-{high}.", field)
    allowed = {"LIMITED_DISCOUNT", "FULL_REDUCTION", "FLASH_SALE", "GROUP_BUY"}
    if not set(updated.store_campaign_kinds) <= allowed:
        raise DomainError(
            ErrorCode.INVALID_INPUT,
            "Stores may run only these kinds: " + ", ".join(sorted(allowed)),
            "storeCampaignKinds",
        )
    updated = replace(updated, store_campaign_kinds=tuple(sorted(set(updated.store_campaign_kinds))))
    for key in given:
        row = await session.get(Setting, key, with_for_update=True)
        if row is None:
            session.add(Setting(key=key, value=asdict(updated)[key]))
        else:
            row.value, row.updated_at = asdict(updated)[key], utcnow()
    emit(session, SETTINGS_CHANGED, {"keys": sorted(given)})
    # Named in the public reads' announcement too: an instance that hears it before settings.changed (another
    # channel) forgets the settings before it makes a menu again with the old low-stock line.
    public_reads.changed(session.info, [public_reads.SETTINGS])
    await session.flush()
    return updated


class SettingsMemo:
    """The settings for reads outside a transaction (loaders, the menu), remembered by the instance until a change is
    announced, and at most `ttl_s` in case an announcement is lost. Writes read the table in their own transaction."""

    def __init__(self, ttl_s: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self._clock = clock
        self._value: tuple[float, ChainSettings] | None = None
        self._generation = 0

    async def get(self, sessionmaker: async_sessionmaker[AsyncSession]) -> ChainSettings:
        if self._value is not None and self._value[0] > self._clock():
            return self._value[1]
        generation = self._generation
        async with sessionmaker() as session:
            value = await get_settings(session)
        if generation == self._generation:  # no change was announced while this read ran
            self._value = (self._clock() + self.ttl_s, value)
        return value

    def forget(self) -> None:
        self._generation += 1
        self._value = None

    def apply(self, event: Event) -> None:
        if event.topic == SETTINGS_CHANGED or public_reads.names(event, public_reads.SETTINGS):
            self.forget()
