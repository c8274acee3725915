"""`dutybot demo`: a real schedule on the embedded default (SQLite), no chat token needed."""

from __future__ import annotations

import tempfile
from datetime import datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import typer

from bot.agenda import upcoming_rows
from bot.clock import SystemClock
from bot.schedule.importer import import_schedule
from bot.schedule.validate import load_schedule
from bot.store.db import open_store, session_scope
from bot.texts import phrase, render

SEED = Path(__file__).resolve().parent.parent / "schedules" / "fengdu-ndrc-2022.yaml"


def run_demo(lang: str, schedule_file: Path = SEED) -> None:
    loaded = load_schedule(schedule_file, lang=lang)
    if not loaded.ok or loaded.spec is None:
        for problem in loaded.problems:
            typer.echo(str(problem), err=True)
        raise typer.Exit(1)
    tz = ZoneInfo(loaded.spec.timezone)
    first_day = loaded.spec.issued_on or SystemClock().now().astimezone(tz).date()
    start = datetime.combine(first_day, time(9, 0), tz)
    with tempfile.TemporaryDirectory() as folder:
        engine = open_store(f"sqlite:///{Path(folder) / 'demo.db'}")
        typer.echo(
            phrase(
                "demo",
                "importing",
                lang,
                file=str(schedule_file),
                now=start.strftime("%Y-%m-%d %H:%M"),
            )
        )
        with session_scope(engine) as session:
            diff = import_schedule(session, loaded.spec, now=start, horizon_days=62, actor="demo")
        typer.echo(render("import_diff", lang, diff=diff))
        with session_scope(engine) as session:
            rows = upcoming_rows(session, now=start, days=14)
        typer.echo(render("upcoming", lang, rows=rows, days=14))
        engine.dispose()
