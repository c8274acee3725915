"""The ledger (台账): exported as of a given ``now``, then read back as Excel/WPS would."""

from __future__ import annotations

import csv
from datetime import date, datetime
from pathlib import Path

import pytest
from openpyxl import load_workbook
from openpyxl.worksheet.worksheet import Worksheet
from sqlalchemy import Engine
from sqlmodel import select

from bot.reports.ledger import (
    STATE_CANCELLED,
    STATE_DONE,
    STATE_OPEN,
    STATE_OVERDUE,
    Ledger,
    assess,
    build_ledger,
)
from bot.reports.records import UnknownSchedule, load_records
from bot.reports.writers import sheet_names, write_ledger_csv, write_ledger_xlsx
from bot.store.db import session_scope
from bot.store.models import Occurrence, Task
from tests.conftest import local
from tests.test_reports_scenario import (
    AS_OF,
    SCHEDULE,
    import_second_list,
    seed_scenario,
    task_count,
)

HEADERS = [
    "序号",
    "任务",
    "牵头领导",
    "责任领导",
    "牵头单位",
    "配合单位",
    "完成时限",
    "状态",
    "工作进度",
    "往期情况",
    "本期截止",
    "完成日期",
    "本期完成",
    "逾期工作日",
    "佐证材料（份）",
]
PRINTED = HEADERS[: HEADERS.index("往期情况") + 1]
HEADER_ROW = 3  # under the title and the 填报 line
TASKS = task_count()
COL = {name: index + 1 for index, name in enumerate(HEADERS)}


def ledger_as_of(engine: Engine, now: datetime, schedule: str | None = None) -> Ledger:
    with session_scope(engine) as session:
        records = load_records(session, schedule)
    return build_ledger(records, now=now, lang="zh-CN")


def row_of(ws: Worksheet, ref: str) -> dict[str, object]:
    for row in ws.iter_rows(min_row=HEADER_ROW + 1, max_col=len(HEADERS), values_only=True):
        if row[0] == ref:
            return dict(zip(HEADERS, row, strict=True))
    raise AssertionError(f"no row {ref}")


@pytest.fixture
def workbook_path(engine: Engine, tmp_path: Path) -> Path:
    seed_scenario(engine)
    path = tmp_path / "ledger.xlsx"
    write_ledger_xlsx(ledger_as_of(engine, AS_OF), path)
    return path


def test_xlsx_layout_title_filled_line_headers_and_panes(workbook_path: Path) -> None:
    wb = load_workbook(workbook_path)
    assert wb.sheetnames == ["汇总", SCHEDULE]
    ws = wb[SCHEDULE]
    assert ws["A1"].value == "丰都县发展改革委落实安全生产“十五条硬措施”责任清单工作台账"
    line = [c.value for c in ws[2] if c.value]
    assert line == [
        "填报单位：丰都县发展和改革委员会",
        "填报人：＿＿＿＿＿＿",
        "填报日期：2022年6月20日",
    ]
    assert [c.value for c in ws[HEADER_ROW]] == HEADERS
    assert ws.freeze_panes == "C4"
    assert wb["汇总"].freeze_panes == "A4"
    assert ws.auto_filter.ref == f"A3:O{TASKS + 3}"
    footnote = ws.cell(row=TASKS + 4, column=1).value
    assert (
        footnote == "注：进度截至2022年6月20日10:00，根据督办记录生成；逾期天数按法定工作日计算。"
    )
    assert ws.max_row == TASKS + 4
    assert ws.column_dimensions["B"].width >= 28  # 任务 is readable without resizing
    assert ws.cell(row=4, column=COL["任务"]).alignment.wrap_text
    # the list's order is kept: 1, 2, 2.1, 3, …
    assert [ws.cell(row=r, column=1).value for r in range(4, 8)] == ["1", "2", "2.1", "3"]


def test_done_row(workbook_path: Path) -> None:
    ws = load_workbook(workbook_path)[SCHEDULE]
    row = row_of(ws, "1")
    assert row["牵头领导"] == "邓清华"
    assert row["责任领导"] == "熊伟、李道波"
    assert row["牵头单位"] == "办公室、能源科"
    assert row["状态"] == "已完成"
    assert row["完成日期"] == datetime(2022, 5, 30)
    assert row["佐证材料（份）"] == 2
    assert row["逾期工作日"] is None
    # 工作进度 says what was reported, in a sentence, and does not repeat 状态
    assert row["工作进度"] == (
        "5月30日，办公室联络员报告已完成：已建立“党政同责、一岗双责”责任制并印发通知（佐证材料2份）。"
    )
    assert row["往期情况"] is None


