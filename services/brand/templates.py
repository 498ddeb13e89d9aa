"""HQ's page templates for the mini-program: versioned (one draft, one published, earlier versions retired),
each an ordered list of sections, theme colours and a logo. A section says what a store may put in it (whether it
may fill it at all, how many items, which kinds of item); HQ may put its own items in a section too, shown where a
store has put none.

Publishing makes the draft the live version; rolling back to version N publishes a copy of N as a new version
(history is never rewritten)."""

from __future__ import annotations

import enum
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import CatalogStatus, Category, PageKind, PageTemplate, Sku, StoreListing, TemplateStatus, utcnow
from services.access.permissions import Perm
from services.access.scope import Viewer, require
from services.platform.errors import DomainError, ErrorCode
from services.platform.pagination import Page, keyset_page
from services.platform.validation import optional_text, text

MAX_SECTIONS = 50
MAX_ITEMS = 50
MAX_MENU_ITEMS = 100
_COLOUR = re.compile(r"^#[0-9A-Fa-f]{6}$")
_KEY = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


class SectionKind(enum.StrEnum):
    BANNER_CAROUSEL = "BANNER_CAROUSEL"
    FEATURED_CATEGORIES = "FEATURED_CATEGORIES"
    CAMPAIGN_STRIP = "CAMPAIGN_STRIP"
    RECOMMENDED_ITEMS = "RECOMMENDED_ITEMS"
    STORE_NOTICE = "STORE_NOTICE"
    MENU = "MENU"


class ItemKind(enum.StrEnum):
    IMAGE = "IMAGE"
    SKU = "SKU"
    CATEGORY = "CATEGORY"
    TEXT = "TEXT"


# What each kind of section can hold; a campaign strip and the menu are filled by live data only.
HOLDS: dict[SectionKind, frozenset[ItemKind]] = {
    SectionKind.BANNER_CAROUSEL: frozenset({ItemKind.IMAGE}),
    SectionKind.FEATURED_CATEGORIES: frozenset({ItemKind.CATEGORY}),
    SectionKind.CAMPAIGN_STRIP: frozenset(),
    SectionKind.RECOMMENDED_ITEMS: frozenset({ItemKind.SKU}),
    SectionKind.STORE_NOTICE: frozenset({ItemKind.TEXT, ItemKind.IMAGE}),
    SectionKind.MENU: frozenset(),
}


@dataclass(frozen=True)
class Item:
    kind: ItemKind
    url: str | None = None
    link: str | None = None
    sku_id: int | None = None
    category_id: int | None = None
    text: str | None = None

    def stored(self) -> dict[str, Any]:
        values = {"url": self.url, "link": self.link, "sku_id": self.sku_id}
        values |= {"category_id": self.category_id, "text": self.text}
        return {"kind": self.kind.value} | {k: v for k, v in values.items() if v is not None}

    @classmethod
    def of(cls, data: dict[str, Any]) -> Item:
        return cls(
            ItemKind(data["kind"]),
            data.get("url"),
            data.get("link"),
            data.get("sku_id"),
            data.get("category_id"),
            data.get("text"),
        )


@dataclass(frozen=True)
class Section:
    key: str
    kind: SectionKind
    title: str | None = None
    store_fillable: bool = False
    max_items: int = 10
    allowed_kinds: tuple[ItemKind, ...] = ()
    items: tuple[Item, ...] = ()  # HQ's own content, shown where the store put none

    def stored(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "kind": self.kind.value,
            "title": self.title,
            "store_fillable": self.store_fillable,
            "max_items": self.max_items,
            "allowed_kinds": [k.value for k in self.allowed_kinds],
            "items": [i.stored() for i in self.items],
        }

    @classmethod
    def of(cls, data: dict[str, Any]) -> Section:
        return cls(
            key=data["key"],
            kind=SectionKind(data["kind"]),
            title=data.get("title"),
            store_fillable=bool(data.get("store_fillable")),
            max_items=int(data.get("max_items", 10)),
            allowed_kinds=tuple(ItemKind(k) for k in data.get("allowed_kinds", [])),
            items=tuple(Item.of(i) for i in data.get("items", [])),
        )


@dataclass(frozen=True)
class Theme:
    primary_color: str = "#C8102E"
    accent_color: str = "#FFC72C"
    background_color: str = "#FFFFFF"


@dataclass(frozen=True)
class TemplateSpec:
    kind: PageKind
    sections: list[Section]
    theme: Theme = field(default_factory=Theme)
    logo_url: str | None = None


def sections_of(template: PageTemplate) -> list[Section]:
    return [Section.of(s) for s in template.sections]


