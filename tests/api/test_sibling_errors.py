"""A field refused inside a query does not take its siblings down: data for what is allowed, an error for the rest."""

from __future__ import annotations

import pytest

from tests.conftest import gid
from tests.marketing_givens import given_menu

TWICE = """{ a: store(id: "%s") { stockLevels(first: 5) { edges { node { isLow } } } }
  b: store(id: "%s") { staff { id } stockLevels(first: 5) { edges { node { isLow } } } } }"""


@pytest.mark.postgres_too
async def test_a_forbidden_sibling_does_not_cancel_a_shared_loader_load(api, state, chain):
    """`b.staff` is FORBIDDEN for a clerk (non-null, so graphql-core cancels `b`'s other fields); `b.stockLevels`
    waited on the same loader future as `a.stockLevels`, which must still answer (was a 500, CancelledError)."""
    await given_menu(state, chain)
    store = gid("Store", chain.stores["SH01"])
    for _ in range(5):
        response = await api.post(TWICE % (store, store), token=await api.token("sh01.clerk"))
        assert response.status_code == 200
        body = response.json()
        assert [e["node"]["isLow"] for e in body["data"]["a"]["stockLevels"]["edges"]] == [False, False, False]
        assert body["data"]["b"] is None
        assert [(e["path"], e["extensions"]["code"]) for e in body["errors"]] == [(["b", "staff"], "FORBIDDEN")]