def test_dates_are_date_cells(workbook_path: Path) -> None:
    ws = load_workbook(workbook_path)[SCHEDULE]
    for r in range(HEADER_ROW + 1, ws.max_row + 1):
        if ws.cell(row=r, column=1).value == "1":
            deadline = ws.cell(row=r, column=COL["完成时限"])
            completed = ws.cell(row=r, column=COL["完成日期"])
            break
    assert deadline.is_date and deadline.value == datetime(2022, 5, 31)
    assert deadline.number_format == "yyyy-mm-dd"
    assert completed.is_date and completed.number_format == "yyyy-mm-dd"


def test_overdue_row_counts_working_days(workbook_path: Path) -> None:
    ws = load_workbook(workbook_path)[SCHEDULE]
    row = row_of(ws, "4")
    # due 2022-05-31; 2022-06-03 is the Dragon Boat holiday: 13 working days late on 6-20
    assert row["逾期工作日"] == 13
    assert row["状态"] == "逾期13个工作日"
    assert row["配合单位"] == "办公室"
    assert row["工作进度"] == (
        "6月10日，能源科联络员报告进展（完成60%）：工作方案初稿已完成，待党组会审议。"
    )
    assert row["佐证材料（份）"] == 0
    # the deadline written before the issue date is overdue from day one
    late = row_of(ws, "35")
    assert late["逾期工作日"] == 54
    assert late["工作进度"] == "尚未报送进展。"


def test_recurring_rows_show_the_current_period_and_history_apart(workbook_path: Path) -> None:
    ws = load_workbook(workbook_path)[SCHEDULE]
    row = row_of(ws, "13.1")
    assert row["完成时限"] == "每月至少2次"
    assert row["本期完成"] == "1/2"
    assert row["状态"] == "本期（6月）已完成1/2，6月30日截止"
    assert row["工作进度"] == "6月15日，熊伟报告已完成：6月检查挂牌企业1家（佐证材料1份）。"
    assert row["往期情况"] == "5月：5月27日完成2/2"  # May's two answers are history, not progress
    assert row["本期截止"] == datetime(2022, 6, 30)
    assert row["佐证材料（份）"] == 1
    assert row["逾期工作日"] is None
    assert row_of(ws, "3.1")["完成时限"] == "每季度"
    assert row_of(ws, "3.1")["状态"] == "本期（第2季度）进行中，6月30日截止"
    assert row_of(ws, "7.1")["完成时限"] == "每个工作日"
    assert row_of(ws, "3.3")["状态"] == "本期（上半年）进行中，6月30日截止"
    assert row_of(ws, "7.3")["往期情况"] == "5月：5月31日完成"
    # May left undone: June is described, May's lateness is not forgotten
    five = row_of(ws, "5.1")
    assert five["本期完成"] == "0/1"
    assert five["逾期工作日"] == 13
    assert five["状态"] == "本期（6月）进行中，6月30日截止；往期1期逾期未完成"
    assert five["工作进度"] == "本期尚未报送。"
    assert five["往期情况"] == "5月：未完成，逾期13个工作日"
    # a daily duty's many periods are counted, the missed ones named
    daily = row_of(ws, "7.1")
    assert daily["往期情况"] == (
        "往期19期：未完成19期（5月23日、5月24日、5月25日等）。\n上期（6月17日）：未完成，逾期1个工作日"
    )
    # a yearly duty whose row is beyond the horizon still reads as under way
    yearly = row_of(ws, "2.1")
    assert yearly["状态"] == "本期（2022年）进行中，12月30日截止"
    assert yearly["本期截止"] == datetime(2022, 12, 30)


def test_cancelled_and_extended_rows(workbook_path: Path) -> None:
    ws = load_workbook(workbook_path)[SCHEDULE]
    cancelled = row_of(ws, "6")
    assert cancelled["状态"] == "已取消"
    assert cancelled["本期截止"] is None and cancelled["逾期工作日"] is None
    assert cancelled["工作进度"] is None
    extended = row_of(ws, "18.1")
    assert extended["状态"] == "进行中（已延期至7月15日）"
    assert extended["工作进度"] == (
        "6月16日，能源科联络员申请延期至7月15日（风电项目停工，申请延期），熊伟已批准。"
    )
    assert extended["本期截止"] == datetime(2022, 7, 15)
    assert extended["完成时限"] == datetime(2022, 6, 30)  # the original deadline stays


