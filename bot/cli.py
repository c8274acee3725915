"""The ``dutybot`` command line: validate, import, plan, run, demo."""

from __future__ import annotations

import importlib.util
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from bot.clock import as_of
from bot.settings import get_settings
from bot.texts import phrase, render

app = typer.Typer(
    help="dutybot — 安全生产责任清单督办机器人 (responsibility-list reminders and escalation).",
    no_args_is_help=True,
    add_completion=False,
)
db_app = typer.Typer(help="数据库 / database", no_args_is_help=True)
app.add_typer(db_app, name="db")


def _lang() -> str:
    return get_settings().lang


def _say(key: str, /, err: bool = False, **context: object) -> None:
    typer.echo(phrase("cli", key, _lang(), **context), err=err)


@app.command()
def validate(
    files: Annotated[list[Path], typer.Argument(help="schedule YAML files / 清单文件")],
) -> None:
    """校验清单文件：一次列出所有问题（FILE:LINE:COLUMN）。Validate schedule files."""
    from bot.schedule.validate import load_schedule

    failed = False
    for path in files:
        loaded = load_schedule(path, lang=_lang())
        for problem in loaded.problems:
            typer.echo(str(problem), err=True)
        if loaded.ok:
            assert loaded.spec is not None
            _say("valid", file=str(path), tasks=len(loaded.spec.tasks))
        else:
            failed = True
            _say("invalid", err=True, file=str(path), count=len(loaded.errors))
    raise typer.Exit(1 if failed else 0)


@app.command()
def schema(
    output: Annotated[Path | None, typer.Option("-o", "--output", help="write to FILE")] = None,
) -> None:
    """输出清单格式的 JSON Schema，供编辑器校验。Print the JSON Schema of the format."""
    from bot.schedule.format import json_schema

    text = json.dumps(json_schema(), ensure_ascii=False, indent=2)
    if output:
        output.write_text(text + "\n", encoding="utf-8")
    else:
        sys.stdout.write(text + "\n")


AtOption = Annotated[
    datetime | None,
    typer.Option(
        "--now", help="act as if it were this time (Asia/Shanghai unless given) / 指定当前时间"
    ),
]


@db_app.command("upgrade")
def db_upgrade() -> None:
    """应用数据库迁移。Apply database migrations (also done at every start)."""
    from bot.store.db import current_revision, make_engine, upgrade

    engine = make_engine(get_settings().database_url)
    upgrade(engine)
    _say("db_upgraded", revision=current_revision(engine) or "-")


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="schedule YAML file / 清单文件")],
    at: AtOption = None,
) -> None:
    """导入清单（单个事务），并列出变化。Import a schedule in one transaction and print the diff."""
    from bot.schedule.importer import import_schedule
    from bot.schedule.validate import load_schedule
    from bot.store.db import open_store, session_scope

    loaded = load_schedule(file, lang=_lang())
    for problem in loaded.problems:
        typer.echo(str(problem), err=True)
    if not loaded.ok or loaded.spec is None:
        _say("invalid", err=True, file=str(file), count=len(loaded.errors))
        raise typer.Exit(1)
    settings = get_settings()
    engine = open_store(settings.database_url)
    with session_scope(engine) as session:
        diff = import_schedule(
            session,
            loaded.spec,
            now=as_of(at),
            horizon_days=settings.horizon_days,
            actor="cli",
            source_file=str(file),
        )
    typer.echo(render("import_diff", _lang(), diff=diff))


@app.command()
def upcoming(
    schedule: Annotated[
        str | None, typer.Option("--schedule", help="schedule id / 清单编号")
    ] = None,
    days: Annotated[int, typer.Option("--days", help="how many days ahead / 天数")] = 31,
    at: AtOption = None,
) -> None:
    """列出即将到期和已逾期的任务实例。List open occurrences due soon, and overdue ones."""
    from bot.agenda import upcoming_rows
    from bot.store.db import open_store, session_scope

    engine = open_store(get_settings().database_url)
    with session_scope(engine) as session:
        rows = upcoming_rows(session, now=as_of(at), days=days, schedule_id=schedule)
    typer.echo(render("upcoming", _lang(), rows=rows, days=days))


