"""Hostile schedule files: every one ends in FILE:LINE:COLUMN errors, exit 1, within 5 s.

The corpus in tests/data/hostile_schedules/ holds the small nasty files (alias bombs, NUL,
surrogates, 2**70, wrong types, poison dates and offsets, SECONDLY, holiday and workday);
the huge ones (50,000 brackets, 200,000 people, a file over the size cap) are made here.
Each runs through ``dutybot validate`` and ``dutybot import``; the store is left as it was.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from bot.calendar import WorkCalendar
from bot.cli import app
from bot.engine import Engine as Planner
from bot.schedule.format import ScheduleFile
from bot.schedule.importer import import_schedule
from bot.schedule.validate import load_schedule
from bot.settings import get_settings
from bot.store.db import make_engine, open_store, session_scope
from bot.store.models import AuditEvent, Notification, Occurrence, Person, Schedule, Task, Unit
from tests.conftest import ROOT, local

CORPUS = ROOT / "tests" / "data" / "hostile_schedules"
# A hang guard, not a timing: these files used to take minutes or crash.  The bound
# (5 s each) is what bench/attack_schedules.py measures; a loaded 2-core machine needs room.
SECONDS = 15.0
TABLES = (Schedule, Person, Unit, Task, Occurrence, Notification, AuditEvent)

GOOD = """\
schedule: hostile
title: 恶意清单
issued_on: 2022-05-23
holidays: [2022-06-06]
workdays: [2022-06-05]
people:
  邓清华: {title: 主任, chief: true}
  熊伟: {title: 副主任, reports_to: 邓清华}
  张敏: {title: 科长}
units:
  能源科: {contacts: [张敏]}
admins: [张敏]
policy:
  remind: [-3, -1, 0]
  escalate:
    - {after: 1, to: [responsible]}
    - {after: 3, to: [lead], repeat: 5}
  digest: {at: "08:30", on: workdays, to: [lead]}
tasks:
  - {ref: "1", title: 召开会议, lead: [邓清华], responsible: [熊伟], units: [能源科], due: 2022-05-31}
  - {ref: "2", title: 每月报送, lead: [熊伟], units: [能源科], every: month, by: day 2, times: 2}
  - {ref: "3", title: 每周检查, lead: [熊伟], units: [能源科], every: "FREQ=WEEKLY;BYDAY=MO"}
  - {ref: "4", title: 长期坚持, lead: [邓清华], units: [能源科], ongoing: true}
