"""Throw-away databases for tests and benchmarks: a SQLite file, or a PostgreSQL schema.

Pytest-free on purpose, so bench/ scripts use the same thing the test fixtures do.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


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
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in pg_url else "?"
    try:
        yield f"{pg_url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
