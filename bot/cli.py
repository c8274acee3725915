"""The ``dutybot`` command line: validate, import, plan, run, demo.

Its edge (:class:`DutybotGroup`) is where mistakes become one clear line and an exit code,
never a traceback: a configuration mistake (exit 2), an unknown schedule id (exit 1, with the
known ids), an unusable database (exit 2), and Click/Typer's own usage errors, reworded in
the configured language from ``message_templates/<lang>/cli.j2``.  Typer 0.29 vendors Click
without gettext, so its messages cannot be translated by a catalogue; they are rebuilt from
the exceptions' own fields (parameter, pydantic error type, input) instead.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import re
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from difflib import get_close_matches
from enum import Enum
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from typer import _click
from typer.core import TyperGroup

from bot.clock import as_of
from bot.settings import SECRET_FIELDS, env_name, field_of, get_settings
from bot.texts import DEFAULT_LANG, LANGS, phrase, render

_import_errors: list[ValidationError] = []  # settings that failed while commands were built


def _edge_lang() -> str:
    """The language of an error: the configured one, or zh-CN when that is the mistake."""
    try:
        return get_settings().lang
    except ValidationError:
        lang = os.environ.get("DUTYBOT_LANG", DEFAULT_LANG)
        return lang if lang in LANGS else DEFAULT_LANG


@cache
def _help_lang() -> str:
    """The language of --help, taken once: Typer evaluates the options' annotations (where
    the texts are) each time it builds the command, and that must not read the settings."""
    return _edge_lang()


def _help(key: str) -> str:
    """A command's or option's --help text, in the configured language (message_templates)."""
    return phrase("cli", f"help_{key}", _help_lang())


class UnknownCommand(_click.exceptions.UsageError):
    def __init__(self, name: str, matches: list[str], ctx: _click.Context) -> None:
        super().__init__(f"No such command {name!r}.", ctx)
        self.name, self.matches = name, matches


def _names(param: Any) -> str:
    opts = list(getattr(param, "opts", []) or [])
    if getattr(param, "param_type_name", "") == "argument" or not opts:
        return str(getattr(param, "human_readable_name", param.name)).upper()
    return " / ".join(opts)


_EXTRA = re.compile(r"^Got unexpected extra argument\(s\) \((.*)\)$")


def click_message(exc: _click.exceptions.ClickException, lang: str) -> str:
    """Click/Typer's message for ``exc``, rebuilt in ``lang`` from the exception's fields."""
    errors = _click.exceptions
    if isinstance(exc, errors.MissingParameter) and exc.param is not None:
        kind = exc.param_type or exc.param.param_type_name
        return phrase("cli", "missing", lang, kind=kind, names=_names(exc.param))
    if isinstance(exc, errors.BadParameter) and exc.param is not None:
        cause = exc.__cause__
        kind, value, ctx = None, None, {}
        if isinstance(cause, ValidationError) and cause.errors():
            first = cause.errors()[0]
            kind, value, ctx = first["type"], first.get("input"), dict(first.get("ctx") or {})
            descriptor = getattr(exc.param, "type_descriptor", None)
            annotation = getattr(descriptor, "annotation", None)
            formats = getattr(getattr(descriptor, "parameter_info", None), "formats", None)
            if kind == "value_error" and formats:
                kind, ctx = "date_format", {"formats": list(formats)}
            elif (
                kind == "value_error"
                and isinstance(annotation, type)
                and issubclass(annotation, Enum)
            ):
                expected = ", ".join(repr(str(m.value)) for m in annotation)
                kind, ctx = "enum", {"expected": expected}
        return phrase(
            "cli",
            "bad_value",
            lang,
            names=_names(exc.param),
            type=kind,
            input=value,
            ctx=ctx,
            message=exc.message,
        )
    if isinstance(exc, errors.NoSuchOption):
        found = sorted(exc.possibilities or [])
        return phrase("cli", "no_such_option", lang, name=exc.option_name, possibilities=found)
    if isinstance(exc, UnknownCommand):
        return phrase("cli", "no_such_command", lang, name=exc.name, matches=exc.matches)
    if isinstance(exc, errors.BadOptionUsage):
        takes = "does not take" in exc.message
        return phrase("cli", "option_usage", lang, name=exc.option_name, takes_value=takes)
    if extra := _EXTRA.match(exc.message):
        return phrase("cli", "extra_arguments", lang, args=extra.group(1))
    if exc.message == "Missing command.":
        return phrase("cli", "missing_command", lang)
    return exc.message


def usage_error(exc: _click.exceptions.UsageError, lang: str) -> str:
    lines = []
    ctx = exc.ctx
    if ctx is not None:
        pieces = " ".join(ctx.command.collect_usage_pieces(ctx))
        lines.append(phrase("cli", "usage", lang, usage=f"{ctx.command_path} {pieces}"))
        lines.append(phrase("cli", "try_help", lang, command=ctx.command_path))
    lines.append(phrase("cli", "error", lang, message=click_message(exc, lang)))
    return "\n".join(lines)


def config_error(exc: ValidationError, lang: str) -> str:
    """The first settings mistake, as one line naming the variable and the fix."""
    first = exc.errors()[0]
    ctx = dict(first.get("ctx") or {})
    field = str(first["loc"][0]) if first["loc"] else ""
    field = field_of(field)
    var = str(ctx.get("var") or env_name(field))
    value = first.get("input") if first["loc"] else ctx.get("input")
    if field in SECRET_FIELDS or not isinstance(value, str | int | float):
        value = None  # a secret is never printed, nor a whole settings object
    elif field == "database_url":
        value = _safe_url(str(value))
    return phrase("cli", "config_error", lang, var=var, type=first["type"], input=value, ctx=ctx)


def _safe_url(url: str) -> str | None:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return None


def _database_error(exc: Exception, lang: str) -> str:
    try:
        url = _safe_url(get_settings().database_url) or "?"
    except ValidationError:
        url = "?"
    detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0][:200]
    return phrase("cli", "database_error", lang, url=url, detail=detail)


def _guard_schedule_ids(group: _click.Command) -> None:
    """Every command's ``--schedule`` refuses an id that was never imported (one place for all)."""
    for command in getattr(group, "commands", {}).values():
        _guard_schedule_ids(command)
        for param in command.params:
            if param.name == "schedule" and param.callback is None:
                param.callback = _known_schedule


