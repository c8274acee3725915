"""Engine, sessions and migrations.  SQLite (WAL) by default; PostgreSQL the same way."""

from __future__ import annotations

import functools
import itertools
import re
import struct
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, event
from sqlalchemy.engine import make_url
from sqlmodel import Session, create_engine

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def normalise_url(url: str) -> str:
    """Accept the plain ``postgresql://`` spelling and use psycopg 3 for it."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


# SQLite checkpoints its write-ahead log on the commit that takes the log past this many
# pages (its default, 1,000 pages = 4 MiB, came every other batch of a tick with 1,000 due:
# that commit copied the log into the database and synced it, ~7 ms each).  The runtime
# checkpoints in a job of its own instead (:func:`checkpoint`; https://sqlite.org/wal.html,
# "Application-Initiated Checkpoints"); this is the backstop when nothing else does (a CLI
# import), and the log is cut back to this size afterwards.
WAL_CHECKPOINT_PAGES = 16384
WAL_SIZE_LIMIT = WAL_CHECKPOINT_PAGES * 4096


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
    cursor.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
    cursor.close()


def checkpoint(engine: Engine) -> None:
    """Copy SQLite's write-ahead log into the database, blocking no reader or writer
    (PASSIVE: it stops where a reader still needs the log); nothing to do on PostgreSQL."""
    if engine.dialect.name != "sqlite":
        return
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")


def make_engine(url: str, **kwargs: Any) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


def _alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply migrations; called at every start, so a new version never meets an old schema.

    On SQLite, Alembic's batch mode rebuilds a table to alter it (copy, drop, rename), which
    foreign-key enforcement would refuse while other rows point at it: enforcement is off for
    the migration and the whole store is checked with ``foreign_key_check`` before commit."""
    cfg = _alembic_config()
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as connection:
        if sqlite:
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")  # outside any transaction
            connection.commit()
        try:
            with connection.begin():
                cfg.attributes["connection"] = connection
                command.upgrade(cfg, revision)
                if sqlite:
                    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
                    if broken:
                        raise RuntimeError(f"migration left dangling references: {broken[:5]}")
        finally:
            if sqlite:
                connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                connection.commit()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


def open_store(url: str, **kwargs: Any) -> Engine:
    """An engine on an up-to-date schema."""
    engine = make_engine(url, **kwargs)
    if current_revision(engine) != head_revision():
        upgrade(engine)
    return engine


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One transaction: committed when the block ends, rolled back on any error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def bulk_insert(
    session: Session, model: Any, rows: Iterable[dict[str, Any]], *, on_conflict: list[str] | None
) -> int:
    """Insert many rows at once, skipping those whose ``on_conflict`` columns exist already
    (``None``: rows that cannot collide, a conflict is an error); returns how many were new.

    ``rows`` may be a generator: on PostgreSQL, many rows are COPYed as it yields them, so
    the server inserts one batch while the caller computes the next (the generator must not
    use the session meanwhile: the connection is in the middle of a COPY).  Many rows given
    as a list, with ``on_conflict``, are COPYed straight into the table once the keys that
    exist are known (:func:`_absent`, :func:`_copy_unless_taken`).

    Why not SQLAlchemy's executemany here: on psycopg it renders one huge multi-VALUES
    statement that psycopg then parses (most of a 1,000-row tick went there) and reports no
    rowcount; psycopg's own ``executemany`` of one small statement is several times faster
    and counts.  SQLite's executemany is fast through SQLAlchemy already."""
    table = model.__table__
    dialect = session.get_bind().dialect
    stream = iter(rows)
    first = list(itertools.islice(stream, _COPY_FROM))
    if not first:
        return 0
    names = list(first[0])
    if dialect.name != "postgresql":
        every = first + list(stream)
        sql = (
            f"INSERT INTO {table.name} ({', '.join(names)}) "
            f"VALUES ({', '.join('?' for _ in names)}){_skip(on_conflict)}"
        )
        params = list(zip(*_bound_columns(table, names, every, dialect), strict=True))
        return int(session.connection().exec_driver_sql(sql, params).rowcount or 0)
    columns = ", ".join(names)
    connection = session.connection()
    if len(first) < _COPY_FROM:
        sql = (
            f"INSERT INTO {table.name} ({columns}) "
            f"VALUES ({', '.join(f'%({n})s' for n in names)}){_skip(on_conflict)}"
        )
        params = _pg_params(table, names, first)
        return int(connection.exec_driver_sql(sql, params).rowcount or 0)
    batches = itertools.chain(
        [first], iter(lambda: list(itertools.islice(stream, _COPY_CHUNK)), [])
    )
    driver = connection.connection.driver_connection
    if on_conflict is None:  # nothing to skip: COPY straight into the table
        with driver.cursor() as cursor:  # type: ignore[union-attr]
            return _copy(cursor, table, names, batches)
    if isinstance(rows, list):  # all at hand: leave out what exists, COPY the rest straight in
        fresh = _absent(connection, table, on_conflict, rows)
        if not fresh:
            return 0
        chunks = [fresh[i : i + _COPY_CHUNK] for i in range(0, len(fresh), _COPY_CHUNK)]
        if _copy_unless_taken(driver, table, names, chunks):
            return len(fresh)
        batches = iter(chunks)  # a concurrent writer took a key meanwhile: skip it as below
    # Many rows: COPY into a scratch table, then one INSERT … SELECT keeps ON CONFLICT's
    # semantics (COPY itself has none); psycopg's pipelined executemany spent most of an
    # import of 100k occurrences in its per-row round of dumping and queueing.
    scratch = f"_bulk_{table.name}"
    connection.exec_driver_sql(f"DROP TABLE IF EXISTS {scratch}")  # its columns are this call's
    connection.exec_driver_sql(
        f"CREATE TEMP TABLE {scratch} ON COMMIT DROP AS "
        f"SELECT {columns} FROM {table.name} WITH NO DATA"
    )
    with driver.cursor() as cursor:  # type: ignore[union-attr]
        _copy(cursor, table, names, batches, into=scratch)
    result = connection.exec_driver_sql(
        f"INSERT INTO {table.name} ({columns}) SELECT {columns} FROM {scratch}{_skip(on_conflict)}"
    )
    return int(result.rowcount or 0)


