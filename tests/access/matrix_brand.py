"""The access matrix rows for brand templates and store pages."""

from __future__ import annotations

from typing import Any

from models import PageKind
from services.brand import pages, templates
from services.brand.templates import Item, ItemKind, Section, SectionKind, TemplateSpec
from services.platform.db import write_transaction
from tests.conftest import gid
from tests.factories import HQ

NOTICE = Section("notice", SectionKind.STORE_NOTICE, store_fillable=True, max_items=1, allowed_kinds=(ItemKind.TEXT,))
MENU = Section("menu", SectionKind.MENU, max_items=10)


async def given_template(chain, state, *, publish: bool = True, draft: bool = False) -> dict[str, Any]:
    """HQ's store page template (a notice the store may fill, and the menu), published; optionally a new draft."""
    async with write_transaction(state.sessionmaker) as session:
        await templates.save_draft(session, HQ, TemplateSpec(PageKind.STORE, [NOTICE, MENU]))
        if publish:
            await templates.publish(session, HQ, PageKind.STORE)
        if draft:
            await templates.save_draft(session, HQ, TemplateSpec(PageKind.STORE, [MENU]))
    return {"store": gid("Store", chain.stores["SH01"])}


async def given_draft_page(chain, state, *, submit: bool = False) -> dict[str, Any]:
    """SH01's draft page (a notice) in the published template; optionally submitted for approval."""
    base = await given_template(chain, state)
    async with write_transaction(state.sessionmaker) as session:
        slot = pages.Slot("notice", [Item(ItemKind.TEXT, text="今日营业至22点")])
        page = await pages.save_draft(session, HQ, store_id=chain.stores["SH01"], kind=PageKind.STORE, slots=[slot])
        if submit:
            await pages.submit(session, HQ, store_id=chain.stores["SH01"], kind=PageKind.STORE)
    return {**base, "id": gid("StorePage", page.id)}


async def _draft_template(chain, state):
    return await given_template(chain, state, publish=True, draft=True)


async def _pending(chain, state):
    return await given_draft_page(chain, state, submit=True)


def brand_ops(Op, only, ALL, STAFF):
    """Rows for the access matrix (built by the matrix module, which owns Op and the viewer sets)."""
    BRAND = ("hq_operator", "hq_admin")
    PAGE_EDIT = ("store_manager", "hq_admin")
    slots = '[{key: "notice", items: [{kind: TEXT, text: "周末营业至23点"}]}]'
    return [
        Op(
            "storePage",
            "query($store: ID!) { storePage(storeId: $store) { sections { key } } }",
            ALL,
            given_template,
        ),
        Op("pageTemplates", "{ pageTemplates { edges { node { version } } } }", only(*BRAND)),
        Op(
            "storePages",
            "{ storePages { edges { node { status } } } }",
            only("store_manager", "hq_operator", "hq_admin"),
        ),
        Op(
            "savePageTemplate",
            'mutation { savePageTemplate(input: {kind: STORE, sections: [{key: "menu", kind: MENU}]}) '
            "{ errors { code } } }",
            only(*BRAND),
            payload="savePageTemplate",
        ),
        Op(
            "publishPageTemplate",
            "mutation { publishPageTemplate(input: {kind: STORE}) { errors { code } } }",
            only(*BRAND),
            _draft_template,
            payload="publishPageTemplate",
        ),
        Op(
            "rollBackPageTemplate",
            "mutation { rollBackPageTemplate(input: {kind: STORE, version: 1}) { errors { code } } }",
            only(*BRAND),
            _draft_template,
            payload="rollBackPageTemplate",
        ),
        Op(
            "saveStorePage",
            f"mutation($store: ID!) {{ saveStorePage(input: {{storeId: $store, slots: {slots}}}) {{ errors {{ code }} }} }}",
            only(*PAGE_EDIT),
            given_template,
            payload="saveStorePage",
        ),
        Op(
            "submitStorePage",
            "mutation($store: ID!) { submitStorePage(input: {storeId: $store}) { errors { code } } }",
            only(*PAGE_EDIT),
            given_draft_page,
            payload="submitStorePage",
        ),
        Op(
            "decideStorePage",
            "mutation($id: ID!) { decideStorePage(input: {id: $id, approve: true}) { errors { code } } }",
            only(*BRAND),
            _pending,
            payload="decideStorePage",
        ),
    ]