def _known_schedule(ctx: _click.Context, _param: Any, value: str | None) -> str | None:
    if value is None or ctx.resilient_parsing:
        return value
    from bot.reports.records import require_schedule
    from bot.store.db import open_store, session_scope

    engine = open_store(get_settings().database_url)
    try:
        with session_scope(engine) as session:
            require_schedule(session, value)
    finally:
        engine.dispose()
    return value


class DutybotGroup(TyperGroup):
    """The ``dutybot`` group: guards schedule ids and turns every mistake into one line."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        _guard_schedule_ids(self)

    def resolve_command(
        self, ctx: _click.Context, args: list[str]
    ) -> tuple[str | None, _click.Command | None, list[str]]:
        name = args[0] if args else ""
        unknown = name and not name.startswith("-") and self.get_command(ctx, name) is None
        if unknown and not ctx.resilient_parsing:
            raise UnknownCommand(name, get_close_matches(name, list(self.commands)), ctx)
        return super().resolve_command(ctx, args)

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        def call() -> Any:
            return super(DutybotGroup, self).main(
                args, prog_name, complete_var, standalone_mode=False, **extra
            )

        if not standalone_mode:
            return call()
        sys.exit(at_edge(call))


def at_edge(call: Callable[[], Any]) -> int:
    """Run the command line; return its exit code, every known mistake said in one line."""
    errors = _click.exceptions
    try:
        if _import_errors:
            raise _import_errors[0]
        get_settings()
        result = call()
        return result if isinstance(result, int) else 0
    except ValidationError as exc:
        typer.echo(config_error(exc, _edge_lang()), err=True)
        return 2
    except errors.NoArgsIsHelpError as exc:
        exc.show()
        return exc.exit_code
    except errors.UsageError as exc:
        typer.echo(usage_error(exc, _edge_lang()), err=True)
        return exc.exit_code
    except errors.ClickException as exc:
        message = phrase("cli", "error", _edge_lang(), message=click_message(exc, _edge_lang()))
        typer.echo(message, err=True)
        return exc.exit_code
    except typer.Abort:
        typer.echo(phrase("cli", "aborted", _edge_lang()), err=True)
        return 1
    except Exception as exc:
        told = _store_failure(exc)
        if told is None:
            raise
        typer.echo(told[0], err=True)
        return told[1]


def _store_failure(exc: Exception) -> tuple[str, int] | None:
    """An unknown schedule id or person, or an unusable database, in one line with its exit
    code.

    Told apart without importing SQLAlchemy or the reports up front (most of a second on
    every start, `dutybot extract` included): a command that never loaded them cannot have
    raised their exceptions."""
    links = sys.modules.get("bot.web.links")  # a person named on the command line
    if links is not None and isinstance(exc, links.UnknownName):
        return phrase("web", "unknown_person", _edge_lang(), name=exc.name), 1
    if links is not None and isinstance(exc, links.AmbiguousName):
        said = phrase(
            "web", "ambiguous_person", _edge_lang(), name=exc.name, schedules=exc.schedules
        )
        return said, 1
    records = sys.modules.get("bot.reports.records")
    if records is not None and isinstance(exc, records.UnknownSchedule):
        said = phrase(
            "cli", "unknown_schedule", _edge_lang(), schedule=exc.schedule_id, known=exc.known
        )
        return said, 1
    if "sqlalchemy" in sys.modules:
        from sqlalchemy.exc import ArgumentError, InterfaceError, OperationalError

        if isinstance(exc, OperationalError | InterfaceError | ArgumentError):
            return _database_error(exc, _edge_lang()), 2
    return None


def _version() -> str:
    try:
        return version("dutybot")
    except PackageNotFoundError:  # a source tree that was never installed
        return "0+unknown"


app = typer.Typer(
    cls=DutybotGroup,
    help=_help("app"),
    no_args_is_help=True,
    add_completion=False,
)


def _show_version(show: bool) -> None:
    if show:
        typer.echo(phrase("cli", "version", _edge_lang(), version=_version()))
        raise typer.Exit(0)


@app.callback()
def _root(
    show_version: Annotated[
        bool,
        typer.Option("--version", callback=_show_version, is_eager=True, help=_help("version")),
    ] = False,
) -> None:
    """Logging is set up before any command runs."""
    from bot.logs import setup_logging

    setup_logging(get_settings())


db_app = typer.Typer(help=_help("db"), no_args_is_help=True)
app.add_typer(db_app, name="db")


def _lang() -> str:
    return get_settings().lang


def _say(key: str, /, err: bool = False, **context: object) -> None:
    typer.echo(phrase("cli", key, _lang(), **context), err=err)


StrictOption = Annotated[
    bool,
    typer.Option("--strict", help=_help("strict")),
]


@app.command(help=_help("cmd_validate"))
def validate(
    files: Annotated[list[Path], typer.Argument(help=_help("files"))],
    strict: StrictOption = False,
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
            if _summarise_gaps(path, loaded.spec, strict=strict) and strict:
                failed = True
        else:
            failed = True
            _say("invalid", err=True, file=str(path), count=len(loaded.errors))
    raise typer.Exit(1 if failed else 0)


def _summarise_gaps(path: Path, spec: Any, *, strict: bool) -> bool:
    """Say what the valid file still lacks (tasks reminding nobody, placeholder contacts) at
    the end, where an admin reads; True when there is any."""
    from bot.schedule.gaps import find_gaps

    gaps = find_gaps(spec)
    if gaps.any or gaps.only_placeholders:
        _say(
            "gaps",
            err=True,
            file=str(path),
            nobody=gaps.nobody,
            only_placeholders=gaps.only_placeholders,
            placeholders=gaps.placeholders,
            strict=strict,
        )
    return gaps.any


@app.command(help=_help("cmd_schema"))
def schema(
    output: Annotated[Path | None, typer.Option("-o", "--output", help=_help("output"))] = None,
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
    typer.Option("--now", help=_help("now")),
]


@db_app.command("upgrade", help=_help("cmd_db_upgrade"))
def db_upgrade() -> None:
    """应用数据库迁移。Apply database migrations (also done at every start)."""
    from bot.store.db import current_revision, make_engine, upgrade

    engine = make_engine(get_settings().database_url)
    upgrade(engine)
    _say("db_upgraded", revision=current_revision(engine) or "-")


@app.command("import", help=_help("cmd_import"))
def import_(
    file: Annotated[Path, typer.Argument(help=_help("file"))],
    at: AtOption = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help=_help("yes"))] = False,
    strict: StrictOption = False,
) -> None:
    """导入清单（单个事务），列出变化和下一时段的消息量。Import a schedule in one transaction,
    print the diff and the next sending window's volume."""
    from zoneinfo import ZoneInfo

    from bot.forecast import describe, forecast
    from bot.schedule.importer import import_schedule
    from bot.schedule.validate import load_schedule
    from bot.store.db import open_store, session_scope

    loaded = load_schedule(file, lang=_lang())
    for problem in loaded.problems:
        typer.echo(str(problem), err=True)
    if not loaded.ok or loaded.spec is None:
        _say("invalid", err=True, file=str(file), count=len(loaded.errors))
        raise typer.Exit(1)
    if _summarise_gaps(file, loaded.spec, strict=strict):
        if strict:
            _say("strict_refused", err=True, file=str(file))
            raise typer.Exit(1)
        if not yes and sys.stdin.isatty():
            question = phrase("cli", "confirm_import", _lang(), file=str(file))
            typer.confirm(question, abort=True, err=True)
    settings = get_settings()
    now = as_of(at)
    engine = open_store(settings.database_url)
    with session_scope(engine) as session:
        diff = import_schedule(
            session,
            loaded.spec,
            now=now,
            horizon_days=settings.horizon_days,
            actor="cli",
            source_file=str(file),
        )
    typer.echo(render("import_diff", _lang(), diff=diff))
    found = forecast(engine, loaded.spec.schedule, now)
    typer.echo(describe(found, ZoneInfo(loaded.spec.timezone), _lang()))


