"""The library as CSV: export every SKU, import thousands at once with a per-row error report.

A file with any bad row writes nothing. Rows are upserts by barcode, so an exported file edited in a
spreadsheet imports back. Prices are yuan with at most two decimals (12.50), stored as fen.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import CatalogStatus, Category, Product, Sku
from services.access.permissions import Perm
from services.access.scope import Viewer, require
from services.catalog.products import _BARCODE, _URL, MAX_PRICE

COLUMNS = [
    "product",
    "category",
    "barcode",
    "spec",
    "base_price",
    "cost_price",
    "min_price",
    "max_price",
    "status",
    "description",
    "images",
]
REQUIRED = ("product", "category", "barcode", "base_price")
MAX_ROWS = 20_000
MAX_BYTES = 5 * 1024 * 1024


@dataclass(frozen=True)
class RowError:
    row: int  # the line in the file, header = 1
    column: str | None
    message: str


@dataclass
class ImportReport:
    errors: list[RowError] = field(default_factory=list)
    products_created: int = 0
    skus_created: int = 0
    skus_updated: int = 0


@dataclass(frozen=True)
class _Row:
    line: int
    product: str
    category_path: tuple[str, ...]
    barcode: str
    spec: dict[str, str]
    base_price: int
    cost_price: int | None
    min_price: int | None
    max_price: int | None
    status: CatalogStatus
    description: str | None
    images: list[str]


def yuan_to_fen(raw: str) -> int:
    value = Decimal(raw.strip())
    fen = value * 100
    if fen != fen.to_integral_value() or not 0 <= fen <= MAX_PRICE:
        raise ValueError(raw)
    return int(fen)


def fen_to_yuan(fen: int | None) -> str:
    return "" if fen is None else f"{Decimal(fen) / 100:.2f}"


def _parse_row(line: int, raw: dict[str, str], errors: list[RowError]) -> _Row | None:
    values = {k: (raw.get(k) or "").strip() for k in COLUMNS}
    start = len(errors)
    for column in REQUIRED:
        if not values[column]:
            errors.append(RowError(line, column, f"{column} is required"))
    if values["product"] and len(values["product"]) > 128:
        errors.append(RowError(line, "product", "longer than 128 characters"))
    if values["barcode"] and not _BARCODE.match(values["barcode"]):
        errors.append(RowError(line, "barcode", "4-64 letters, digits or dashes"))
    prices: dict[str, int | None] = {}
    for column in ("base_price", "cost_price", "min_price", "max_price"):
        try:
            prices[column] = yuan_to_fen(values[column]) if values[column] else None
        except (InvalidOperation, ValueError):
            errors.append(RowError(line, column, "a price in yuan with at most two decimals, e.g. 12.50"))
    spec: dict[str, str] = {}
    for part in filter(None, values["spec"].split(";")):
        key, sep, val = part.partition("=")
        if not sep or not key.strip():
            errors.append(RowError(line, "spec", "write spec as key=value;key=value"))
            break
        spec[key.strip()] = val.strip()
    try:
        status = CatalogStatus(values["status"].upper() or "ACTIVE")
    except ValueError:
        errors.append(RowError(line, "status", "ACTIVE or INACTIVE"))
        status = CatalogStatus.ACTIVE
    images = values["images"].split()
    if any(not _URL.match(u) for u in images):
        errors.append(RowError(line, "images", "http(s) URLs separated by spaces"))
    path = tuple(p.strip() for p in values["category"].split("/") if p.strip())
    if values["category"] and (not path or any(len(p) > 64 for p in path)):
        errors.append(RowError(line, "category", "a path such as 饮品/咖啡"))
    base, low, high = prices.get("base_price"), prices.get("min_price"), prices.get("max_price")
    if (low is None) != (high is None):
        errors.append(RowError(line, "min_price", "give both min_price and max_price, or neither"))
    elif base is not None and low is not None and high is not None and not low <= base <= high:
        errors.append(RowError(line, "base_price", "outside the SKU's min/max band"))
    if len(errors) > start or base is None:
        return None
    return _Row(
        line,
        values["product"],
        path,
        values["barcode"],
        spec,
        base,
        prices["cost_price"],
        low,
        high,
        status,
        values["description"] or None,
        images,
    )


def parse(content: str) -> tuple[list[_Row], list[RowError]]:
    errors: list[RowError] = []
    if len(content.encode()) > MAX_BYTES:
        return [], [RowError(1, None, f"the file is larger than {MAX_BYTES // 1024 // 1024} MB")]
    reader = csv.DictReader(io.StringIO(content.lstrip("\ufeff")))
    missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
    if missing:
        return [], [RowError(1, c, "missing column") for c in missing]
    rows: list[_Row] = []
    barcodes: dict[str, int] = {}
    for index, raw in enumerate(reader):
        line = index + 2
        if index >= MAX_ROWS:
            errors.append(RowError(line, None, f"more than {MAX_ROWS} rows; split the file"))
            break
        row = _parse_row(line, raw, errors)
        if row is None:
            continue
        if row.barcode in barcodes:
            errors.append(RowError(line, "barcode", f"same barcode as row {barcodes[row.barcode]}"))
            continue
        barcodes[row.barcode] = line
        rows.append(row)
    return rows, errors


async def category_ids_for_paths(session: AsyncSession, paths: set[tuple[str, ...]]) -> dict[tuple[str, ...], int]:
    """Resolve category paths, creating the missing ones."""
    existing = (await session.execute(select(Category.id, Category.parent_id, Category.name))).all()
    by_parent_name = {(r.parent_id, r.name): r.id for r in existing}
    resolved: dict[tuple[str, ...], int] = {}
    for path in sorted(paths):
        parent: int | None = None
        for depth, name in enumerate(path):
            cid = by_parent_name.get((parent, name))
            if cid is None:
                category = Category(name=name, parent_id=parent)
                session.add(category)
                await session.flush()
                cid = by_parent_name[(parent, name)] = category.id
            parent = cid
            resolved[path[: depth + 1]] = cid
    return resolved


async def import_catalog(session: AsyncSession, viewer: Viewer, content: str) -> ImportReport:
    """Validate the whole file first; write only when every row is good (catalog.manage)."""
    require(viewer, Perm.CATALOG_MANAGE)
    rows, errors = parse(content)
    if errors:
        return ImportReport(errors=errors)
    report = ImportReport()
    categories = await category_ids_for_paths(session, {r.category_path for r in rows})
    barcodes = [r.barcode for r in rows]
    existing: dict[str, Sku] = {}
    for start in range(0, len(barcodes), 500):
        chunk = barcodes[start : start + 500]
        existing.update(
            {s.barcode: s for s in (await session.scalars(select(Sku).where(Sku.barcode.in_(chunk)))).all()}
        )
    library = {
        (p.category_id, p.name): p
        for p in (await session.scalars(select(Product).where(Product.owner_store_id.is_(None)))).all()
    }
    for row in rows:
        category_id = categories[row.category_path]
        sku = existing.get(row.barcode)
        if sku is not None:
            sku.base_price, sku.spec, sku.status = row.base_price, row.spec, row.status
            if row.cost_price is not None:
                sku.cost_price = row.cost_price
            sku.min_price, sku.max_price = row.min_price, row.max_price
            report.skus_updated += 1
            continue
        product = library.get((category_id, row.product))
        if product is None:
            product = Product(
                name=row.product,
                category_id=category_id,
                description=row.description,
                images=row.images,
                status=CatalogStatus.ACTIVE,
            )
            session.add(product)
            await session.flush()
            library[(category_id, row.product)] = product
            report.products_created += 1
        session.add(
            Sku(
                product_id=product.id,
                barcode=row.barcode,
                spec=row.spec,
                base_price=row.base_price,
                cost_price=row.cost_price or 0,
                min_price=row.min_price,
                max_price=row.max_price,
                status=row.status,
            )
        )
        report.skus_created += 1
    await session.flush()
    return report


async def export_catalog(session: AsyncSession, viewer: Viewer) -> str:
    """Every library SKU as one CSV row, in the import's own format (catalog.manage; cost prices only with
    catalog.view_cost)."""
    require(viewer, Perm.CATALOG_MANAGE)
    include_cost = viewer.can(Perm.CATALOG_VIEW_COST)
    categories = {r.id: (r.parent_id, r.name) for r in (await session.execute(select(Category))).scalars()}

    def path(cid: int) -> str:
        names: list[str] = []
        cursor: int | None = cid
        while cursor is not None:
            parent, name = categories[cursor]
            names.append(name)
            cursor = parent
        return "/".join(reversed(names))

    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    result = await session.execute(
        select(Product, Sku)
        .join(Sku, Sku.product_id == Product.id)
        .where(Product.owner_store_id.is_(None))
        .order_by(Product.id, Sku.id)
    )
    for product, sku in result:
        writer.writerow(
            {
                "product": product.name,
                "category": path(product.category_id),
                "barcode": sku.barcode,
                "spec": ";".join(f"{k}={v}" for k, v in sku.spec.items()),
                "base_price": fen_to_yuan(sku.base_price),
                "cost_price": fen_to_yuan(sku.cost_price) if include_cost else "",
                "min_price": fen_to_yuan(sku.min_price),
                "max_price": fen_to_yuan(sku.max_price),
                "status": sku.status.value,
                "description": product.description or "",
                "images": " ".join(product.images),
            }
        )
    return out.getvalue()
