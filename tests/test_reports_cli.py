"""The report, audit and ics commands, registered on a typer app as bot.cli will do."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from icalendar import Calendar
from openpyxl import load_workbook
from sqlalchemy import Engine
from typer.testing import CliRunner

from bot.cli import DutybotGroup
from bot.reports.cli import register
from bot.settings import get_settings
from tests.test_reports_scenario import SCHEDULE, seed_scenario, task_count


@pytest.fixture
def app(db_url: str, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[typer.Typer]:
    """The seeded store behind the settings the commands read."""
    seed_scenario(engine)
    for name in ("DATABASE_URL", "DUTYBOT_DATABASE_URL"):
        monkeypatch.setenv(name, db_url)
    monkeypatch.setenv("DUTYBOT_LANG", "zh-CN")
    get_settings.cache_clear()
    app = typer.Typer(cls=DutybotGroup)  # the edge that words an unknown schedule id
    register(app)
    yield app
    get_settings.cache_clear()


def run(app: typer.Typer, *args: str, code: int = 0) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.output


def test_report_xlsx_uses_now(app: typer.Typer, tmp_path: Path) -> None:
    out = tmp_path / "ledger.xlsx"
    said = run(
        app,
        *("report", "--format", "xlsx", "--now", "2022-06-20T10:00:00", "-o", str(out)),
        *("--filled-by", "张敏"),
    )
    assert "台账已导出" in said and f"{task_count()} 项任务" in said
    ws = load_workbook(out)[SCHEDULE]
    headers = [c.value for c in ws[3]]
    row = next(r for r in ws.iter_rows(min_row=4, values_only=True) if r[0] == "4")
    assert row[headers.index("逾期工作日")] == 13  # as of --now, not as of today
    assert "填报人：张敏" in [c.value for c in ws[2]]


def test_report_csv_for_one_schedule(app: typer.Typer, tmp_path: Path) -> None:
    out = tmp_path / "ledger.csv"
    run(
        app,
        "report",
        "--format",
        "csv",
        "--schedule",
        SCHEDULE,
        "--now",
        "2022-06-20",
        "-o",
        str(out),
    )
    with out.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0][:2] == ["序号", "任务"] and len(rows) == 1 + task_count()


def test_report_default_file_name(
    app: typer.Typer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    run(app, "report", "--now", "2022-06-20T10:00:00")
    assert (tmp_path / f"台账-{SCHEDULE}-20220620.xlsx").is_file()


def test_report_unknown_schedule(app: typer.Typer, tmp_path: Path) -> None:
    said = run(app, "report", "--schedule", "nope", "-o", str(tmp_path / "x.xlsx"), code=1)
    assert f"没有找到清单“nope”。已导入的清单：{SCHEDULE}。" in said
    assert not (tmp_path / "x.xlsx").exists()


def test_audit_since(app: typer.Typer, tmp_path: Path) -> None:
    out = tmp_path / "audit.csv"
    said = run(app, "audit", "--schedule", SCHEDULE, "--since", "2022-06-01", "-o", str(out))
    assert "5 条" in said
    with out.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0][0] == "时间" and rows[1][0] == "2022-06-01 07:30:00"


def test_ics(app: typer.Typer, tmp_path: Path) -> None:
    out = tmp_path / "deng.ics"
    said = run(
        app, "ics", "邓清华", "--schedule", SCHEDULE, "--now", "2022-06-20T10:00", "-o", str(out)
    )
    assert "邓清华的督办日历已导出" in said
    cal = Calendar.from_ical(out.read_bytes())
    assert any(str(e["UID"]) == f"{SCHEDULE}/7.3@dutybot" for e in cal.walk("VEVENT"))
    assert b"DTSTAMP:20220620T020000Z" in out.read_bytes()


def test_ics_unknown_person(app: typer.Typer, tmp_path: Path) -> None:
    said = run(app, "ics", "熊玮", "-o", str(tmp_path / "x.ics"), code=1)
    assert "没有名为“熊玮”" in said
