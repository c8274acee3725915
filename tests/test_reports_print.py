"""The ledger as a printed document: page setup read back with openpyxl, then a real render.

The render converts the workbook with LibreOffice headless (what WPS/Excel users' files look
like elsewhere), reads the PDF's tables back with pdfplumber and checks that every printed
cell shows all of its text inside its own cell: LibreOffice draws text that does not fit
over the next row rather than dropping it, so comparing each table cell's text with the
value written is what finds a row too short for its text.  LibreOffice and a CJK font come
from Debian packages (.ci/run installs them); in CI (CI=true) their absence fails the test,
elsewhere it is skipped loudly.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pdfplumber
import pytest
from openpyxl import load_workbook
from openpyxl.worksheet.worksheet import Worksheet
from sqlalchemy import Engine
from sqlmodel import select

from bot.reports.writers import (
    FOOTER,
    GB2312,
    MAX_ROW_HEIGHT,
    cell_text,
    line_height,
    wrapped_lines,
    write_ledger_xlsx,
)
from bot.store.db import open_store, session_scope
from bot.store.models import Reply
from tests.conftest import IN_CI, fresh_database
from tests.test_reports_ledger import HEADER_ROW, PRINTED, ledger_as_of
from tests.test_reports_scenario import AS_OF, SCHEDULE, seed_scenario, task_count

TASKS = task_count()
PACKAGES = "libreoffice-calc-nogui fonts-noto-cjk fonts-crosextra-carlito"
LONG_NOTE = (
    "已召开专题会议研究部署，制定《安全生产责任制落实方案》并印发各科室执行；"
    "同步建立 weekly check-list（每周检查清单），对照问题清单逐项整改销号，"
    "目前已完成整改12项，剩余3项正在推进中，预计月底前全部完成"
)


@pytest.fixture
def workbook(tmp_path: Path) -> Iterator[Path]:
    """The real 68-task list as of 2022-06-20, one answer made long and mixed-script.

    Layout does not depend on the database, so SQLite alone serves (the render is slow)."""
    with fresh_database("sqlite", tmp_path) as url:
        engine = open_store(url)
        try:
            yield _write(engine, tmp_path)
        finally:
            engine.dispose()


def _write(engine: Engine, tmp_path: Path) -> Path:
    seed_scenario(engine)
    with session_scope(engine) as session:
        reply = session.exec(select(Reply).where(Reply.kind == "progress")).first()
        assert reply is not None
        reply.note = LONG_NOTE
        session.add(reply)
    path = tmp_path / "ledger.xlsx"
    write_ledger_xlsx(ledger_as_of(engine, AS_OF), path)
    return path


def ledger_sheet(path: Path) -> Worksheet:
    return load_workbook(path)[SCHEDULE]


# ---- print setup, read back as Excel/WPS would --------------------------------------------


def test_page_setup_is_landscape_a4_fitted_to_width(workbook: Path) -> None:
    wb = load_workbook(workbook)
    for ws in wb.worksheets:
        setup = ws.page_setup
        assert setup.orientation == "landscape"
        assert setup.paperSize == 9  # A4
        assert (setup.fitToWidth, setup.fitToHeight) == (1, 0)  # as many pages as needed
        assert ws.sheet_properties.pageSetUpPr.fitToPage
        assert ws.print_title_rows == f"${HEADER_ROW}:${HEADER_ROW}"  # header on every page
        assert ws.oddFooter.center.text == FOOTER == "第 &P 页 共 &N 页"
        assert ws.print_options.horizontalCentered
        margins = ws.page_margins
        assert 0.4 <= margins.left <= 0.8 and 0.4 <= margins.right <= 0.8
        assert margins.footer < margins.bottom  # the page number sits inside the margin
    ws = wb[SCHEDULE]
    # the document's columns are printed, the data columns after 往期情况 are not
    assert ws.print_area == f"'{SCHEDULE}'!$A$1:$J${TASKS + 4}"
    assert [c.value for c in ws[HEADER_ROW]][: len(PRINTED)] == PRINTED


def test_fonts_are_chinese(workbook: Path) -> None:
    ws = ledger_sheet(workbook)
    assert ws["A1"].font.name == "黑体" and ws["A1"].font.sz == 16
    for row in ws.iter_rows(min_row=2, max_row=TASKS + 4):
        for cell in row:
            if cell.value is None:
                continue
            if cell.row > 1:
                assert cell.font.name == "宋体", cell.coordinate
            # marked GB2312, so a missing font is replaced by another Chinese one
            assert cell.font.charset == GB2312
    assert ws.cell(row=HEADER_ROW, column=1).font.b
    assert ws.cell(row=HEADER_ROW + 1, column=2).font.sz == 10.5


def test_rows_are_tall_enough_for_their_wrapped_text(workbook: Path) -> None:
    ws = ledger_sheet(workbook)
    widths = [ws.column_dimensions[chr(ord("A") + i)].width for i in range(len(PRINTED))]
    tallest = 0
    for r in range(HEADER_ROW, HEADER_ROW + TASKS + 1):
        texts = [cell_text(ws.cell(row=r, column=c + 1).value) for c in range(len(PRINTED))]
        lines = max(wrapped_lines(t, w) for t, w in zip(texts, widths, strict=True))
        height = ws.row_dimensions[r].height
        assert height is not None and lines * line_height() <= height <= MAX_ROW_HEIGHT, r
        tallest = max(tallest, lines)
    assert tallest >= 5  # the long note wraps over several lines, and the row grew for it


def test_wrapping_model() -> None:
    """CJK is two units wide and breaks anywhere; closing punctuation keeps its neighbour."""
    assert wrapped_lines("", 10) == 1
    assert wrapped_lines("一二三四", 9.2) == 1  # 8 units in 8 of room
    assert wrapped_lines("一二三四五", 9.2) == 2
    assert wrapped_lines("一二\n三", 20) == 2
    assert wrapped_lines("abcdefg", 9.2) == 1  # a Latin letter is about half a CJK one
    assert wrapped_lines("abcd 一二", 9.2) == 2  # 5.5 units, then 4 more do not fit
    # a closing mark never starts a line: it takes the character before it along
    assert wrapped_lines("一二三四，", 9.2) == 2
    assert wrapped_lines("x" * 30, 9.2) == 5  # longer than a line: broken, 7 a line


# ---- a real render ------------------------------------------------------------------------


def _missing_tools() -> str | None:
    if not shutil.which("soffice"):
        return "LibreOffice (soffice) is not installed"
    fonts = subprocess.run(
        ["fc-list", ":lang=zh", "family"], capture_output=True, text=True, check=False
    )
    if not fonts.stdout.strip():
        return "no font with Chinese glyphs is installed"
    return None


def _require_tools() -> None:
    missing = _missing_tools()
    if missing is None:
        return
    message = f"{missing}; apt-get install --no-install-recommends {PACKAGES}"
    if IN_CI:
        pytest.fail(f"{message} (.ci/run installs them)")
    pytest.skip(f"LEDGER RENDER NOT TESTED: {message}")


def to_pdf(folder: Path, *files: Path) -> list[Path]:
    """Convert with LibreOffice headless, in a profile of its own (parallel runs do not meet)."""
    profile = folder / "lo-profile"
    subprocess.run(
        [
            "soffice",
            f"-env:UserInstallation=file://{profile}",
            "--headless",
            "--convert-to",
            "pdf",
            "--outdir",
            str(folder / "pdf"),
            *map(str, files),
        ],
        capture_output=True,
        check=True,
        timeout=180,
    )
    return [folder / "pdf" / f"{f.stem}.pdf" for f in files]


def _plain(text: str | None) -> str:
    return re.sub(r"\s+", "", text or "")


def rendered_rows(pdf_path: Path) -> tuple[dict[str, list[str]], list[int], list[float]]:
    """Each task row as printed (序号 → cell texts), the rows on each ledger page, and the
    sizes of the CJK characters in the table."""
    rows: dict[str, list[str]] = {}
    per_page: list[int] = []
    sizes: list[float] = []
    with pdfplumber.open(pdf_path) as pdf:
        for page in pdf.pages:
            for table in page.extract_tables():
                if [_plain(c) for c in table[0]] != PRINTED:
                    continue  # the summary sheet
                per_page.append(len(table) - 1)
                for cells in table[1:]:
                    rows[_plain(cells[0])] = [_plain(c) for c in cells]
                sizes += [c["size"] for c in page.chars if "\u4e00" <= c["text"] <= "\u9fff"]
    return rows, per_page, sizes


def clipped(ws: Worksheet, rows: dict[str, list[str]]) -> list[str]:
    """Cells whose printed text differs from the value written (cut off, or spilled over)."""
    wrong = []
    for r in range(HEADER_ROW + 1, HEADER_ROW + TASKS + 1):
        written = [_plain(cell_text(ws.cell(row=r, column=c + 1).value)) for c in range(10)]
        printed = rows.get(written[0])
        if printed != written:
            wrong.append(written[0])
    return wrong


def test_libreoffice_prints_every_cell_whole_on_several_pages(
    workbook: Path, tmp_path: Path
) -> None:
    _require_tools()
    # a negative control: the same sheet with rows squeezed must be caught by the same check
    squeezed = tmp_path / "squeezed.xlsx"
    wb = load_workbook(workbook)
    for r in range(HEADER_ROW + 1, HEADER_ROW + TASKS + 1):
        wb[SCHEDULE].row_dimensions[r].height = 15
    wb.save(squeezed)
    good_pdf, squeezed_pdf = to_pdf(tmp_path, workbook, squeezed)

    ws = ledger_sheet(workbook)
    rows, per_page, sizes = rendered_rows(good_pdf)
    assert clipped(ws, rows) == []
    assert len(rows) == TASKS
    # 68 tasks on several pages of readable type, not one page of tiny type
    assert 4 <= len(per_page) <= 20, per_page
    assert max(per_page) <= 20
    sizes.sort()
    assert sizes[len(sizes) // 2] >= 9.0  # points: 五号 (10.5) at ≥ 86 % after fitting the width
    with pdfplumber.open(good_pdf) as pdf:
        first = _plain(pdf.pages[1].extract_text())
        last = _plain(pdf.pages[-1].extract_text())
    assert _plain(ws["A1"].value) in first
    assert "填报单位：丰都县发展和改革委员会" in first and "填报日期：2022年6月20日" in first
    assert f"共{len(per_page) + 1}页" in last  # the page numbers of the footer
    assert "注：进度截至2022年6月20日10:00" in last

    squeezed_rows, _, _ = rendered_rows(squeezed_pdf)
    assert len(clipped(ws, squeezed_rows)) >= 10