def _absent(
    connection: Any, table: Any, on_conflict: list[str], rows: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The rows whose ``on_conflict`` columns neither exist in ``table`` nor came earlier in
    ``rows`` (the first of a key wins, as ON CONFLICT DO NOTHING decides); one query, by the
    unique index, for the lot."""
    values, params = _unnest(connection, table, {n: [row[n] for row in rows] for n in on_conflict})
    sql = (
        f"SELECT {', '.join(f't.{n}' for n in on_conflict)} FROM {table.name} AS t "
        f"JOIN {values} ON {_matching(connection, on_conflict)}"
    )
    seen = {tuple(found) for found in connection.exec_driver_sql(sql, params)}
    fresh = []
    for row in rows:
        key = tuple(row[n] for n in on_conflict)
        if None in key:  # NULLs never conflict in a unique index
            fresh.append(row)
        elif key not in seen:
            seen.add(key)
            fresh.append(row)
    return fresh


def _unnest(
    connection: Any, table: Any, columns: dict[str, list[Any]]
) -> tuple[str, dict[str, Any]]:
    """``unnest(…) AS v(…)``: the given columns' values as rows of ``v``, one array parameter
    per column (``%(c0)b::type[]``…), and those parameters (:func:`_array_params`)."""
    quote = connection.dialect.identifier_preparer.quote
    arrays = ", ".join(f"%(c{i})b::{_declared(table, n)}[]" for i, n in enumerate(columns))
    names = ", ".join(quote(n) for n in columns)
    return f"unnest({arrays}) AS v({names})", _array_params(connection, table, columns)


def _matching(connection: Any, key: Iterable[str]) -> str:
    """``t.a = v.a AND …``: a row of the table ``t`` and a row of :func:`_unnest`'s ``v``."""
    quote = connection.dialect.identifier_preparer.quote
    return " AND ".join(f"t.{quote(n)} = v.{quote(n)}" for n in key)


def _array_params(connection: Any, table: Any, columns: dict[str, list[Any]]) -> dict[str, Any]:
    """The parameters of :func:`_unnest`: each column's values as one array, built here in
    PostgreSQL's binary format with each distinct value dumped once, as :func:`_copy` does.

    psycopg's own list dumping calls a dumper per element and, in the text format, escaped
    every quote of every JSON document with a regular expression; a tenth of a due tick's
    CPU went there."""
    from psycopg import pq

    driver = connection.connection.driver_connection
    if not connection.info.get("dutybot_arrays"):  # once per connection: it outlives checkouts
        driver.adapters.register_dumper(_BinaryArray, _binary_array_dumper())
        connection.info["dutybot_arrays"] = True
    params = {}
    for i, (name, values) in enumerate(columns.items()):
        element, array = _column_type(driver.adapters, table, name)
        dumper = driver.adapters.get_dumper_by_oid(element, pq.Format.BINARY)(type(None), driver)
        fields = _binary_fields(dumper, _pg_column(table, name, values))
        nulls = any(f is _BINARY_NULL for f in fields)
        header = struct.pack("!iiiii", 1, int(nulls), element, len(fields), 1)
        params[f"c{i}"] = _BinaryArray(header + b"".join(fields), array)
    return params


def _column_type(adapters: Any, table: Any, name: str) -> tuple[int, int]:
    """A column's type and its array type (oids) as the model declares it -- the casts of
    :func:`_unnest` name the same -- from psycopg's registry of PostgreSQL's own types."""
    declared = _declared(table, name)
    info = adapters.types.get(re.sub(r"\(.*\)", "", declared).strip().lower())  # varchar(200)
    if info is None:
        raise TypeError(f"{table.name}.{name}: no PostgreSQL type {declared} known to psycopg")
    return info.oid, info.array_oid


@functools.cache
def _declared(table: Any, name: str) -> str:
    """A column's type as PostgreSQL names it (``VARCHAR(200)``), compiled once per column."""
    return str(table.c[name].type.compile(dialect=_pg_dialect()))


@functools.cache
def _pg_dialect() -> Any:
    from sqlalchemy.dialects import postgresql

    return postgresql.dialect()


class _BinaryArray:
    """An array already in PostgreSQL's binary format, and its type."""

    __slots__ = ("data", "oid")

    def __init__(self, data: bytes, oid: int) -> None:
        self.data, self.oid = data, oid


@functools.cache
def _binary_array_dumper() -> Any:
    from psycopg import pq
    from psycopg.adapt import Dumper

    class Prebuilt(Dumper):
        """Passes a :class:`_BinaryArray`'s bytes on as they are, with its own type."""

        format = pq.Format.BINARY

        def get_key(self, obj: Any, format: Any) -> Any:
            return (_BinaryArray, obj.oid)  # one dumper per array type

        def upgrade(self, obj: Any, format: Any) -> Any:
            dumper = type(self)(_BinaryArray)
            dumper.oid = obj.oid
            return dumper

        def dump(self, obj: Any) -> bytes:
            return obj.data

    return Prebuilt


def _copy_unless_taken(
    driver: Any, table: Any, names: list[str], chunks: list[list[dict[str, Any]]]
) -> bool:
    """COPY rows straight into ``table`` (no scratch table to write them to first, none to
    create per batch), inside a savepoint: False, with nothing written, when a unique key was
    taken meanwhile by a transaction this one could not see."""
    from psycopg import errors

    with driver.cursor() as cursor:
        cursor.execute("SAVEPOINT bulk_insert")
        try:
            _copy(cursor, table, names, chunks)
        except errors.UniqueViolation:
            cursor.execute("ROLLBACK TO SAVEPOINT bulk_insert")
            return False
        cursor.execute("RELEASE SAVEPOINT bulk_insert")
    return True


def _pg_params(table: Any, names: list[str], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows as psycopg parameters (see ``_pg_column``)."""
    columns = [_pg_column(table, n, [row[n] for row in rows]) for n in names]
    return [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]


def _pg_column(table: Any, name: str, values: list[Any]) -> list[Any]:
    """One column's values for psycopg: JSON wrapped as the column stores it (one wrapper per
    document, so COPY dumps a shared one once), naive instants refused as ``UTCDateTime``
    does."""
    from bot.store.types import UTCDateTime

    kind = table.c[name].type
    wrapper = _json_wrapper(table, name)
    if isinstance(kind, UTCDateTime):
        if any(v.tzinfo is None for v in set(values) - {None}):
            raise ValueError(f"naive datetime in {table.name}.{name}: pass an aware instant")
    elif wrapper is not None:
        documents = {id(v): v for v in values if v is not None}  # the values keep them alive
        wrapped = {key: wrapper(document) for key, document in documents.items()}
        return [None if v is None else wrapped[id(v)] for v in values]
    return values


def _json_wrapper(table: Any, name: str) -> Any | None:
    """psycopg's wrapper for the values of a JSON column -- ``Jsonb`` or ``Json``, as
    PostgreSQL stores the column (:data:`bot.store.types.JSONText`) -- or None for another
    type."""
    from psycopg.types.json import Json, Jsonb
    from sqlalchemy import JSON

    if not isinstance(table.c[name].type, JSON):
        return None
    return Jsonb if _declared(table, name) == "JSONB" else Json


def bulk_update(
    session: Session, model: Any, rows: list[dict[str, Any]], *, key: str = "id"
) -> None:
    """Give many rows (found by ``key``) their new values, every row naming the same columns.

    PostgreSQL: one ``UPDATE … FROM unnest(one array per column)``, one round trip and one
    join for the lot (a pipelined executemany still had the server run one statement per row:
    most of a 1,000-row tick).  SQLite: the driver's executemany of one small statement, with
    the values converted column by column (SQLAlchemy's per-row parameter building cost more
    than SQLite's own work)."""
    if not rows:
        return
    table = model.__table__
    dialect = session.get_bind().dialect
    names = list(rows[0])
    values = [n for n in names if n != key]
    quote = dialect.identifier_preparer.quote
    if dialect.name != "postgresql":
        by_name = dict(zip(names, _bound_columns(table, names, rows, dialect), strict=True))
        sql = (
            f"UPDATE {table.name} SET {', '.join(f'{quote(n)} = ?' for n in values)} "
            f"WHERE {quote(key)} = ?"
        )
        params = list(zip(*(by_name[n] for n in values), by_name[key], strict=True))
        session.connection().exec_driver_sql(sql, params)
        return
    connection = session.connection()
    rows_of, params = _unnest(connection, table, {n: [row[n] for row in rows] for n in names})
    sql = (
        f"UPDATE {table.name} AS t SET {', '.join(f'{quote(n)} = v.{quote(n)}' for n in values)} "
        f"FROM {rows_of} WHERE {_matching(connection, [key])}"
    )
    connection.exec_driver_sql(sql, params)


def bulk_raise(
    session: Session,
    model: Any,
    rows: list[dict[str, Any]],
    *,
    key: tuple[str, ...],
    column: str,
    where: dict[str, Any],
) -> None:
    """Raise ``column`` of the rows found by ``key`` (and matching ``where``) to each row's
    value where the stored one is lower; None stands for no limit at all, so it always wins
    and a stored None is never lowered (an expiry that never comes).  One statement for the
    lot on PostgreSQL (``UPDATE … FROM unnest``), the driver's executemany on SQLite."""
    if not rows:
        return
    table = model.__table__
    connection = session.connection()
    dialect = connection.dialect
    names = [*key, column]
    if dialect.name != "postgresql":
        columns = _bound_columns(table, names, rows, dialect)
        matched = " AND ".join(f"{n} = ?" for n in [*key, *where])
        sql = (
            f"UPDATE {table.name} SET {column} = ? WHERE {matched} AND (? IS NULL OR {column} < ?)"
        )
        statics = list(where.values())
        params = [
            (*values[-1:], *values[:-1], *statics, values[-1], values[-1])
            for values in zip(*columns, strict=True)
        ]
        connection.exec_driver_sql(sql, params)
        return
    rows_of, params = _unnest(connection, table, {n: [row[n] for row in rows] for n in names})
    filters = "".join(f" AND t.{n} = %(w_{n})s" for n in where)
    sql = (
        f"UPDATE {table.name} AS t SET {column} = v.{column} FROM {rows_of} "
        f"WHERE {_matching(connection, key)}{filters} "
        f"AND (v.{column} IS NULL OR t.{column} < v.{column})"
    )
    connection.exec_driver_sql(sql, params | {f"w_{n}": value for n, value in where.items()})


def _skip(on_conflict: list[str] | None) -> str:
    return f" ON CONFLICT ({', '.join(on_conflict)}) DO NOTHING" if on_conflict else ""


# rows: below this a pipelined executemany is as fast as COPY (notifications, median of 7:
# 50 rows 2.2 vs 2.6 ms, 100 rows 3.5 vs 3.6, 500 rows 13.8 vs 11.3); at 1,000, a due tick's
# batches of 250 occurrences (~550 messages each) took 200 ms instead of 170
_COPY_FROM = 100
_COPY_CHUNK = 5000  # rows per write: a few hundred KiB, so the server starts on them early


def _copy(
    cursor: Any,
    table: Any,
    names: list[str],
    batches: Iterable[list[dict[str, Any]]],
    *,
    into: str | None = None,
) -> int:
    """COPY batches of rows into ``into`` (default: the table itself, whose column types a
    scratch copy shares) in PostgreSQL's binary format; returns the rows sent.

    psycopg's ``write_row`` dumps every value of every row (most of the client's share of
    COPYing 100k occurrences, whose dates and instants repeat); here each column's distinct
    values of a batch go through the dumper of the column's own type once, and rows are joined
    from the bytes.  Binary, because the server then parses no dates and instants (a tenth of
    its COPY of those rows)."""
    from psycopg import pq

    dumpers = [
        cursor.adapters.get_dumper_by_oid(
            _column_type(cursor.adapters, table, n)[0], pq.Format.BINARY
        )(type(None), cursor)
        for n in names
    ]
    count = struct.pack("!h", len(names))
    sent = 0
    with cursor.copy(
        f"COPY {into or table.name} ({', '.join(names)}) FROM STDIN WITH (FORMAT binary)"
    ) as copy:
        copy.write(_BINARY_HEADER)
        for batch in batches:
            columns = [
                _binary_fields(dumper, _pg_column(table, name, [row[name] for row in batch]))
                for name, dumper in zip(names, dumpers, strict=True)
            ]
            copy.write(b"".join(count + b"".join(row) for row in zip(*columns, strict=True)))
            sent += len(batch)
        copy.write(_BINARY_TRAILER)
    return sent


_BINARY_HEADER = b"PGCOPY\n\xff\r\n\0" + bytes(8)  # signature, no flags, no extension
_BINARY_TRAILER = b"\xff\xff"
_BINARY_NULL = b"\xff\xff\xff\xff"


def _binary_fields(dumper: Any, values: list[Any]) -> list[bytes]:
    """A column's fields (length, then bytes; NULL as length -1), each distinct value dumped
    once (as ``_converted`` does for SQLite): one dumper per column, so equal values (``1``
    and ``True`` too) give equal bytes."""
    try:
        once = {v: _binary_field(dumper, v) for v in set(values)}
    except TypeError:  # unhashable (a JSON document not wrapped): dump each one
        return [_binary_field(dumper, v) for v in values]
    return list(map(once.__getitem__, values))


def _binary_field(dumper: Any, value: Any) -> bytes:
    data = None if value is None else dumper.dump(value)
    return _BINARY_NULL if data is None else struct.pack("!i", len(data)) + bytes(data)


def _bound_columns(
    table: Any, names: list[str], rows: list[dict[str, Any]], dialect: Any
) -> list[list[Any]]:
    """The rows' values column by column, each converted as its column binds them (SQLite):
    one conversion per distinct value (:func:`_converted`), few calls."""
    columns = [[row[n] for row in rows] for n in names]
    for i, name in enumerate(names):
        processor = table.c[name].type._cached_bind_processor(dialect)
        if processor is not None:
            columns[i] = _converted(columns[i], processor)
    return columns


def _converted(values: list[Any], processor: Any) -> list[Any]:
    """A column's bind conversion, done once per distinct value: SQLAlchemy's own per-value
    processing was most of inserting 100k occurrences, whose dates and instants repeat."""
    try:
        once = {value: processor(value) for value in set(values)}
    except TypeError:  # unhashable (JSON): once per object (rows may share one payload)
        return _once_per_object(values, processor)
    return [once[value] for value in values]


def _once_per_object(values: list[Any], convert: Any) -> list[Any]:
    """``convert`` applied once per distinct object (by identity: the list keeps each alive)."""
    done: dict[int, Any] = {}
    converted = []
    for value in values:
        key = id(value)
        if key not in done:
            done[key] = convert(value)
        converted.append(done[key])
    return converted
