"""Brand: HQ's versioned page templates for the mini-program and each store's content in the slots HQ opens."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigId, Timestamp, intpk, str_enum


class PageKind(enum.StrEnum):
    HOME = "HOME"
    STORE = "STORE"


class TemplateStatus(enum.StrEnum):
    """One DRAFT at most per kind; one PUBLISHED; earlier published versions RETIRED (roll back to any of them)."""

    DRAFT = "DRAFT"
    PUBLISHED = "PUBLISHED"
    RETIRED = "RETIRED"


class StorePageStatus(enum.StrEnum):
    """DRAFT (being edited) -> PENDING (waiting for HQ, when the chain asks for approval) -> LIVE, or REJECTED
    (edited again as a draft). A newer LIVE one makes the older REPLACED: only the LIVE row is shown."""

    DRAFT = "DRAFT"
    PENDING = "PENDING"
    LIVE = "LIVE"
    REJECTED = "REJECTED"
    REPLACED = "REPLACED"


class PageTemplate(Base):
    """One version of HQ's template of a page kind: theme, logo and the ordered sections (with what a store may
    fill in each), as JSON validated by services/brand/templates.py."""

    __tablename__ = "page_templates"
    __table_args__ = (UniqueConstraint("kind", "version"), Index("ix_page_templates_kind_status", "kind", "status"))

    id: Mapped[intpk]
    kind: Mapped[PageKind] = mapped_column(str_enum(PageKind))
    version: Mapped[int] = mapped_column(Integer())
    status: Mapped[TemplateStatus] = mapped_column(str_enum(TemplateStatus))
    theme: Mapped[dict[str, Any]] = mapped_column(JSON(), default=dict)
    logo_url: Mapped[str | None] = mapped_column(String(512))
    sections: Mapped[list[dict[str, Any]]] = mapped_column(JSON(), default=list)
    # The version this one was copied from by a roll back.
    copied_from: Mapped[int | None] = mapped_column(Integer())
    created_by: Mapped[int | None] = mapped_column(BigId)
    created_at: Mapped[Timestamp]
    published_at: Mapped[datetime | None]


class StorePage(Base):
    """A store's content for one page kind: items per section key, as the store filled them."""

    __tablename__ = "store_pages"
    __table_args__ = (Index("ix_store_pages_store_id_kind_status", "store_id", "kind", "status"),)

    id: Mapped[intpk]
    store_id: Mapped[int] = mapped_column(BigId, ForeignKey("stores.id"))
    kind: Mapped[PageKind] = mapped_column(str_enum(PageKind))
    status: Mapped[StorePageStatus] = mapped_column(str_enum(StorePageStatus))
    # {section key: [{"kind": "IMAGE"|"SKU"|"CATEGORY"|"TEXT", "url"/"skuId"/"categoryId"/"text": ..., "link": ...}]}
    slots: Mapped[dict[str, Any]] = mapped_column(JSON(), default=dict)
    edited_by: Mapped[int | None] = mapped_column(BigId)
    submitted_at: Mapped[datetime | None]
    decided_by: Mapped[int | None] = mapped_column(BigId)
    decided_at: Mapped[datetime | None]
    reject_reason: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[Timestamp]
    updated_at: Mapped[Timestamp]
