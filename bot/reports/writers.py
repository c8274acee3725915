"""Write built reports to files: xlsx (openpyxl), csv (UTF-8 with BOM), iCalendar.

Only layout lives here; every word was rendered before.  The workbook is made to be printed
and handed in, as offices do with a 台账 in Excel, WPS or LibreOffice: landscape A4, fitted to
the page width, the header row repeated on every page, "第 1 页 共 N 页" in the footer, a
title and a 填报单位 / 填报人 / 填报日期 line, rows tall enough for their wrapped text, a Chinese
font, and a print area that leaves out the data-only columns.

Fonts.  The cells use 宋体 (SimSun), 10.5 pt (五号): the font Chinese offices' Excel and WPS
台账 use for table text, installed with every Chinese Windows, WPS and macOS (as 宋体-SC
substitutes), legible at table sizes where 仿宋_GB2312 (the 公文 body font) is thin and often
missing outside government machines.  The title is 黑体 (SimHei), as 公文 headings are.  A
workbook can name only one font per cell; the fallback is the charset: each font is marked
GB2312 (charset 134, family 3, as Chinese Excel writes them), so Excel, WPS and LibreOffice
substitute another Chinese font when the named one is missing rather than a Latin one.

Row heights.  Neither Excel nor LibreOffice grows a row to fit wrapped text in a file they
did not lay out themselves, so the height is computed here: the lines each cell wraps to in
its column (a CJK character is about two width units, a Latin one about one), times the line
height of the font.  No library models spreadsheet column units, hence :func:`wrapped_lines`.
"""

from __future__ import annotations

import csv
import math
import re
import unicodedata
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from pathlib import Path

from icalendar import Calendar
from openpyxl import Workbook
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.page import PageMargins
from openpyxl.worksheet.worksheet import Worksheet

from bot.reports.ledger import (
    STATE_CANCELLED,
    STATE_DONE,
    STATE_OVERDUE,
    SUMMARY_COLUMNS,
    Cell,
    Ledger,
)

# Column widths in Excel's units (the default font's digit width, 7 px); a CJK character at
# 10.5 pt is two of them.  The printed columns add up to about one landscape A4 page at 100 %.
WIDTHS = {
    "schedule": 18,
    "ref": 5,
    "title": 28,
    "lead": 8,
    "responsible": 8,
    "units": 10,
    "partners": 10,
    "deadline": 12,
    "status": 15,
    "progress": 30,
    "history": 20,
    "due": 12,
    "completed": 12,
    "times": 9,
    "overdue": 9,
    "evidence": 9,
    "issued_by": 22,
    "issued_on": 12,
    "tasks": 8,
    "done": 8,
    "open": 8,
    "cancelled": 8,
    "not_started": 8,
    "undated": 8,
}
SUMMARY_WIDTHS = {"title": 40}
CENTRED = {"ref", "lead", "responsible", "deadline", "due", "completed", "times", "overdue"}
CENTRED |= {"evidence", "issued_on", "tasks", "done", "open", "cancelled", "not_started"}
CENTRED |= {"undated"}
DATE_FORMAT = "yyyy-mm-dd"
SHEET_NAME_MAX = 31  # Excel's limit

FONT_NAME = "宋体"
TITLE_FONT_NAME = "黑体"
GB2312 = 134  # the font charset Chinese Excel writes; it steers substitution to a Chinese font
FONT_FAMILY = 3
FONT_SIZE = 10.5  # 五号
TITLE_SIZE = 16  # 三号
NOTE_SIZE = 9
# one line of text, in points: CJK fonts are tall (Noto CJK 1.45 em, 宋体 1.3 em); the larger
# one is used so no renderer clips, at the cost of a little air in Excel
LINE_FACTOR = 1.45
ROW_PADDING = 4.0  # points above and below the text
MAX_ROW_HEIGHT = 409.0  # Excel's limit
CELL_PADDING = 1.2  # width units lost to the cell's margins and border
UNIT_PX = 7.0  # one width unit in pixels (digit width of the default font)
NARROW_EM = 0.55  # a Latin letter or digit, in em (宋体 0.5; proportional fonts a little more)

FOOTER = "第 &P 页 共 &N 页"
MARGINS = PageMargins(left=0.5, right=0.5, top=0.6, bottom=0.7, header=0.3, footer=0.35)

_THIN = Side(style="thin", color="808080")
_BORDER = Border(left=_THIN, right=_THIN, top=_THIN, bottom=_THIN)
_HEADER_FILL = PatternFill("solid", fgColor="D9E1F2")
_STATE_FILLS = {
    STATE_OVERDUE: PatternFill("solid", fgColor="F8CBAD"),
    STATE_DONE: PatternFill("solid", fgColor="E2EFDA"),
    STATE_CANCELLED: PatternFill("solid", fgColor="EDEDED"),
}


