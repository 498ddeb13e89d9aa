"""Backups that restore: SQLite through its online backup API, PostgreSQL through pg_dump and pg_restore.

SQLite's backup API copies pages from a live database and restarts when a writer changes one it has copied, so the
copy is one consistent snapshot taken while the app serves and writes. PostgreSQL's pg_dump reads one snapshot in a
repeatable-read transaction; its custom format restores with pg_restore (--clean drops what is there first).
After a restore, `python -m services.cli check` proves the copy holds together (services/integrity.py).
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from pathlib import Path

from sqlalchemy.engine import make_url


class BackupError(Exception):
    """A backup or restore could not run; the message says what to do."""


def _sqlite_path(url: str) -> Path | None:
    parsed = make_url(url)
    if not parsed.get_backend_name().startswith("sqlite"):
        return None
    if not parsed.database or parsed.database == ":memory:":
        raise BackupError("an in-memory SQLite database has nothing to back up")
    return Path(parsed.database)


def _libpq(url: str) -> str:
    """The SQLAlchemy URL as libpq takes it (no driver name), for pg_dump and pg_restore."""
    parsed = make_url(url).set(drivername="postgresql")
    return parsed.render_as_string(hide_password=False)


def _tool(name: str) -> str:
    found = shutil.which(name)
    if not found:
        raise BackupError(f"{name} is not on PATH: install the PostgreSQL client of the server's major version")
    return found


def _copy_sqlite(source: Path, target: Path, *, pages: int = 256) -> None:
    """Copy one SQLite database into another with the online backup API, a few pages at a time."""
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst, pages=pages)
    # sqlite3's context manager commits but does not close
    src.close()
    dst.close()


def backup(url: str, path: Path) -> Path:
    """Write a consistent copy of the database at `url` to `path` (a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    source = _sqlite_path(url)
    if source is not None:
        if not source.exists():
            raise BackupError(f"no database at {source}")
        tmp = path.with_name(path.name + ".part")
        tmp.unlink(missing_ok=True)
        _copy_sqlite(source, tmp)
        tmp.replace(path)  # a reader never finds half a backup under the final name
        return path
    # No shell; the arguments are the operator's own URL and path.
    run = subprocess.run(  # noqa: S603
        [_tool("pg_dump"), "--format=custom", "--no-owner", f"--file={path}", f"--dbname={_libpq(url)}"],
        capture_output=True,
        text=True,
    )
    if run.returncode != 0:
        raise BackupError(f"pg_dump failed: {run.stderr.strip()}")
    return path


def restore(url: str, path: Path) -> None:
    """Replace the database at `url` with the backup at `path`. Stop the app first: restore is not a live swap."""
    if not path.exists():
        raise BackupError(f"no backup at {path}")
    target = _sqlite_path(url)
    if target is not None:
        target.parent.mkdir(parents=True, exist_ok=True)
        for suffix in ("-wal", "-shm"):
            Path(str(target) + suffix).unlink(missing_ok=True)
        _copy_sqlite(path, target)
        return
    # No shell; the arguments are the operator's own URL and path.
    run = subprocess.run(  # noqa: S603
        [
            _tool("pg_restore"),
            "--clean",
            "--if-exists",
            "--no-owner",
            "--single-transaction",
            f"--dbname={_libpq(url)}",
            str(path),
        ],
        capture_output=True,
        text=True,
    )
    if run.returncode != 0:
        raise BackupError(f"pg_restore failed: {run.stderr.strip()}")
