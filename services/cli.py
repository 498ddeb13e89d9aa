"""Operator commands: `python -m services.cli migrate | seed-demo | run-jobs | backup PATH | restore PATH | check`."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from services.access.keys import load_keys
from services.access.roles import sync_builtin_roles
from services.access.security import Security
from services.analytics.facts import refresh_all
from services.integrity import check_database, report
from services.platform.backup import BackupError, backup, restore
from services.platform.config import Settings
from services.platform.db import create_engine, create_sessionmaker
from services.platform.events import create_broker
from services.platform.jobs import run_due
from services.platform.migrate import upgrade
from services.platform.payments import configured_providers
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
        folded = await refresh_all(sessionmaker, broker)
    finally:
        await broker.close()
        await engine.dispose()
    print(f"ran {ran} due jobs; folded {folded} report events")


async def _check(settings: Settings) -> bool:
    engine = create_engine(settings.database_url)
    try:
        async with create_sessionmaker(engine)() as session:
            results = await check_database(session)
    finally:
        await engine.dispose()
    print(report(results))
    return all(check.ok for check in results)


def _backups(command: str, path: Path | None, settings: Settings) -> None:
    """backup PATH, restore PATH, check: exit 1 when check finds a broken rule, 2 when a command cannot run."""
    try:
        if command == "backup" and path:
            print(f"backed up to {backup(settings.database_url, path)}")
        elif command == "restore" and path:
            restore(settings.database_url, path)
            print(f"restored from {path}; run `python -m services.cli check` before serving")
        elif command == "check":
            if not asyncio.run(_check(settings)):
                sys.exit(1)
        else:
            print(f"error: {command} needs a PATH", file=sys.stderr)
            sys.exit(2)
    except BackupError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m services.cli")
    parser.add_argument("command", choices=["migrate", "seed-demo", "run-jobs", "backup", "restore", "check"])
    parser.add_argument("path", nargs="?", type=Path, help="the backup file (backup, restore)")
    args = parser.parse_args()
    settings = Settings.from_env()
    if args.command in ("backup", "restore", "check"):
        _backups(args.command, args.path, settings)
    elif args.command == "migrate":
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
