"""Snapshot and scratch copies of the database, through the PostgreSQL client tools or SQLite."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection

from liaison.services.backups.envelope import PG_DUMP_NAME, SQLITE_NAME, BackupError, _safe_member


def _owner_connection() -> Any:
    """The table owner's connection when one is configured (DATABASE_MIGRATE_URL, the "owner"
    alias): it may dump everything and create the scratch database; the servers' own role may
    not. Otherwise the default connection."""
    from django.db import connections

    return connections["owner"] if "owner" in settings.DATABASES else connection


def _pg_environment(settings_dict: dict[str, Any], name: str | None = None) -> dict[str, str]:
    """libpq variables for pg_dump/pg_restore: the password never on a command line."""
    env = dict(os.environ)
    values = {
        "PGHOST": settings_dict.get("HOST") or "",
        "PGPORT": str(settings_dict.get("PORT") or ""),
        "PGUSER": settings_dict.get("USER") or "",
        "PGPASSWORD": settings_dict.get("PASSWORD") or "",
        "PGDATABASE": name or settings_dict.get("NAME") or "",
        "PGSSLMODE": (settings_dict.get("OPTIONS") or {}).get("sslmode", ""),
    }
    env.update({key: value for key, value in values.items() if value})
    return env


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(
            f"{name} is not installed: install the PostgreSQL client of the server's major "
            "version (the image has it)."
        )
    return found


def _run(command: list[str], env: dict[str, str], what: str) -> None:
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        problem = (result.stderr or result.stdout).strip().splitlines()
        raise BackupError(f"{what} failed: {problem[-1] if problem else result.returncode}")


def _dump_database(work: Path) -> tuple[str, Path]:
    """A consistent snapshot of the database into ``work``: (manifest name, file)."""
    owner = _owner_connection()
    owner.ensure_connection()
    if owner.vendor == "postgresql":
        target = work / "liaison.pgdump"
        # One transaction at REPEATABLE READ: every table as of the same instant.
        _run(
            [
                _tool("pg_dump"),
                "--format=custom",
                "--no-owner",
                "--no-privileges",
                f"--file={target}",
            ],
            _pg_environment(owner.settings_dict),
            "pg_dump",
        )
        return PG_DUMP_NAME, target
    if connection.vendor == "sqlite":
        target = work / "liaison.sqlite3"
        source = sqlite3.connect(connection.settings_dict["NAME"])
        copy = sqlite3.connect(target)
        try:
            source.backup(copy)  # SQLite's online backup: a consistent copy while in use
        finally:
            copy.close()
            source.close()
        return SQLITE_NAME, target
    raise BackupError(f"Backups support PostgreSQL and SQLite, not {connection.vendor}.")


def _pg_params(settings_dict: dict[str, Any], dbname: str) -> dict[str, Any]:
    params: dict[str, Any] = {"dbname": dbname}
    for key, name in (
        ("HOST", "host"),
        ("PORT", "port"),
        ("USER", "user"),
        ("PASSWORD", "password"),
    ):
        if settings_dict.get(key):
            params[name] = settings_dict[key]
    if (settings_dict.get("OPTIONS") or {}).get("sslmode"):
        params["sslmode"] = settings_dict["OPTIONS"]["sslmode"]
    return params


def _pg_admin(sql: str) -> None:
    import psycopg

    params = _pg_params(_owner_connection().settings_dict, "postgres")
    with psycopg.connect(**params, autocommit=True) as admin:
        admin.execute(sql)


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _database_url(settings_dict: dict[str, Any], name: str) -> str:
    from urllib.parse import quote

    user = quote(settings_dict.get("USER") or "", safe="")
    password = quote(settings_dict.get("PASSWORD") or "", safe="")
    credentials = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = settings_dict.get("HOST") or "localhost"
    port = f":{settings_dict['PORT']}" if settings_dict.get("PORT") else ""
    return f"postgres://{credentials}{host}{port}/{quote(name, safe='')}"


@contextlib.contextmanager
def scratch_database(unpacked: Path, manifest: dict[str, Any], *, keep: bool) -> Iterator[str]:
    """Restore the snapshot into a new database; yields its DATABASE_URL, drops it after."""
    vendor = manifest["database"]["vendor"]
    dump = unpacked / _safe_member(manifest["database"]["file"])
    if vendor == "sqlite":
        target = unpacked / "restored.sqlite3"
        shutil.copyfile(dump, target)
        yield f"sqlite:///{target}"
        return
    if vendor != "postgresql":
        raise BackupError(f"The backup holds a {vendor} database, which cannot be restored here.")
    if connection.vendor != "postgresql":
        raise BackupError("A PostgreSQL backup is restore-checked with DATABASE_URL on PostgreSQL.")
    name = f"liaison_restore_check_{secrets.token_hex(6)}"
    _pg_admin(f"CREATE DATABASE {_quote_ident(name)}")
    try:
        _run(
            [
                _tool("pg_restore"),
                "--no-owner",
                "--no-privileges",
                "--exit-on-error",
                "--single-transaction",
                f"--dbname={name}",
                str(dump),
            ],
            _pg_environment(_owner_connection().settings_dict, name),
            "pg_restore",
        )
        yield _database_url(_owner_connection().settings_dict, name)
    finally:
        if not keep:
            _pg_admin(f"DROP DATABASE IF EXISTS {_quote_ident(name)} WITH (FORCE)")