@app.command()
def extract(
    doc: Annotated[Path, typer.Argument(help="document: .txt .md .html .docx .xlsx / 清单文件")],
    output: Annotated[Path | None, typer.Option("-o", "--output", help="draft YAML / 草稿")] = None,
    year: Annotated[int | None, typer.Option("--year", help="year of the document / 年份")] = None,
) -> None:
    """从责任清单文件生成待审核的清单草稿。Draft a schedule from a responsibility-list document."""
    from bot.extract.cli import run

    raise typer.Exit(run(doc, output, year=year, lang=_lang()))


@app.command()
def demo(
    until: Annotated[
        datetime | None, typer.Option("--until", help="simulate up to this day / 模拟到此日期")
    ] = None,
    full: Annotated[
        bool, typer.Option("--full", help="print every message in full / 打印完整消息")
    ] = False,
    platform: Annotated[
        str,
        typer.Option("--platform", help="show messages as: console, wecom / 消息显示方式"),
    ] = "console",
) -> None:
    """演示：用模拟时钟在内置 SQLite 上运行真实清单数月。Run the demo (no chat token)."""
    from bot.demo import run_demo

    if platform != "console" and not _has_preview(platform):
        _say("unknown_platform", err=True, platform=platform)
        raise typer.Exit(2)
    run_demo(_lang(), until=until.date() if until else None, full=full, platform=platform)


def _has_preview(platform: str) -> bool:
    """Does ``bot.adapters.<platform>.preview`` exist (the demo's view of that platform)?"""
    if not platform.isidentifier():
        return False
    try:
        return importlib.util.find_spec(f"bot.adapters.{platform}.preview") is not None
    except ModuleNotFoundError:
        return False


@app.command("run")
def run_(
    console: Annotated[
        bool, typer.Option("--console", help="print messages here instead of chat / 在终端显示消息")
    ] = False,
) -> None:
    """生产进程：定时检查并发送提醒、督办、汇总。The production process (engine + chat adapters)."""
    import asyncio

    from bot.adapters import configured
    from bot.clock import SystemClock
    from bot.runtime import JobPolicy, Runtime, serve
    from bot.worker import Worker

    settings = get_settings()
    clock = SystemClock()
    db = _open_store_waiting(settings.database_url)
    frontends = [p.build(settings=settings, db=db, clock=clock) for p in configured(settings)]
    if console:
        from bot.adapters.console import console_frontend

        frontends.append(console_frontend(settings=settings, db=db, clock=clock, lang=_lang()))
    if not frontends:
        _say("no_token", err=True)
        raise typer.Exit(2)
    adapters = {f.adapter.platform: f.adapter for f in frontends}
    worker = Worker(db, adapters, clock, lang=_lang(), horizon_days=settings.horizon_days)
    _say("running", tick=settings.tick_seconds, db=db.url.render_as_string(hide_password=True))
    runtime = Runtime(worker, JobPolicy(tick_seconds=settings.tick_seconds))

    async def start() -> None:
        for frontend in frontends:
            await frontend.start()

    async def stop() -> None:
        for frontend in reversed(frontends):
            await frontend.stop()

    asyncio.run(serve(runtime, start_frontend=start, stop_frontend=stop))


def _open_store_waiting(url: str):  # type: ignore[no-untyped-def]
    """The store, waiting for it while it is down (a restart of the database server must not
    stop the bot): retried with backoff, said once per reason."""
    import logging
    import time

    from bot.store.db import open_store

    log = logging.getLogger("dutybot.run")
    delay, said = 1.0, None
    while True:
        try:
            return open_store(url)
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
            if reason != said:
                _say("store_waiting", err=True, reason=reason)
                log.warning("store unavailable: %s", reason)
                said = reason
            time.sleep(delay)
            delay = min(delay * 2, 60.0)


def _register_extensions() -> None:
    from bot.conversation.cli import register as register_chat
    from bot.reports.cli import register as register_reports

    register_reports(app)
    register_chat(app)


_register_extensions()


def main() -> None:  # pragma: no cover - console entry point
    app()