def _font(size: float = FONT_SIZE, bold: bool = False, name: str = FONT_NAME) -> Font:
    return Font(name=name, size=size, bold=bold, charset=GB2312, family=FONT_FAMILY)


def line_height(size: float = FONT_SIZE) -> float:
    """Points one wrapped line takes in a cell of this font size."""
    return size * LINE_FACTOR


# a run of Latin letters/digits wraps as a word; closing punctuation never starts a line and
# opening punctuation never ends one (禁则), so both stay with their neighbour
_TOKEN = re.compile(r"[!-~]+|\s|.", re.DOTALL)
_CLOSING = set("，。、；：？！）】》」』”’%,.;:?!)]}")
_OPENING = set("（【《「『“‘([{")


def _char_units(ch: str, size: float) -> float:
    em = size * 96 / 72 / UNIT_PX  # one em in width units
    wide = unicodedata.east_asian_width(ch) in ("W", "F", "A")
    return em if wide else em * NARROW_EM


def _tokens(paragraph: str) -> list[str]:
    tokens: list[str] = []
    for token in _TOKEN.findall(paragraph):
        if tokens and (token[0] in _CLOSING or tokens[-1][-1] in _OPENING):
            tokens[-1] += token
        else:
            tokens.append(token)
    return tokens


def wrapped_lines(text: str, width: float, size: float = FONT_SIZE) -> int:
    """How many lines ``text`` takes in a wrapping cell ``width`` units wide (greedy, like
    Excel and LibreOffice: words move whole to the next line, CJK breaks between characters)."""
    room = max(round(width - CELL_PADDING, 6), 1.0)  # rounded: 9.2 - 1.2 is 7.999…
    lines = 0
    for paragraph in text.split("\n"):
        lines += 1
        used = 0.0
        for token in _tokens(paragraph):
            units = sum(_char_units(ch, size) for ch in token)
            if used + units <= room or (token.isspace() and used > 0):
                used += units
                continue
            if units <= room:  # the token moves whole to a new line
                lines += 1
                used = units
                continue
            for ch in token:  # longer than a line: broken anywhere
                units = _char_units(ch, size)
                if used + units > room and used > 0:
                    lines += 1
                    used = 0.0
                used += units
    return lines


def cell_text(value: Cell) -> str:
    """The text a cell shows, for measuring it."""
    if value is None:
        return ""
    if isinstance(value, datetime):  # a date cell read back from a file
        value = value.date()
    if isinstance(value, date):
        return value.isoformat()  # DATE_FORMAT
    return str(value)


def row_height(values: Sequence[Cell], widths: Sequence[float], size: float = FONT_SIZE) -> float:
    """Points a row needs so no cell's wrapped text is cut off (at most Excel's limit)."""
    lines = max(
        (wrapped_lines(cell_text(v), w, size) for v, w in zip(values, widths, strict=True)),
        default=1,
    )
    return min(MAX_ROW_HEIGHT, math.ceil(lines * line_height(size) + ROW_PADDING))


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


def text_width(text: str, size: float = FONT_SIZE) -> float:
    """Width units one unwrapped line of ``text`` takes, padding included."""
    return sum(_char_units(ch, size) for ch in text) + CELL_PADDING


def line_spans(widths: Sequence[float], texts: Sequence[str]) -> list[tuple[int, int]]:
    """Columns (1-based, inclusive) for the three parts of the 填报 line: the first part from
    the left and the last from the right, each as wide as its text needs, the middle between;
    one span for all when the columns are too few."""
    n = len(widths)
    first = next((c for c in range(1, n + 1) if sum(widths[:c]) >= text_width(texts[0])), n)
    last = next((c for c in range(n, 0, -1) if sum(widths[c - 1 :]) >= text_width(texts[-1])), 1)
    if not first < last - 1:
        return [(1, n)]
    return [(1, first), (first + 1, last - 1), (last, n)]


def _merged_line(
    ws: Worksheet, row: int, first: int, last: int, text: str, font: Font, align: Alignment
) -> None:
    cell = ws.cell(row=row, column=first, value=text)
    cell.font, cell.alignment = font, align
    if last > first:
        ws.merge_cells(start_row=row, start_column=first, end_row=row, end_column=last)


