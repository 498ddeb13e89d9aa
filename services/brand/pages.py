"""A store's content in HQ's template (门店个性化内容): the store fills the sections HQ opens to it, within each
section's rules (how many items, which kinds; a featured SKU must be on the store's menu). The store edits a draft
and submits it; when the chain setting `store_pages_need_approval` is on, HQ approves or rejects it, otherwise it
goes live at once. Only the LIVE content is shown; a newer live one replaces it."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import PageKind, Store, StoreKind, StorePage, StorePageStatus, utcnow
from services.access.permissions import Perm
from services.access.scope import Viewer, acted_in, require, require_store, restrict
from services.brand.templates import Item, check_item, check_references, published, sections_of
from services.org.settings import get_settings
from services.platform.errors import DomainError, ErrorCode
from services.platform.pagination import Page, keyset_page
from services.platform.validation import optional_text

EDITABLE = (StorePageStatus.DRAFT, StorePageStatus.REJECTED)


@dataclass(frozen=True)
class Slot:
    key: str
    items: list[Item]


async def _store(session: AsyncSession, store_id: int) -> Store:
    store = await session.get(Store, store_id)
    if store is None or store.kind is not StoreKind.STORE:
        raise DomainError(ErrorCode.NOT_FOUND, "No such store.", "storeId")
    return store


async def _checked(session: AsyncSession, store_id: int, kind: PageKind, slots: list[Slot]) -> dict[str, object]:
    """The slots as stored, each within its section's rules in the published template."""
    template = await published(session, kind)
    if template is None:
        raise DomainError(ErrorCode.NOT_FOUND, "HQ has not published this page yet.", "kind")
    sections = {s.key: s for s in sections_of(template)}
    stored: dict[str, object] = {}
    refs: list[tuple[Item, str]] = []
    for i, slot in enumerate(slots):
        section = sections.get(slot.key)
        if section is None or not section.store_fillable or slot.key in stored:
            raise DomainError(
                ErrorCode.NOT_ALLOWED_BY_POLICY, "HQ does not open this section to stores.", f"slots[{i}].key"
            )
        if len(slot.items) > section.max_items:
            raise DomainError(
                ErrorCode.NOT_ALLOWED_BY_POLICY, f"At most {section.max_items} items here.", f"slots[{i}].items"
            )
        items = [
            check_item(item, frozenset(section.allowed_kinds), f"slots[{i}].items[{n}]")
            for n, item in enumerate(slot.items)
        ]
        refs += [(item, f"slots[{i}].items[{n}]") for n, item in enumerate(items)]
        stored[slot.key] = [item.stored() for item in items]
    await check_references(session, refs, store_id=store_id)
    return stored


async def _editable(session: AsyncSession, store_id: int, kind: PageKind) -> StorePage | None:
    return await session.scalar(
        select(StorePage)
        .where(StorePage.store_id == store_id, StorePage.kind == kind, StorePage.status.in_(EDITABLE))
        .order_by(StorePage.id.desc())
        .limit(1)
        .with_for_update()
    )


async def save_draft(
    session: AsyncSession, viewer: Viewer, *, store_id: int, kind: PageKind, slots: list[Slot]
) -> StorePage:
    """The store's draft of its page: every slot it fills, replacing the draft's earlier content."""
    acted_in(store_id)
    require_store(viewer, store_id, Perm.PAGE_EDIT)
    await _store(session, store_id)
    stored = await _checked(session, store_id, kind, slots)
    page = await _editable(session, store_id, kind)
    if page is None:
        page = StorePage(store_id=store_id, kind=kind)
        session.add(page)
    page.status, page.slots, page.edited_by, page.updated_at = StorePageStatus.DRAFT, stored, viewer.staff_id, utcnow()
    page.reject_reason = None
    await session.flush()
    return page


async def _go_live(session: AsyncSession, page: StorePage) -> None:
    live = (
        await session.scalars(
            select(StorePage)
            .where(
                StorePage.store_id == page.store_id,
                StorePage.kind == page.kind,
                StorePage.status == StorePageStatus.LIVE,
            )
            .with_for_update()
        )
    ).all()
    for row in live:
        row.status = StorePageStatus.REPLACED
    page.status = StorePageStatus.LIVE


async def submit(session: AsyncSession, viewer: Viewer, *, store_id: int, kind: PageKind) -> StorePage:
    """The draft goes to HQ for approval, or live at once when the chain does not ask for approval."""
    acted_in(store_id)
    require_store(viewer, store_id, Perm.PAGE_EDIT)
    page = await _editable(session, store_id, kind)
    if page is None or page.status is not StorePageStatus.DRAFT:
        raise DomainError(ErrorCode.INVALID_TRANSITION, "There is no draft to submit.", "storeId")
    await _checked(session, store_id, kind, [Slot(k, [Item.of(i) for i in v]) for k, v in page.slots.items()])
    page.submitted_at = page.updated_at = utcnow()
    if (await get_settings(session)).store_pages_need_approval:
        page.status = StorePageStatus.PENDING
    else:
        await _go_live(session, page)
    await session.flush()
    return page


async def decide(
    session: AsyncSession, viewer: Viewer, *, page_id: int, approve: bool, reason: str | None
) -> StorePage:
    """HQ approves a submitted page (it goes live, replacing the store's live one) or rejects it with a reason."""
    require(viewer, Perm.BRAND_MANAGE)
    page = await session.get(StorePage, page_id, with_for_update=True)
    if page is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No such store page.", "id")
    acted_in(page.store_id)
    if page.status is not StorePageStatus.PENDING:
        raise DomainError(ErrorCode.INVALID_TRANSITION, "Only a submitted page is decided.", "id")
    page.decided_by, page.decided_at, page.updated_at = viewer.staff_id, utcnow(), utcnow()
    if approve:
        await _go_live(session, page)
    else:
        page.status = StorePageStatus.REJECTED
        page.reject_reason = optional_text(reason, "reason", max_len=255)
    await session.flush()
    return page


async def list_pages(
    session: AsyncSession,
    viewer: Viewer,
    *,
    store_id: int | None,
    status: StorePageStatus | None,
    first: int | None,
    after: str | None,
) -> Page[StorePage]:
    """Store pages, newest first: HQ (brand.manage) every store's, to review; a store's editors their own."""
    stmt = select(StorePage)
    if not (viewer.is_hq and viewer.can(Perm.BRAND_MANAGE)):
        require(viewer, Perm.PAGE_EDIT)
        stmt = restrict(stmt, viewer, StorePage.store_id, Perm.PAGE_EDIT)
    if store_id is not None:
        stmt = stmt.where(StorePage.store_id == store_id)
    if status is not None:
        stmt = stmt.where(StorePage.status == status)
    return await keyset_page(session, stmt, StorePage.id, first=first, after=after, descending=True)


async def live_slots(session: AsyncSession, store_id: int, kind: PageKind) -> dict[str, list[Item]]:
    """What the store shows now in each slot (nothing when it has no live page)."""
    page = await session.scalar(
        select(StorePage).where(
            StorePage.store_id == store_id, StorePage.kind == kind, StorePage.status == StorePageStatus.LIVE
        )
    )
    return {} if page is None else {k: [Item.of(i) for i in v] for k, v in page.slots.items()}
