"""Locust users for the load bench; bench/load.py sets SCENARIO (and the tokens and ids) and runs one at a time."""

from __future__ import annotations

import json
import os
import random
import uuid

from locust import FastHttpUser, constant, task

SCENARIO = os.environ.get("SCENARIO", "menu")
CONFIG = json.loads(os.environ.get("BENCH_CONFIG", "{}"))


class Client(FastHttpUser):
    wait_time = constant(0)

    def _graphql(self, name: str, query: str, variables: dict[str, object], token: str | None) -> None:
        headers = {"content-type": "application/json"}
        if token:
            headers["authorization"] = f"Bearer {token}"
        with self.client.post(
            "/graphql",
            data=json.dumps({"query": query, "variables": variables}),
            headers=headers,
            name=name,
            catch_response=True,
        ) as response:
            body = response.json() if response.status_code == 200 else {}
            if response.status_code != 200 or body.get("errors") or _payload_errors(body):
                response.failure(str(body)[:300] or response.status_code)

    @task
    def call(self) -> None:
        c = CONFIG
        store = random.choice(c["stores"])
        if SCENARIO == "menu":
            self._graphql("menu", c["menu"], {"s": store}, c["member"])
        elif SCENARIO == "menu_baseline":
            self.client.get(f"/menu?store={c['store_pks'][c['stores'].index(store)]}", name="menu_baseline")
        elif SCENARIO == "stores":
            self._graphql("stores", c["stores_doc"], {}, c["hq"])
        elif SCENARIO == "stores_baseline":
            self.client.get("/stores", name="stores_baseline")
        elif SCENARIO == "quote":
            self._graphql(
                "quote",
                c["quote"],
                {"s": store, "l": [{"skuId": random.choice(c["skus"]), "quantity": 1}]},
                c["member"],
            )
        elif SCENARIO == "place_order":
            self._graphql(
                "placeOrder",
                c["place"],
                {"s": store, "k": random.choice(c["skus"]), "key": uuid.uuid4().hex},
                c["member"],
            )
        elif SCENARIO == "flash_hot":
            self._graphql(
                "flash_hot",
                c["place_flash"],
                {"s": c["flash_store"], "k": c["flash_sku"], "f": c["flash_id"], "key": uuid.uuid4().hex},
                c["member"],
            )
        elif SCENARIO == "flash_spread":
            self._graphql(
                "flash_spread",
                c["place"],
                {"s": c["flash_store"], "k": random.choice(c["skus"]), "key": uuid.uuid4().hex},
                c["member"],
            )
        elif SCENARIO == "pos":
            self._graphql(
                "posCheckout", c["pos"], {"s": store, "k": random.choice(c["skus"]), "key": uuid.uuid4().hex}, c["hq"]
            )
        elif SCENARIO == "hq_dashboard":
            self._graphql("hq_dashboard", c["dashboard"], {}, c["hq"])
        elif SCENARIO == "store_dashboard":
            self._graphql("store_dashboard", c["store_dashboard"], {"s": store}, c["hq"])


def _payload_errors(body: dict) -> bool:
    return any(isinstance(value, dict) and value.get("errors") for value in (body.get("data") or {}).values())