def url(value: str | None, field_name: str) -> str | None:
    """An https address (images and links shown in the mini-program), or None."""
    found = optional_text(value, field_name, max_len=512)
    if found is not None and not found.startswith("https://"):
        raise DomainError(ErrorCode.INVALID_INPUT, "Addresses start with https://.", field_name)
    return found


def check_item(item: Item, allowed: frozenset[ItemKind], field_name: str) -> Item:
    """One item's own shape (the kinds a section accepts are the caller's rule)."""
    if item.kind not in allowed:
        raise DomainError(ErrorCode.NOT_ALLOWED_BY_POLICY, f"This section takes no {item.kind} items.", field_name)
    match item.kind:
        case ItemKind.IMAGE:
            if item.url is None:
                raise DomainError(ErrorCode.INVALID_INPUT, "An image needs its url.", f"{field_name}.url")
            return Item(
                ItemKind.IMAGE, url=url(item.url, f"{field_name}.url"), link=url(item.link, f"{field_name}.link")
            )
        case ItemKind.TEXT:
            return Item(ItemKind.TEXT, text=text(item.text or "", f"{field_name}.text", max_len=500))
        case ItemKind.SKU:
            if item.sku_id is None:
                raise DomainError(ErrorCode.INVALID_INPUT, "Say which SKU.", f"{field_name}.skuId")
            return Item(ItemKind.SKU, sku_id=item.sku_id)
        case ItemKind.CATEGORY:
            if item.category_id is None:
                raise DomainError(ErrorCode.INVALID_INPUT, "Say which category.", f"{field_name}.categoryId")
            return Item(ItemKind.CATEGORY, category_id=item.category_id)
    raise AssertionError(item.kind)  # pragma: no cover


def _check_section(section: Section, i: int, seen: set[str]) -> Section:
    where = f"sections[{i}]"
    if not _KEY.match(section.key) or section.key in seen:
        raise DomainError(ErrorCode.INVALID_INPUT, "Section keys are unique lowercase names.", f"{where}.key")
    seen.add(section.key)
    holds = HOLDS[section.kind]
    limit = MAX_MENU_ITEMS if section.kind is SectionKind.MENU else MAX_ITEMS
    if not 1 <= section.max_items <= limit:
        raise DomainError(ErrorCode.INVALID_INPUT, f"maxItems is 1 to {limit}.", f"{where}.maxItems")
    allowed = tuple(sorted(set(section.allowed_kinds or holds)))
    if not set(allowed) <= holds or (section.store_fillable and not allowed):
        raise DomainError(
            ErrorCode.INVALID_INPUT, f"A {section.kind} section holds only {sorted(holds)}.", f"{where}.allowedKinds"
        )
    if len(section.items) > section.max_items:
        raise DomainError(ErrorCode.INVALID_INPUT, "More items than maxItems.", f"{where}.items")
    items = tuple(check_item(item, holds, f"{where}.items[{n}]") for n, item in enumerate(section.items))
    title = optional_text(section.title, f"{where}.title", max_len=64)
    return Section(section.key, section.kind, title, section.store_fillable, section.max_items, allowed, items)


async def check_references(session: AsyncSession, items: list[tuple[Item, str]], *, store_id: int | None) -> None:
    """The SKUs and categories items name exist (and, for a store, the SKU is listed there): two statements."""
    skus = {i.sku_id for i, _ in items if i.sku_id is not None}
    categories = {i.category_id for i, _ in items if i.category_id is not None}
    found_skus: set[int] = set()
    if skus:
        stmt = select(Sku.id).where(Sku.id.in_(skus), Sku.status == CatalogStatus.ACTIVE)
        if store_id is not None:
            stmt = stmt.join(StoreListing, StoreListing.sku_id == Sku.id).where(StoreListing.store_id == store_id)
        found_skus = set((await session.scalars(stmt)).all())
    found_categories: set[int] = set()
    if categories:
        found_categories = set((await session.scalars(select(Category.id).where(Category.id.in_(categories)))).all())
    for item, where in items:
        if item.sku_id is not None and item.sku_id not in found_skus:
            raise DomainError(ErrorCode.NOT_FOUND, "No such SKU on this store's menu.", f"{where}.skuId")
        if item.category_id is not None and item.category_id not in found_categories:
            raise DomainError(ErrorCode.NOT_FOUND, "No such category.", f"{where}.categoryId")


def _check_theme(theme: Theme) -> Theme:
    for name in ("primary_color", "accent_color", "background_color"):
        if not _COLOUR.match(getattr(theme, name)):
            camel = "".join(w.capitalize() if i else w for i, w in enumerate(name.split("_")))
            raise DomainError(ErrorCode.INVALID_INPUT, "Colours are #RRGGBB.", f"theme.{camel}")
    return theme


