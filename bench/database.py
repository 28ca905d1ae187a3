"""The benches' own PostgreSQL databases: created on first use, so each bench runs on a fresh machine as
its docstring says, without a manual `createdb`."""

from __future__ import annotations

from urllib.parse import urlsplit


def ensure_database(url: str) -> None:
    """Create the database `url` names if PostgreSQL does not have it yet (connecting to `postgres`)."""
    import psycopg
    from psycopg import sql

    parts = urlsplit(url)
    if not parts.scheme.startswith("postgres"):
        return
    name = parts.path.lstrip("/")
    admin = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
