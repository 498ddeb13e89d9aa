"""Operator commands: `python -m services.cli migrate | seed-demo | run-jobs`."""

from __future__ import annotations

import argparse
import asyncio
import sys

from services.access.keys import load_keys
from services.access.roles import sync_builtin_roles
from services.access.security import Security
from services.orders.payments import configured_providers
from services.platform.config import Settings
from services.platform.db import create_engine, create_sessionmaker
from services.platform.events import create_broker
from services.platform.jobs import fold_facts, run_due
from services.platform.migrate import upgrade
from services.seed import DEMO_REFUSED, demo_sign_ins, seed_demo, seed_demo_catalog


async def _migrate(settings: Settings) -> None:
    engine = create_engine(settings.database_url)
    try:
        await upgrade(engine)
        async with create_sessionmaker(engine)() as session, session.begin():
            await sync_builtin_roles(session)
    finally:
        await engine.dispose()
    print(f"migrated {engine.url.render_as_string(hide_password=True)}")


async def _seed(settings: Settings) -> None:
    engine = create_engine(settings.database_url)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            created = await seed_demo(session, Security(settings, load_keys(settings)))
            await seed_demo_catalog(session)
    finally:
        await engine.dispose()
    print("demo chain loaded" if created else "database already has stores; demo chain left as it is")
    print("demo sign-ins (username / password / role / store):")
    for s in demo_sign_ins():
        print(f"  {s.username:<14} {s.password}  {s.role:<14} {s.store or 'HQ'}")
    print('members sign in with memberSignIn(input: {provider: "local", code: "any-name:13800138000"})')


async def _run_jobs(settings: Settings) -> None:
    """Due jobs, with the app's payment providers and broker: a job refunds and announces as the app does."""
    engine = create_engine(settings.database_url)
    broker = create_broker(settings.redis_url)
    providers = configured_providers(production=settings.is_production, secret=load_keys(settings).pii_key)
    try:
        sessionmaker = create_sessionmaker(engine)
        ran = await run_due(sessionmaker, broker=broker, providers=providers)
        folded = await fold_facts(sessionmaker)
    finally:
        await broker.close()
        await engine.dispose()
    print(f"ran {ran} due jobs; folded {folded} report events")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m services.cli")
    parser.add_argument("command", choices=["migrate", "seed-demo", "run-jobs"])
    args = parser.parse_args()
    settings = Settings.from_env()
    if args.command == "migrate":
        asyncio.run(_migrate(settings))
    elif args.command == "run-jobs":
        asyncio.run(_run_jobs(settings))
    elif not settings.seed_demo:
        print("SEED_DEMO=0: demo chain not loaded")
    elif settings.is_production:
        print(f"error: {DEMO_REFUSED} (SEED_DEMO=0 skips this step)", file=sys.stderr)
        sys.exit(2)
    else:
        asyncio.run(_seed(settings))


if __name__ == "__main__":
    main()