@app.command(help=_help("cmd_upcoming"))
def upcoming(
    schedule: Annotated[str | None, typer.Option("--schedule", help=_help("schedule"))] = None,
    days: Annotated[int, typer.Option("--days", help=_help("days"))] = 31,
    at: AtOption = None,
) -> None:
    """列出即将到期和已逾期的任务实例。List open occurrences due soon, and overdue ones."""
    from bot.agenda import upcoming_rows
    from bot.store.db import open_store, session_scope

    engine = open_store(get_settings().database_url)
    with session_scope(engine) as session:
        rows = upcoming_rows(session, now=as_of(at), days=days, schedule_id=schedule)
    typer.echo(render("upcoming", _lang(), rows=rows, days=days))


@app.command(help=_help("cmd_bindings"))
def bindings(
    schedule: Annotated[str | None, typer.Option("--schedule", help=_help("schedule"))] = None,
    platform: Annotated[str, typer.Option("--platform", help=_help("platform"))] = "dingtalk",
    resolve: Annotated[
        bool,
        typer.Option("--resolve", help=_help("resolve")),
    ] = False,
) -> None:
    """列出每人在某平台的绑定情况；--resolve 按通讯录绑定。Who is bound, resolvable, unresolved."""
    from bot.bindings import run_bindings

    raise typer.Exit(run_bindings(get_settings(), schedule, platform, resolve=resolve))