async def _current(session: AsyncSession, kind: PageKind, status: TemplateStatus) -> PageTemplate | None:
    stmt = select(PageTemplate).where(PageTemplate.kind == kind, PageTemplate.status == status)
    return await session.scalar(stmt.order_by(PageTemplate.version.desc()).limit(1).with_for_update())


async def _next_version(session: AsyncSession, kind: PageKind) -> int:
    return int(await session.scalar(select(func.max(PageTemplate.version)).where(PageTemplate.kind == kind)) or 0) + 1


async def save_draft(session: AsyncSession, viewer: Viewer, spec: TemplateSpec) -> PageTemplate:
    """HQ edits the kind's draft (made on first save, as the next version); what is live does not change."""
    require(viewer, Perm.BRAND_MANAGE)
    if not 1 <= len(spec.sections) <= MAX_SECTIONS:
        raise DomainError(ErrorCode.INVALID_INPUT, f"A page has 1 to {MAX_SECTIONS} sections.", "sections")
    seen: set[str] = set()
    sections = [_check_section(s, i, seen) for i, s in enumerate(spec.sections)]
    refs = [(item, f"sections[{i}].items[{n}]") for i, s in enumerate(sections) for n, item in enumerate(s.items)]
    await check_references(session, refs, store_id=None)
    theme = _check_theme(spec.theme)
    draft = await _current(session, spec.kind, TemplateStatus.DRAFT)
    if draft is None:
        draft = PageTemplate(
            kind=spec.kind, version=await _next_version(session, spec.kind), status=TemplateStatus.DRAFT
        )
        session.add(draft)
    draft.sections = [s.stored() for s in sections]
    draft.theme = asdict(theme)
    draft.logo_url = url(spec.logo_url, "logoUrl")
    draft.created_by = viewer.staff_id
    await session.flush()
    return draft


async def _make_live(session: AsyncSession, template: PageTemplate) -> PageTemplate:
    live = await _current(session, template.kind, TemplateStatus.PUBLISHED)
    if live is not None and live.id != template.id:
        live.status = TemplateStatus.RETIRED
        await session.flush()  # the retired one first: at most one published per kind at any moment
    template.status, template.published_at = TemplateStatus.PUBLISHED, utcnow()
    await session.flush()
    return template


async def publish(session: AsyncSession, viewer: Viewer, kind: PageKind) -> PageTemplate:
    """The kind's draft becomes what the mini-program shows; the version before is retired."""
    require(viewer, Perm.BRAND_MANAGE)
    draft = await _current(session, kind, TemplateStatus.DRAFT)
    if draft is None:
        raise DomainError(ErrorCode.NOT_FOUND, "There is no draft of this page to publish.", "kind")
    return await _make_live(session, draft)


async def roll_back(session: AsyncSession, viewer: Viewer, kind: PageKind, version: int) -> PageTemplate:
    """Publish again what version N was, as a new version (copied_from = N); a draft in progress stays a draft."""
    require(viewer, Perm.BRAND_MANAGE)
    earlier = await session.scalar(
        select(PageTemplate).where(
            PageTemplate.kind == kind,
            PageTemplate.version == version,
            PageTemplate.status != TemplateStatus.DRAFT,
        )
    )
    if earlier is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No such published version.", "version")
    number = await _next_version(session, kind)
    draft = await _current(session, kind, TemplateStatus.DRAFT)
    if draft is not None:  # the draft in progress stays the newest version: the copy takes its number
        number, draft.version = draft.version, number
        await session.flush()
    copy = PageTemplate(
        kind=kind,
        version=number,
        status=TemplateStatus.DRAFT,
        theme=dict(earlier.theme),
        logo_url=earlier.logo_url,
        sections=list(earlier.sections),
        copied_from=earlier.version,
        created_by=viewer.staff_id,
    )
    session.add(copy)
    await session.flush()
    return await _make_live(session, copy)


async def published(session: AsyncSession, kind: PageKind) -> PageTemplate | None:
    return await session.scalar(
        select(PageTemplate).where(PageTemplate.kind == kind, PageTemplate.status == TemplateStatus.PUBLISHED)
    )


async def list_versions(
    session: AsyncSession, viewer: Viewer, kind: PageKind, *, first: int | None, after: str | None
) -> Page[PageTemplate]:
    """Every version of a kind's template, newest first (HQ)."""
    require(viewer, Perm.BRAND_MANAGE)
    stmt = select(PageTemplate).where(PageTemplate.kind == kind)
    return await keyset_page(session, stmt, PageTemplate.id, first=first, after=after, descending=True)