"""
HEAD = GOOD.split("tasks:\n")[0]


def _deep(levels: int) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = folder / f"deep_{levels}.yaml"
        path.write_text(HEAD + "tasks:\n  - " + "[" * levels + "]" * levels + "\n")
        return path

    return make


def _deep_maps(levels: int) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = folder / f"deep_maps_{levels}.yaml"
        path.write_text(HEAD + "x: " + "{a: " * levels + "1" + "}" * levels + "\ntasks: []\n")
        return path

    return make


def _people(count: int) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = folder / f"people_{count}.yaml"
        people = "".join(f"  人员{i}: {{title: 科员}}\n" for i in range(count))
        path.write_text(GOOD.replace("people:\n", "people:\n" + people, 1), encoding="utf-8")
        return path

    return make


def _tasks(count: int) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = folder / f"tasks_{count}.yaml"
        tasks = "".join(
            f'  - {{ref: "9.{i}", title: 任务, lead: [邓清华], due: 2022-06-30}}\n'
            for i in range(count)
        )
        path.write_text(GOOD + tasks, encoding="utf-8")
        return path

    return make


def _oversized(folder: Path) -> Path:
    path = folder / "oversized.yaml"
    path.write_text(GOOD + "# " + "x" * (9 * 2**20) + "\n")
    return path


def _alias_bomb(width: int, depth: int) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        lines = ['b0: &b0 ["lol"]']
        for i in range(1, depth + 1):
            lines.append(f"b{i}: &b{i} [" + ", ".join([f"*b{i - 1}"] * width) + "]")
        path = folder / f"bomb_{width}x{depth}.yaml"
        path.write_text(HEAD + "\n".join(lines) + "\ntasks: []\n")
        return path

    return make


GENERATED: dict[str, Callable[[Path], Path]] = {
    "deep_1000": _deep(1_000),
    "deep_50000": _deep(50_000),
    "deep_maps_1000": _deep_maps(1_000),
    "people_200000": _people(200_000),
    "people_30000": _people(30_000),  # under the parser's cap, over the people cap
    "tasks_25000": _tasks(25_000),  # over the tasks cap
    "oversized": _oversized,
    "alias_bomb_10x12": _alias_bomb(10, 12),
}
FILES = sorted(p.name for p in CORPUS.glob("*.yaml"))
POSITION = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<column>\d+): \S", re.M)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    for name in ("DATABASE_URL", "DUTYBOT_DATABASE_URL", "DUTYBOT_LANG"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    yield {"DUTYBOT_LANG": "zh-CN"}
    get_settings.cache_clear()


def refused(env: dict[str, str], command: str, path: Path) -> str:
    """Run one command on one file; what is wrong with the answer ("" when it is right)."""
    get_settings.cache_clear()
    args = [command, str(path)] + (["--now", "2022-05-23T09:00"] if command == "import" else [])
    started = time.perf_counter()
    result = CliRunner().invoke(app, args, env=env)
    took = time.perf_counter() - started
    output = result.output
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        return f"{command} {path.name}: raised {type(result.exception).__name__}"
    if "Traceback" in output:
        return f"{command} {path.name}: printed a traceback"
    if result.exit_code != 1:
        return f"{command} {path.name}: exit {result.exit_code}, not 1: {output[-300:]}"
    if not any(m["file"] == str(path) for m in POSITION.finditer(output)):
        return f"{command} {path.name}: no {path}:LINE:COLUMN: message in {output[:300]!r}"
    if took > SECONDS:
        return f"{command} {path.name}: {took:.1f} s"
    return ""


def test_the_base_file_is_valid(tmp_path: Path) -> None:
    path = tmp_path / "good.yaml"
    path.write_text(GOOD, encoding="utf-8")
    loaded = load_schedule(path)
    assert loaded.ok, [str(p) for p in loaded.errors]


@pytest.mark.parametrize("name", FILES)
def test_validate_refuses_each_file_of_the_corpus(name: str, env: dict[str, str]) -> None:
    assert refused(env, "validate", CORPUS / name) == ""


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_validate_refuses_each_generated_file(
    name: str, env: dict[str, str], tmp_path: Path
) -> None:
    assert refused(env, "validate", GENERATED[name](tmp_path)) == ""


def counts(url: str) -> dict[str, int]:
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            return {
                t.__name__: session.exec(select(func.count()).select_from(t)).one() for t in TABLES
            }
    finally:
        engine.dispose()


def test_import_refuses_every_hostile_file_and_leaves_the_store_alone(
    db_url: str, env: dict[str, str], tmp_path: Path
) -> None:
    env = {**env, "DATABASE_URL": db_url}
    good = tmp_path / "good.yaml"
    good.write_text(GOOD, encoding="utf-8")
    get_settings.cache_clear()
    first = CliRunner().invoke(app, ["import", str(good), "--now", "2022-05-23T09:00"], env=env)
    assert first.exit_code == 0, first.output
    before = counts(db_url)
    assert before["Task"] == 4 and before["Occurrence"] > 0
    paths = [CORPUS / name for name in FILES]
    paths += [make(tmp_path) for name, make in sorted(GENERATED.items()) if name != "deep_1000"]
    wrong = [problem for path in paths if (problem := refused(env, "import", path))]
    assert wrong == []
    assert counts(db_url) == before


def test_a_real_process_prints_no_traceback(tmp_path: Path) -> None:
    """The CLI as a user runs it: the process, its exit code and its stderr."""
    files = [
        CORPUS / "alias_bomb_9x10.yaml",
        CORPUS / "surrogate_escape.yaml",
        CORPUS / "int_2_70.yaml",
        _deep(50_000)(tmp_path),
    ]
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "bot", "validate", *map(str, files)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert time.perf_counter() - started < SECONDS * 2
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    for path in files:
        assert re.search(rf"^{re.escape(str(path))}:\d+:\d+: ", result.stderr, re.M), path


def test_plain_scalars_resolve_as_before(tmp_path: Path) -> None:
    """`on`, `08:30` stay text, `1e8` is a number (so `after: 1e8` is reported as too large)."""
    path = tmp_path / "s.yaml"
    path.write_text(
        GOOD.replace("on: workdays", "on: weekly")
        .replace('at: "08:30"', "at: 08:30")
        .replace("{after: 1, to: [responsible]}", "{after: 1e8, to: [responsible]}"),
        encoding="utf-8",
    )
    errors = [str(p) for p in load_schedule(path, lang="en").errors]
    assert len(errors) == 1 and "after value 100000000.0 is too large; at most 366" in errors[0]


def test_a_few_plain_aliases_stay_allowed(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        GOOD.replace("lead: [熊伟], units", "lead: &lead [熊伟], units", 1).replace(
            "ongoing: true}", "ongoing: true, responsible: *lead}"
        ),
        encoding="utf-8",
    )
    loaded = load_schedule(path)
    assert loaded.ok and loaded.spec is not None, [str(p) for p in loaded.errors]
    assert loaded.spec.tasks[3].responsible == ["熊伟"]


def test_dates_outside_the_window_and_offsets_out_of_range(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        GOOD.replace("due: 2022-05-31", "due: 2033-01-01")
        .replace("remind: [-3, -1, 0]", "remind: [-367, 0]")
        .replace("times: 2", "times: 32"),
        encoding="utf-8",
    )
    errors = [str(p).removeprefix(f"{path}:") for p in load_schedule(path, lang="en").errors]
    lines = path.read_text(encoding="utf-8").splitlines()
    due, times = lines[19].index("2033-01-01") + 1, lines[20].index("32") + 1
    assert errors == [
        "14:3: remind offset -367 is out of range: at most 366 working days before (-366 to 0).",
        f"20:{due}: due date 2033-01-01 is outside the schedule's sensible years"
        " (2017-01-01 to 2032-12-31); check the year.",
        f"21:{times}: times value 32 is too large; at most 31.",
    ]
    path.write_text(GOOD.replace("due: 2022-05-31", "due: 2032-12-31"), encoding="utf-8")
    assert load_schedule(path).ok


# -- fuzzing: mutations of a valid file never crash, and what is accepted can be planned -----

NASTY = [
    "null",
    "~",
    "[]",
    "{}",
    "[[[[]]]]",
    "1180591620717411303424",
    "-1",
    "0",
    "1e8",
    "-100000",
    "9999-12-31",
    "0001-01-03",
    "2022-02-30",
    "2022-05-31 08:00:00",
    '"\\ud800"',
    '"a\\0b"',
    "*nowhere",
    "&a [1]",
    "!!binary aGk=",
    "FREQ=SECONDLY",
    "'FREQ=DAILY;COUNT=100000'",
    "true",
    ".nan",
    "-.inf",
    "0x" + "f" * 30,
    "[a, b]",
    "{a: 1}",
    "'",
    "08:30",
    "on",
    "1.5",
    '"FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30"',
    "day 999",
    "end",
    "2022-06-06",
    "[2022-06-06]",
]
EDGY = [  # values at the bounds, which must be accepted and planned without an error
    "2017-01-01",
    "2032-12-31",
    "2022-06-30",
    "-366",
    "366",
    "0",
    "1",
    "31",
    "day 31",
    "week",
    "year",
    "half-year",
    "workday",
    "FREQ=DAILY",
    '"FREQ=MONTHLY;BYMONTHDAY=31"',
    '"FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29"',
    "[-366, 0]",
    "[2022-06-05]",
    "red",
    "required",
]
LINES = GOOD.splitlines(keepends=True)
_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
_NUMBER = re.compile(r"(?<![\d-])-?\d{1,3}(?![\d:-])")


@st.composite
def mutated(draw: st.DrawFn) -> str:
    lines = list(LINES)
    for _ in range(draw(st.integers(1, 2))):
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(
            st.sampled_from(["value", "flow", "flow", "insert", "delete", "char", "number", "date"])
        )
        nasty = draw(st.one_of(st.sampled_from(EDGY), st.sampled_from(NASTY), st.text(max_size=8)))
        line = lines[i]
        numbers = list(_NUMBER.finditer(line))
        dates = list(_DATE.finditer(line))
        if op in ("number", "date") and not (numbers if op == "number" else dates):
            i = draw(st.sampled_from([n for n, x in enumerate(lines) if _DATE.search(x)]))
            line, op = lines[i], "date"
            dates = list(_DATE.finditer(line))
        if op == "number":
            found = draw(st.sampled_from(numbers))
            value = draw(st.integers(-(10**9), 10**9))
            lines[i] = line[: found.start()] + str(value) + line[found.end() :]
        elif op == "date":
            found = draw(st.sampled_from(dates))
            day = draw(st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)))
            lines[i] = line[: found.start()] + f"{day.year:04d}-{day:%m-%d}" + line[found.end() :]
        elif op == "value" and ": " in line:
            lines[i] = line.split(": ", 1)[0] + ": " + nasty + "\n"
        elif op == "flow" and ", " in line:
            parts = line.rstrip("\n").split(", ")
            j = draw(st.integers(0, len(parts) - 1))
            key = parts[j].split(": ", 1)[0]
            parts[j] = f"{key}: {nasty}"
            lines[i] = ", ".join(parts) + ("}" if line.rstrip().endswith("}") else "") + "\n"
        elif op == "insert":
            indent = line[: len(line) - len(line.lstrip())]
            lines.insert(i, f"{indent}{draw(st.sampled_from(['due', 'until', 'x']))}: {nasty}\n")
        elif op == "delete" and len(lines) > 1:
            del lines[i]
        elif line:
            j = draw(st.integers(0, len(line) - 1))
            lines[i] = line[:j] + draw(st.characters(codec="utf-8")) + line[j + 1 :]
    return "".join(lines)


def test_fuzz_mutated_schedules(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'fuzz.db'}")
    planner = Planner(store, horizon_days=62)

    @settings(
        max_examples=80,
        deadline=timedelta(seconds=SECONDS),
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(text=mutated())
    def check(text: str) -> None:
        loaded = load_schedule("fuzz.yaml", text=text)
        assert all(p.line >= 1 and p.column >= 1 for p in loaded.problems)
        if not loaded.ok:
            assert loaded.errors and loaded.spec is None
            event("refused")
            return
        event("accepted")
        assert loaded.spec is not None
        _placeable(loaded.spec)
        with session_scope(store) as session:  # accepted: it imports and plans a year
            import_schedule(session, loaded.spec, now=local(2022, 5, 23, 9), horizon_days=62)
        for month in range(5, 13):
            planner.plan(local(2022, month, 28, 10), ahead=timedelta(hours=1))
            planner.plan_digests(local(2022, month, 28, 10))
        assert _failed_rows(store) == []

    try:
        check()
    finally:
        store.dispose()


def _placeable(spec: ScheduleFile) -> None:
    """Every date of an accepted file, and every reminder and escalation step from it, falls on
    a working day the calendar can name (9999-12-31 + 1 working day cannot)."""
    calendar = WorkCalendar(spec.calendar, holidays=spec.holidays, workdays=spec.workdays)
    for task in spec.tasks:
        policy = spec.task_policy(task)
        offsets = [*policy.remind, *(s.after + (s.repeat or 0) for s in policy.escalate)]
        assert all(abs(n) <= 3 * 250 for n in offsets), offsets  # past three years: never sent
        for day in (task.due_date, task.start, task.until):
            if day is not None:
                calendar.workday_on_or_before(day)
                for n in offsets:
                    calendar.shift_workdays(day, n)


def _failed_rows(store: Engine) -> list[str]:
    """Occurrences the planner could not place (it records the error on the row)."""
    with Session(store) as session:
        query = select(Occurrence.planning_error).where(col(Occurrence.planning_error).is_not(None))
        return [str(error) for error in session.exec(query)]
