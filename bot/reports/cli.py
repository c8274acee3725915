"""The ``report``, ``audit`` and ``ics`` commands, added to the main app by :func:`register`.

Help texts and messages come from the report/audit/ics catalogues in the configured
language.  Commands are built inside :func:`register` (so their help is rendered then,
not at import), which is why this module keeps real annotations instead of
``from __future__ import annotations``: typer must resolve them at definition time.
"""

import enum
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from bot.clock import as_of
from bot.settings import get_settings
from bot.texts import phrase


class LedgerFormat(enum.StrEnum):
    xlsx = "xlsx"
    csv = "csv"


def _records(schedule: str | None) -> list[Any]:
    """The schedules to export, read in one transaction.

    An unknown id raises UnknownSchedule, which the command line's edge (bot.cli) words."""
    from bot.reports.records import load_records
    from bot.store.db import open_store, session_scope

    engine = open_store(get_settings().database_url)
    try:
        with session_scope(engine) as session:
            return list(load_records(session, schedule))
    finally:
        engine.dispose()


def _fail(catalogue: str, key: str, lang: str, **context: object) -> typer.Exit:
    typer.echo(phrase(catalogue, key, lang, **context), err=True)
    return typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add ``report``, ``audit`` and ``ics`` to the main ``dutybot`` app."""
    lang = get_settings().lang

    @app.command("report", help=phrase("report", "help", lang))
    def report(
        fmt: Annotated[
            LedgerFormat, typer.Option("--format", "-f", help=phrase("report", "help_format", lang))
        ] = LedgerFormat.xlsx,
        schedule: Annotated[
            str | None, typer.Option("--schedule", help=phrase("report", "help_schedule", lang))
        ] = None,
        output: Annotated[
            Path | None, typer.Option("-o", "--output", help=phrase("report", "help_output", lang))
        ] = None,
        at: Annotated[
            datetime | None, typer.Option("--now", help=phrase("report", "help_now", lang))
        ] = None,
        filled_by: Annotated[
            str | None,
            typer.Option("--filled-by", help=phrase("report", "help_filled_by", lang)),
        ] = None,
    ) -> None:
        """Export the ledger; the file is built in memory and written once, so it is whole."""
        from bot.reports.ledger import build_ledger
        from bot.reports.writers import write_ledger_csv, write_ledger_xlsx

        now = as_of(at)
        records = _records(schedule)
        if not records:
            raise _fail("report", "no_schedules", lang)
        ledger = build_ledger(records, now=now, lang=lang, filled_by=filled_by)
        if output is None:
            day = now.astimezone(records[0].time.tz)
            only = schedule or (records[0].schedule.id if len(records) == 1 else None)
            name = phrase("report", "default_file", lang, schedule=only, day=day, ext=fmt.value)
            output = Path(name)
        if fmt is LedgerFormat.xlsx:
            write_ledger_xlsx(ledger, output)
        else:
            write_ledger_csv(ledger, output)
        typer.echo(
            phrase(
                "report",
                "written",
                lang,
                file=str(output),
                schedules=len(ledger.sheets),
                tasks=ledger.task_count,
            )
        )

    @app.command("audit", help=phrase("audit", "help", lang))
    def audit(
        output: Annotated[
            Path, typer.Option("-o", "--output", help=phrase("audit", "help_output", lang))
        ],
        schedule: Annotated[
            str | None, typer.Option("--schedule", help=phrase("audit", "help_schedule", lang))
        ] = None,
        since: Annotated[
            datetime | None,
            typer.Option("--since", formats=["%Y-%m-%d"], help=phrase("audit", "help_since", lang)),
        ] = None,
    ) -> None:
        """Export the audit trail; no ``--now``: it shows what was recorded, as recorded."""
        from bot.reports.audit import audit_headers, audit_rows, load_audit
        from bot.reports.writers import write_csv
        from bot.store.db import open_store, session_scope

        engine = open_store(get_settings().database_url)
        try:
            with session_scope(engine) as session:
                data = load_audit(
                    session, schedule_id=schedule, since=since.date() if since else None
                )
        finally:
            engine.dispose()
        rows = audit_rows(data, lang)
        write_csv(output, audit_headers(lang), rows)
        typer.echo(phrase("audit", "written", lang, file=str(output), count=len(rows)))

    @app.command("ics", help=phrase("ics", "help", lang))
    def ics(
        person: Annotated[str, typer.Argument(help=phrase("ics", "help_person", lang))],
        output: Annotated[
            Path | None, typer.Option("-o", "--output", help=phrase("ics", "help_output", lang))
        ] = None,
        schedule: Annotated[
            str | None, typer.Option("--schedule", help=phrase("ics", "help_schedule", lang))
        ] = None,
        at: Annotated[
            datetime | None, typer.Option("--now", help=phrase("report", "help_now", lang))
        ] = None,
        revoke: Annotated[
            bool, typer.Option("--revoke", help=phrase("web", "help_ics_revoke", lang))
        ] = False,
    ) -> None:
        """Without ``-o``: the person's calendar *feed* (a secret URL of the web app, a new
        one each time, the old one revoked); with ``-o``: the same calendar as a file.
        ``--now`` only stamps DTSTAMP, UIDs never change."""
        if output is None or revoke:
            raise typer.Exit(_subscription(person, schedule, revoke=revoke, lang=lang))
        from bot.reports.ics import UnknownPerson, build_calendar, person_events
        from bot.reports.writers import write_ics

        now = as_of(at)
        records = _records(schedule)
        try:
            events = person_events(records, person, lang)
        except UnknownPerson:
            raise _fail("ics", "unknown_person", lang, person=person) from None
        timezone = records[0].schedule.timezone
        calendar = build_calendar(events, now=now, person=person, timezone=timezone, lang=lang)
        write_ics(calendar, output)
        typer.echo(
            phrase("ics", "written", lang, file=str(output), person=person, events=len(events))
        )


def _subscription(person: str, schedule: str | None, *, revoke: bool, lang: str) -> int:
    """Print a new feed URL for the person (bot.web.links), or revoke their feeds."""
    from bot.clock import SystemClock
    from bot.identities import identity_of
    from bot.store.db import open_store, session_scope
    from bot.web.links import feed_link, person_named, revoke_feeds

    settings = get_settings()
    now = SystemClock().now()
    engine = open_store(settings.database_url)
    try:
        with session_scope(engine) as session:
            found = person_named(session, person, schedule)  # a wrong name: said at the edge
            if revoke:
                identity_id = identity_of(session, found, now)
                count = revoke_feeds(session, identity_id=identity_id, now=now)
                typer.echo(phrase("web", "ics_revoked", lang, name=found.name, count=count))
                return 0
            url = feed_link(session, person=found, settings=settings, now=now)
    finally:
        engine.dispose()
    typer.echo(phrase("web", "ics_subscribed", lang, name=found.name, url=url))
    return 0
