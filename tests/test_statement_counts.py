"""The number of SQL statements depends on a query's depth, not on how many stores it returns."""

from __future__ import annotations

from models import Staff, Store, StoreStatus
from tests.conftest import count_statements

DEEP = "query($n: Int!) { stores(first: $n) { edges { node { code staff { username role { name } } manager { username } } } } }"


async def _grow_chain_to(state, chain, total: int) -> None:
    async with state.sessionmaker() as session, session.begin():
        for i in range(len(chain.stores), total):
            store = Store(code=f"X{i:03d}", name=f"Store {i}", city="上海", address="addr", lat=31.0, lng=121.0,
                          status=StoreStatus.OPEN, hours=[])  # fmt: skip
            session.add(store)
            await session.flush()
            for suffix, role in (("manager", "STORE_MANAGER"), ("clerk", "CLERK")):
                session.add(Staff(username=f"x{i:03d}.{suffix}", display_name=suffix, password_hash="x",
                                  role_id=chain.roles[role], store_id=store.id))  # fmt: skip


async def test_stores_with_staff_and_roles_take_the_same_statements_for_5_and_50_stores(api, state, chain):
    await _grow_chain_to(state, chain, 50)
    token = await api.token("hq.admin")
    counts = {}
    for n in (5, 50):
        with count_statements(state.engine) as counter:
            body = (await api.post(DEEP, {"n": n}, token=token)).json()
        assert "errors" not in body
        edges = body["data"]["stores"]["edges"]
        assert len(edges) == n
        assert all(len(e["node"]["staff"]) == 2 and e["node"]["manager"] for e in edges)
        counts[n] = counter.count
    assert counts[5] == counts[50]
    # Viewer check, stores page, staff by store, roles by id.
    assert counts[50] <= 4, counts


async def test_audit_log_with_actor_and_store_is_constant_in_statements(api, state, chain):
    token = await api.token("hq.admin")
    for username in ["sh01.clerk", "sh02.clerk", "hz01.clerk", "sz01.clerk"] * 5:
        await api.login(username)
    query = "query($n: Int!) { auditLogs(first: $n) { edges { node { operation actor { username role { code } } store { code } } } } }"
    counts = {}
    for n in (2, 20):
        with count_statements(state.engine) as counter:
            body = (await api.post(query, {"n": n}, token=token)).json()
        assert len(body["data"]["auditLogs"]["edges"]) == n
        counts[n] = counter.count
    assert counts[2] == counts[20], counts
