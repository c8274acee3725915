"""Write built reports to files: xlsx (openpyxl), csv (UTF-8 with BOM), iCalendar.

Only layout lives here; every word was rendered before.  The workbook is made for Excel
and WPS as offices use them: a title row, a frozen and filtered header, wrapped text,
set column widths, real date cells, overdue rows tinted, printable on landscape A4.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from pathlib import Path

from icalendar import Calendar
from openpyxl import Workbook
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from bot.reports.ledger import (
    STATE_CANCELLED,
    STATE_DONE,
    STATE_OVERDUE,
    SUMMARY_COLUMNS,
    Cell,
    Ledger,
)

# Excel counts width in characters of the default font; a CJK character is about two
WIDTHS = {
    "schedule": 18,
    "ref": 7,
    "title": 42,
    "lead": 12,
    "responsible": 12,
    "units": 16,
    "partners": 14,
    "deadline": 13,
    "progress": 46,
    "status": 20,
    "due": 12,
    "completed": 12,
    "times": 9,
    "overdue": 9,
    "evidence": 9,
    "note": 40,
    "issued_by": 22,
    "issued_on": 12,
    "tasks": 8,
    "done": 8,
    "open": 8,
    "cancelled": 8,
    "not_started": 8,
}
SUMMARY_WIDTHS = {"title": 50}
DATE_FORMAT = "yyyy-mm-dd"
SHEET_NAME_MAX = 31  # Excel's limit

_THIN = Side(style="thin", color="A6A6A6")
_BORDER = Border(left=_THIN, right=_THIN, top=_THIN, bottom=_THIN)
_HEADER_FILL = PatternFill("solid", fgColor="D9E1F2")
_STATE_FILLS = {
    STATE_OVERDUE: PatternFill("solid", fgColor="F8CBAD"),
    STATE_DONE: PatternFill("solid", fgColor="E2EFDA"),
    STATE_CANCELLED: PatternFill("solid", fgColor="EDEDED"),
}
_WRAP = Alignment(wrap_text=True, vertical="top")
_CENTRE = Alignment(wrap_text=True, vertical="center", horizontal="center")


def sheet_names(ids: Sequence[str], reserved: Iterable[str] = ()) -> list[str]:
    """Excel-safe, unique sheet names (at most 31 characters, none of []:*?/\\)."""
    taken = {name.lower() for name in reserved}
    names = []
    for raw in ids:
        base = "".join("_" if ch in "[]:*?/\\" else ch for ch in raw)[:SHEET_NAME_MAX] or "_"
        name, n = base, 1
        while name.lower() in taken:
            n += 1
            suffix = f"~{n}"
            name = base[: SHEET_NAME_MAX - len(suffix)] + suffix
        taken.add(name.lower())
        names.append(name)
    return names


def _table(
    ws: Worksheet,
    heading: str,
    keys: Sequence[str],
    headers: Sequence[str],
    rows: Sequence[Sequence[Cell]],
    fills: Sequence[PatternFill | None] = (),
    widths: dict[str, int] | None = None,
    freeze: str = "A3",
) -> None:
    """Title row, header row, data rows; the layout every sheet shares."""
    ncols = len(headers)
    ws.cell(row=1, column=1, value=heading).font = Font(bold=True, size=14)
    ws.cell(row=1, column=1).alignment = Alignment(vertical="center")
    if ncols > 1:
        ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=ncols)
    ws.row_dimensions[1].height = 28
    for column, header in enumerate(headers, start=1):
        cell = ws.cell(row=2, column=column, value=header)
        cell.font = Font(bold=True)
        cell.fill = _HEADER_FILL
        cell.alignment = _CENTRE
        cell.border = _BORDER
    for index, values in enumerate(rows):
        fill = fills[index] if index < len(fills) else None
        for column, value in enumerate(values, start=1):
            cell = ws.cell(row=index + 3, column=column, value=value)
            if isinstance(value, str) and cell.data_type == "f":
                cell.data_type = "s"  # officials' notes are text, never formulas
            cell.alignment = _WRAP
            cell.border = _BORDER
            if isinstance(value, date) and not isinstance(value, datetime):
                cell.number_format = DATE_FORMAT
            if fill is not None:
                cell.fill = fill
    for column, key in enumerate(keys, start=1):
        width = (widths or {}).get(key) or WIDTHS.get(key, 12)
        ws.column_dimensions[get_column_letter(column)].width = width
    ws.freeze_panes = freeze
    last = get_column_letter(ncols)
    ws.auto_filter.ref = f"A2:{last}{max(2, len(rows) + 2)}"
    ws.print_title_rows = "1:2"
    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True


def write_ledger_xlsx(ledger: Ledger, path: Path) -> None:
    """The summary sheet first (the workbook opens on it), then one sheet per schedule."""
    wb = Workbook()
    summary = wb.active
    assert summary is not None
    summary.title = ledger.summary_name
    _table(
        summary,
        ledger.summary_heading,
        SUMMARY_COLUMNS,
        ledger.summary_headers,
        ledger.summary_rows,
        widths=SUMMARY_WIDTHS,
    )
    names = sheet_names([s.schedule_id for s in ledger.sheets], reserved=[ledger.summary_name])
    for name, sheet in zip(names, ledger.sheets, strict=True):
        ws = wb.create_sheet(name)
        fills = [_STATE_FILLS.get(state) for state in sheet.states]
        # freeze the title and header rows and the 序号/任务 columns
        _table(ws, sheet.heading, ledger.columns, ledger.headers, sheet.rows, fills, freeze="C3")
    wb.save(path)


# a cell starting with one of these is a formula to Excel and WPS (CSV injection)
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _csv_value(value: Cell) -> str:
    if value is None:
        return ""
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value  # shown as typed, never evaluated
    return str(value)


def write_csv(path: Path, headers: Sequence[str], rows: Iterable[Sequence[Cell]]) -> None:
    """UTF-8 with a BOM, so Excel and WPS open Chinese text correctly on double-click."""
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(headers)
        for row in rows:
            writer.writerow([_csv_value(v) for v in row])


def ledger_csv_rows(ledger: Ledger) -> tuple[list[str], list[list[Cell]]]:
    """One table for all schedules; with several, a 清单 column first says which."""
    several = len(ledger.sheets) > 1
    headers = ([ledger.schedule_header] if several else []) + list(ledger.headers)
    rows: list[list[Cell]] = []
    for sheet in ledger.sheets:
        for row in sheet.rows:
            rows.append(([sheet.schedule_id] if several else []) + list(row))
    return headers, rows


def write_ledger_csv(ledger: Ledger, path: Path) -> None:
    headers, rows = ledger_csv_rows(ledger)
    write_csv(path, headers, rows)


def write_ics(calendar: Calendar, path: Path) -> None:
    path.write_bytes(calendar.to_ical())