def test_document_wording_of_the_deadline_and_undated_tasks(engine: Engine, tmp_path: Path) -> None:
    """完成时限 quotes the document when the schedule kept its words; 时限待定 tasks are listed."""
    seed_scenario(engine)
    with session_scope(engine) as session:
        worded = session.exec(select(Task).where(Task.ref == "4")).one()
        worded.spec = {**(worded.spec or {}), "deadline_text": "2022年5月底前"}
        undated = session.exec(select(Task).where(Task.ref == "2")).one()
        undated.kind, undated.due = "undated", None
        session.add_all([worded, undated])
        for occ in session.exec(select(Occurrence).where(Occurrence.task_id == undated.id)):
            session.delete(occ)
    ledger = ledger_as_of(engine, AS_OF)
    path = tmp_path / "ledger.xlsx"
    write_ledger_xlsx(ledger, path)
    ws = load_workbook(path)[SCHEDULE]
    four = row_of(ws, "4")
    assert four["完成时限"] == "2022年5月底前"
    assert four["本期截止"] == datetime(2022, 5, 31)  # the date stays, for sorting
    two = row_of(ws, "2")
    assert (two["完成时限"], two["状态"]) == ("时限待定", "待明确时限")
    assert two["本期截止"] is None and two["工作进度"] is None
    summary = load_workbook(path)["汇总"]
    headers = [c.value for c in summary[HEADER_ROW]]
    assert summary.cell(row=4, column=headers.index("时限待定") + 1).value == 1


def test_summary_sheet_counts(workbook_path: Path) -> None:
    ws = load_workbook(workbook_path)["汇总"]
    headers = [c.value for c in ws[HEADER_ROW]]
    assert headers[:5] == ["清单", "清单名称", "印发单位", "印发日期", "任务数"]
    values = dict(zip(headers, [c.value for c in ws[HEADER_ROW + 1]], strict=True))
    assert values["清单"] == SCHEDULE and values["任务数"] == TASKS
    assert values["印发日期"] == datetime(2022, 5, 23)
    states = ["已完成", "进行中", "逾期", "已取消", "未开始", "时限待定"]
    assert sum(int(values[s]) for s in states) == TASKS  # type: ignore[call-overload]
    assert values["已取消"] == 1
    assert int(values["逾期"]) >= 2  # type: ignore[call-overload]
    assert ws.max_row == HEADER_ROW + 2  # one list: no total row, then the footnote


def test_states_follow_now(engine: Engine) -> None:
    """The same data judged at another ``now`` reads differently: no wall clock inside."""
    seed_scenario(engine)
    with session_scope(engine) as session:
        [record] = load_records(session, SCHEDULE)
    by_ref = {t.task.ref: t for t in record.tasks}

    def state(ref: str, now: datetime) -> str:
        return assess(by_ref[ref], schedule=record.schedule, now=now, st=record.time).state

    assert state("4", local(2022, 5, 31, 17, 59)) == STATE_OPEN
    assert state("4", local(2022, 5, 31, 18, 1)) == STATE_OVERDUE
    assert state("1", AS_OF) == STATE_DONE
    assert state("6", AS_OF) == STATE_CANCELLED
    # the extension holds 18.1 open past its original day, until the new one
    assert state("18.1", local(2022, 7, 5, 9, 0)) == STATE_OPEN
    assert state("18.1", local(2022, 7, 18, 9, 0)) == STATE_OVERDUE
    # in July, 13.1's June stays overdue at 1/2
    july = assess(
        by_ref["13.1"], schedule=record.schedule, now=local(2022, 7, 5, 9, 0), st=record.time
    )
    assert july.state == STATE_OVERDUE and july.earlier_overdue == 1
    # a period the worker never materialised is judged from the plan: 2.1's 2022 lapsed
    lapsed = assess(
        by_ref["2.1"], schedule=record.schedule, now=local(2023, 2, 1, 10, 0), st=record.time
    )
    assert lapsed.state == STATE_OVERDUE and lapsed.current_overdue
    assert lapsed.due == date(2022, 12, 30) and lapsed.overdue_days == 19  # 春节 and 调休
    assert (july.times_done, july.times_required) == (0, 2)


def test_csv_one_schedule(engine: Engine, tmp_path: Path) -> None:
    seed_scenario(engine)
    path = tmp_path / "ledger.csv"
    write_ledger_csv(ledger_as_of(engine, AS_OF), path)
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    with path.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == HEADERS
    assert len(rows) == 1 + TASKS
    by_ref = {r[0]: dict(zip(HEADERS, r, strict=True)) for r in rows[1:]}
    assert by_ref["4"]["逾期工作日"] == "13"
    assert by_ref["4"]["完成时限"] == "2022-05-31"
    assert by_ref["1"]["完成日期"] == "2022-05-30"
    assert by_ref["13.1"]["本期完成"] == "1/2"


