"""Operations: /metrics in Prometheus format, and structured logs carrying the operation and the request id."""

from __future__ import annotations

import io
import logging
from dataclasses import replace

import httpx
import orjson
import pytest

from app import create_app
from services.platform.logs import JsonFormatter


@pytest.mark.postgres_too
async def test_metrics_count_operations_by_name_and_outcome_and_show_the_pool(api, state):
    # Labelled by operation name when it is a trusted document's (here the HQ console's "Stores"), else "other".
    await api.gql("query Stores { stores(first: 1) { edges { cursor } } }", as_="hq.admin")
    await api.gql("query Stores { stores(first: 1) { edges { nosuchfield } } }", as_="hq.admin")
    await api.gql("{ stores(first: 1) { edges { cursor } } }", as_="hq.admin")
    page = await api.http.get("/metrics")
    text = page.text
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/plain")
    assert 'chain_graphql_operations_total{operation="Stores",outcome="ok",type="query"} 1.0' in text
    assert 'chain_graphql_operations_total{operation="Stores",outcome="error",type="query"} 1.0' in text
    assert 'chain_graphql_operations_total{operation="other",outcome="ok",type="query"} 1.0' in text
    assert 'chain_graphql_operation_seconds_count{operation="Stores",type="query"}' in text
    assert "chain_db_pool_checked_out" in text and 'chain_http_requests_total{method="POST",route="/graphql"' in text


async def test_metrics_can_require_the_scrapers_token(state):
    guarded = replace(state, settings=replace(state.settings, metrics_token="scrape-me"))
    app = create_app(state=guarded)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ops") as http:
        assert (await http.get("/metrics")).status_code == 401
        assert (await http.get("/metrics", headers={"authorization": "Bearer scrape-me"})).status_code == 200


async def test_every_log_line_carries_the_operation_and_the_request_id(api):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("chain.graphql")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        await api.http.post(
            "/graphql",
            json={"query": "query StoreList { stores(first: 1) { edges { cursor } } }"},
            headers={"x-request-id": "req-12345678"},
        )
    finally:
        logger.removeHandler(handler)
    lines = [orjson.loads(line) for line in stream.getvalue().splitlines()]
    done = next(line for line in lines if line["message"].startswith("query StoreList"))
    assert done["operation"] == "StoreList" and done["request_id"] == "req-12345678"
    assert done["outcome"] == "ok" and done["duration_ms"] >= 0