def _document(
    ws: Worksheet,
    *,
    heading: str,
    filled: Sequence[str],
    footnote: str,
    keys: Sequence[str],
    headers: Sequence[str],
    rows: Sequence[Sequence[Cell]],
    printed: int,
    fills: Sequence[PatternFill | None] = (),
    widths: dict[str, int] | None = None,
    freeze: str = "A4",
) -> None:
    """Title, 填报 line, header row, data rows and a footnote, set up to print.

    Rows: 1 title, 2 填报单位/填报人/填报日期, 3 column headers (repeated on every page),
    4… one per task, then the footnote.  Only the first ``printed`` columns are printed.
    """
    ncols = len(keys)
    sizes = [float((widths or {}).get(key) or WIDTHS.get(key, 12)) for key in keys]
    for column, width in enumerate(sizes, start=1):
        ws.column_dimensions[get_column_letter(column)].width = width
    printed_width = sum(sizes[:printed])

    _merged_line(
        ws,
        1,
        1,
        printed,
        heading,
        _font(TITLE_SIZE, name=TITLE_FONT_NAME),
        Alignment(horizontal="center", vertical="center", wrap_text=True),
    )
    title_lines = wrapped_lines(heading, printed_width, TITLE_SIZE)
    ws.row_dimensions[1].height = math.ceil(title_lines * line_height(TITLE_SIZE) + 10)
    spans = line_spans(sizes[:printed], filled)
    parts = list(filled) if len(spans) == 3 else ["    ".join(filled)]
    for (first, last), text, side in zip(spans, parts, ("left", "center", "right"), strict=False):
        align = Alignment(horizontal=side, vertical="center")
        _merged_line(ws, 2, first, last, text, _font(), align)
    ws.row_dimensions[2].height = math.ceil(line_height() + 2 * ROW_PADDING)

    for column, header in enumerate(headers, start=1):
        cell = ws.cell(row=3, column=column, value=header)
        cell.font = _font(bold=True)
        cell.fill = _HEADER_FILL
        cell.alignment = Alignment(wrap_text=True, vertical="center", horizontal="center")
        cell.border = _BORDER
    ws.row_dimensions[3].height = row_height(headers, sizes)

    centred = Alignment(wrap_text=True, vertical="center", horizontal="center")
    left = Alignment(wrap_text=True, vertical="center", horizontal="left")
    for index, values in enumerate(rows):
        fill = fills[index] if index < len(fills) else None
        row = index + 4
        for column, value in enumerate(values, start=1):
            cell = ws.cell(row=row, column=column, value=value)
            if isinstance(value, str) and cell.data_type == "f":
                cell.data_type = "s"  # officials' notes are text, never formulas
            cell.font = _font()
            cell.alignment = centred if keys[column - 1] in CENTRED else left
            cell.border = _BORDER
            if isinstance(value, date) and not isinstance(value, datetime):
                cell.number_format = DATE_FORMAT
            if fill is not None:
                cell.fill = fill
        ws.row_dimensions[row].height = row_height(values, sizes)

    last_row = len(rows) + 3
    note_row = last_row + 1
    _merged_line(
        ws,
        note_row,
        1,
        printed,
        footnote,
        _font(NOTE_SIZE),
        Alignment(horizontal="left", vertical="center", wrap_text=True),
    )
    note_lines = wrapped_lines(footnote, printed_width, NOTE_SIZE)
    ws.row_dimensions[note_row].height = math.ceil(
        note_lines * line_height(NOTE_SIZE) + 2 * ROW_PADDING
    )

    ws.freeze_panes = freeze
    ws.auto_filter.ref = f"A3:{get_column_letter(ncols)}{max(3, last_row)}"
    ws.print_area = f"A1:{get_column_letter(printed)}{note_row}"
    ws.print_title_rows = "3:3"
    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0  # as many pages as the rows need
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.print_options.horizontalCentered = True
    ws.page_margins = MARGINS
    ws.oddFooter.center.text = FOOTER
    ws.oddFooter.center.size = NOTE_SIZE
    ws.oddFooter.center.font = f"{FONT_NAME},Regular"


def write_ledger_xlsx(ledger: Ledger, path: Path) -> None:
    """The summary sheet first (the workbook opens on it), then one sheet per schedule."""
    wb = Workbook()
    summary = wb.active
    assert summary is not None
    summary.title = ledger.summary_name
    _document(
        summary,
        heading=ledger.summary_heading,
        filled=ledger.summary_filled,
        footnote=ledger.summary_footnote,
        keys=SUMMARY_COLUMNS,
        headers=ledger.summary_headers,
        rows=ledger.summary_rows,
        printed=len(SUMMARY_COLUMNS),
        widths=SUMMARY_WIDTHS,
    )
    names = sheet_names([s.schedule_id for s in ledger.sheets], reserved=[ledger.summary_name])
    for name, sheet in zip(names, ledger.sheets, strict=True):
        ws = wb.create_sheet(name)
        # freeze the title, 填报 and header rows and the 序号/任务 columns
        _document(
            ws,
            heading=sheet.heading,
            filled=sheet.filled,
            footnote=sheet.footnote,
            keys=ledger.columns,
            headers=ledger.headers,
            rows=sheet.rows,
            printed=ledger.printed,
            fills=[_STATE_FILLS.get(state) for state in sheet.states],
            freeze="C4",
        )
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