@app.command("dead-letters", help=_help("cmd_dead_letters"))
def dead_letters_(
    schedule: Annotated[str | None, typer.Option("--schedule", help=_help("schedule"))] = None,
    redrive: Annotated[bool, typer.Option("--redrive", help=_help("redrive"))] = False,
) -> None:
    """列出投递失败的消息；--redrive 重新发送。Messages that could not be delivered."""
    from zoneinfo import ZoneInfo

    from bot.clock import SystemClock
    from bot.outbox import dead_letters, redrive_dead_letters
    from bot.store.db import open_store, session_scope
    from bot.store.models import Schedule

    now = SystemClock().now()  # the command line is the edge where the clock is read
    engine = open_store(get_settings().database_url)
    try:
        with session_scope(engine) as session:
            if redrive:
                count = redrive_dead_letters(
                    session, now=now, schedule_id=schedule, actor="cli", channel="cli"
                )
                _say("dead_letters_redriven", count=count)
                return
            found = dead_letters(session, schedule_ids=None if schedule is None else [schedule])
            if not found:
                _say("dead_letters_none")
                return
            zones: dict[str | None, ZoneInfo] = {}
            for d in found:
                if d.schedule_id not in zones:
                    listed = session.get(Schedule, d.schedule_id) if d.schedule_id else None
                    zones[d.schedule_id] = ZoneInfo(listed.timezone if listed else "Asia/Shanghai")
                since = as_of(d.since).astimezone(zones[d.schedule_id]).strftime("%Y-%m-%d %H:%M")
                _say(
                    "dead_letter",
                    id=d.delivery_id,
                    person=d.person,
                    platform=d.platform,
                    kind=d.kind,
                    items=d.items,
                    error=d.error,
                    since=since,
                )
            _say("dead_letters_hint", count=len(found))
    finally:
        engine.dispose()