def test_several_schedules(engine: Engine, tmp_path: Path) -> None:
    seed_scenario(engine)
    import_second_list(engine, tmp_path)
    ledger = ledger_as_of(engine, AS_OF)
    csv_path, xlsx_path = tmp_path / "all.csv", tmp_path / "all.xlsx"
    write_ledger_csv(ledger, csv_path)
    write_ledger_xlsx(ledger, xlsx_path)
    with csv_path.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["清单", *HEADERS]
    assert {r[0] for r in rows[1:]} == {"demo-town-2022", SCHEDULE}
    assert len(rows) == 1 + TASKS + 2
    ongoing = next(r for r in rows if r[0] == "demo-town-2022" and r[1] == "2")
    assert ongoing[1 + HEADERS.index("完成时限")] == "长期坚持"
    # June's progress report is due; May's was never sent
    assert (
        ongoing[1 + HEADERS.index("状态")]
        == "本期（6月）待报送进展，6月30日截止；往期1期逾期未完成"
    )
    assert ongoing[1 + HEADERS.index("往期情况")] == "5月：未完成，逾期13个工作日"
    assert ongoing[1 + HEADERS.index("本期截止")] == "2022-06-30"
    wb = load_workbook(xlsx_path)
    assert wb.sheetnames == ["汇总", "demo-town-2022", SCHEDULE]
    summary = wb["汇总"]
    assert summary.cell(row=6, column=1).value == "合计"
    assert summary.cell(row=6, column=5).value == TASKS + 2
    assert summary["A2"].value == "填报单位：＿＿＿＿＿＿＿＿"  # two issuers: left to write in
    # only the one asked for
    assert [s.schedule_id for s in ledger_as_of(engine, AS_OF, "demo-town-2022").sheets] == [
        "demo-town-2022"
    ]


def test_unknown_schedule(engine: Engine) -> None:
    seed_scenario(engine)
    with session_scope(engine) as session, pytest.raises(UnknownSchedule):
        load_records(session, "no-such-list")


def test_english_headers(engine: Engine) -> None:
    seed_scenario(engine)
    with session_scope(engine) as session:
        records = load_records(session, SCHEDULE)
    ledger = build_ledger(records, now=AS_OF, lang="en")
    assert ledger.headers[:3] == ("No.", "Task", "Lead official")
    row = next(r for r in ledger.sheets[0].rows if r[0] == "13.1")
    assert row[ledger.columns.index("status")] == "June: done 1/2, due 30 Jun"
    assert row[ledger.columns.index("deadline")] == "monthly, at least 2 times"
    assert row[ledger.columns.index("history")] == "May: done 2/2 (27 May)"
    assert row[ledger.columns.index("progress")] == (
        "15 Jun, 熊伟 reported it done: 6月检查挂牌企业1家 (1 evidence file)."
    )
    assert ledger.sheets[0].filled[2] == "Date: 2022-06-20"


def test_sheet_names_are_excel_safe() -> None:
    long = "x" * 40
    assert sheet_names([long, long, "a/b"], reserved=["汇总"]) == [
        "x" * 31,
        "x" * 29 + "~2",
        "a_b",
    ]
    assert sheet_names(["汇总"], reserved=["汇总"]) == ["汇总~2"]


def test_text_is_never_a_formula(engine: Engine, tmp_path: Path) -> None:
    """Text typed as "=HYPERLINK(…)" (a title, a note) must stay text in Excel, WPS and CSV."""
    seed_scenario(engine)
    formula = '=HYPERLINK("http://example.invalid","点我")'
    with session_scope(engine) as session:
        task = session.exec(select(Task).where(Task.ref == "4")).one()
        task.title = formula
        session.add(task)
    ledger = ledger_as_of(engine, AS_OF)
    write_ledger_xlsx(ledger, tmp_path / "l.xlsx")
    write_ledger_csv(ledger, tmp_path / "l.csv")
    ws = load_workbook(tmp_path / "l.xlsx")[SCHEDULE]
    [cell] = [
        ws.cell(row=r, column=COL["任务"])
        for r in range(HEADER_ROW + 1, ws.max_row + 1)
        if ws.cell(row=r, column=1).value == "4"
    ]
    assert cell.data_type == "s" and cell.value == formula
    with (tmp_path / "l.csv").open(encoding="utf-8-sig", newline="") as handle:
        [row] = [r for r in csv.reader(handle) if r[0] == "4"]
    assert row[COL["任务"] - 1] == "'" + formula
