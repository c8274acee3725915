"""Throw-away databases for tests and benchmarks: a SQLite file, or a PostgreSQL schema.

Pytest-free on purpose, so bench/ scripts use the same thing the test fixtures do.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, text

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
# Each scratch schema leaves a few hundred dead rows in the system catalogs when it is
# dropped.  Autovacuum would clear them; the CI server here runs with autovacuum off, where
# they piled up (469k dead rows in pg_attribute after a few sessions) and slowed every test
# and benchmark on PostgreSQL.  Past this many, the catalogs are vacuumed before a new one.
CATALOG_DEAD_ROWS = 100_000
CATALOGS = (
    "pg_attribute",
    "pg_class",
    "pg_type",
    "pg_depend",
    "pg_index",
    "pg_constraint",
    "pg_trigger",
)


@contextmanager
def scratch_database(kind: str, pg_url: str = PG_URL, folder: Path | None = None) -> Iterator[str]:
    """A URL to an empty database of its own, removed afterwards."""
    if kind == "sqlite":
        if folder is not None:
            yield f"sqlite:///{folder / 'dutybot.db'}"
            return
        with tempfile.TemporaryDirectory(prefix="dutybot-") as temporary:
            yield f"sqlite:///{Path(temporary) / 'dutybot.db'}"
        return
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(pg_url)
    _vacuum_catalogs(admin)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in pg_url else "?"
    try:
        yield f"{pg_url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            # a transaction the code under test left open (a leaked session) holds locks in
            # the schema: fail loudly instead of waiting for it forever
            conn.execute(text("SET LOCAL lock_timeout = '20s'"))
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _vacuum_catalogs(admin: Engine) -> None:
    """Do what autovacuum would for the catalogs scratch schemas churn, when it is off."""
    with admin.connect() as conn:
        dead = conn.execute(
            text(
                "SELECT coalesce(sum(n_dead_tup), 0) FROM pg_stat_sys_tables "
                "WHERE schemaname = 'pg_catalog' AND relname = ANY(:names)"
            ),
            {"names": list(CATALOGS)},
        ).scalar_one()
    if dead < CATALOG_DEAD_ROWS:
        return
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f"VACUUM {', '.join(f'pg_catalog.{name}' for name in CATALOGS)}"))