@app.command(help=_help("cmd_extract"))
def extract(
    doc: Annotated[Path, typer.Argument(help=_help("doc"))],
    output: Annotated[Path | None, typer.Option("-o", "--output", help=_help("draft"))] = None,
    year: Annotated[int | None, typer.Option("--year", help=_help("year"))] = None,
) -> None:
    """从责任清单文件生成待审核的清单草稿。Draft a schedule from a responsibility-list document."""
    from bot.extract.cli import run

    raise typer.Exit(run(doc, output, year=year, lang=_lang()))


@app.command(help=_help("cmd_demo"))
def demo(
    until: Annotated[datetime | None, typer.Option("--until", help=_help("until"))] = None,
    full: Annotated[bool, typer.Option("--full", help=_help("full"))] = False,
    platform: Annotated[
        str,
        typer.Option("--platform", help=_help("demo_platform")),
    ] = "console",
    keep: Annotated[
        Path | None,
        typer.Option("--keep", help=_help("keep")),
    ] = None,
) -> None:
    """演示：用模拟时钟在内置 SQLite 上运行真实清单数月。Run the demo (no chat token)."""
    from bot.demo import run_demo

    if platform != "console" and not _has_preview(platform):
        _say("unknown_platform", err=True, platform=platform)
        raise typer.Exit(2)
    if "log_level" not in get_settings().model_fields_set:
        # the demo's output is its messages: one log line per send would bury them
        logging.getLogger().setLevel(logging.WARNING)
    run_demo(
        _lang(), until=until.date() if until else None, full=full, platform=platform, keep=keep
    )


def _has_preview(platform: str) -> bool:
    """Does ``bot.adapters.<platform>.preview`` exist (the demo's view of that platform)?"""
    if not platform.isidentifier():
        return False
    try:
        return importlib.util.find_spec(f"bot.adapters.{platform}.preview") is not None
    except ModuleNotFoundError:
        return False


@app.command("run", help=_help("cmd_run"))
def run_(
    console: Annotated[bool, typer.Option("--console", help=_help("console"))] = False,
    web: Annotated[
        bool,
        typer.Option("--web", help=_help("web")),
    ] = False,
) -> None:
    """生产进程：定时检查并发送提醒、督办、汇总。The production process (engine + chat adapters)."""
    from bot.adapters import configured
    from bot.clock import SystemClock
    from bot.runtime import JobPolicy, Runtime
    from bot.web.cli import serve_until_stopped, web_server
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
    server = None
    if web:
        server = web_server(settings, db=db, clock=clock, frontends=frontends, runtime=runtime)
    else:
        paths = [r.path for f in frontends for r in f.routes()]
        if paths:  # received by `dutybot web`, not here
            typer.echo(phrase("web", "routes_elsewhere", _lang(), paths=paths), err=True)
    serve_until_stopped(settings, server, runtime=runtime, frontends=frontends)


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
    """Commands whose help is rendered in the configured language; with settings broken,
    the error is kept and said by :func:`at_edge` before anything runs."""
    from bot.conversation.cli import register as register_chat
    from bot.reports.cli import register as register_reports
    from bot.web.cli import register as register_web

    try:
        register_reports(app)
        register_chat(app)
        register_web(app)
    except ValidationError as exc:
        _import_errors.append(exc)


_register_extensions()


def main() -> None:  # pragma: no cover - console entry point
    app()
