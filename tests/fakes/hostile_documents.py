"""Nasty documents for ``dutybot extract``, built on demand (tests and bench/extract_hostile.py).

Each is small on disk and cheap to build (the zip bomb is ~0.2 MB that unpacks to 200 MB),
and each names the refusal it must end in: the ``reason`` of
:class:`bot.extract.limits.DocumentRefused` (message ``refused_<reason>``), or
``unreadable`` / ``no_items`` for the plain error messages.  Issue 15 met all of these kinds
among 280 garbage documents: hangs, a 5 KB .xlsx with one merged range over the whole
sheet (1.5 GiB), a 1.2 MB .docx zip bomb (3 GiB), an honest 20k-row .docx that hung.
"""

from __future__ import annotations

import io
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from copy import deepcopy
from dataclasses import dataclass
from pathlib import Path

ITEM = "{n}.开展第{n}项安全检查，每月检查1次。（责任单位：应急办；完成时限：2022年6月底）"


@dataclass(frozen=True)
class Nasty:
    name: str  # file name, its suffix chooses the reader
    expected: str  # refusal reason, or "unreadable" / "no_items"
    build: Callable[[Path], None]

    def materialise(self, folder: Path) -> Path:
        path = folder / self.name
        if not path.exists():
            self.build(path)
        return path


def _docx_bytes(paragraphs: list[str] | None = None, rows: int = 0) -> bytes:
    import docx

    document = docx.Document()
    for text in paragraphs or ["县安委会重点任务清单"]:
        document.add_paragraph(text)
    if rows:
        table = document.add_table(rows=2, cols=4)
        for c, name in enumerate(["序号", "重点任务", "责任单位", "完成时限"]):
            table.cell(0, c).text = name
        for c, value in enumerate(["1", "开展隐患排查。", "应急办", "6月底前"]):
            table.cell(1, c).text = value
        template = table._tbl.tr_lst[1]
        for _ in range(rows - 1):  # copies of the XML row: python-docx's add_row is O(n²)
            table._tbl.append(deepcopy(template))
    stream = io.BytesIO()
    document.save(stream)
    return stream.getvalue()


def _rezip(data: bytes, path: Path, replace: dict[str, bytes], add: int = 0) -> None:
    """Copy a package, replacing some members and adding ``add`` empty ones."""
    with (
        zipfile.ZipFile(io.BytesIO(data)) as source,
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for item in source.infolist():
            target.writestr(item.filename, replace.get(item.filename, source.read(item.filename)))
        for n in range(add):
            target.writestr(f"extra/part{n}.xml", b"<a/>")


def _xlsx_bytes(cells: dict[str, str] | None = None) -> bytes:
    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["序号", "重点任务", "责任单位", "完成时限"])
    sheet.append(["1", "开展隐患排查。", "应急办", "6月底前"])
    for ref, value in (cells or {}).items():
        sheet[ref] = value
    stream = io.BytesIO()
    workbook.save(stream)
    return stream.getvalue()


def _sheet_with(data: bytes, insert_after_sheet_data: bytes) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as package:
        xml = package.read("xl/worksheets/sheet1.xml")
    return xml.replace(b"</sheetData>", b"</sheetData>" + insert_after_sheet_data, 1)


def zip_bomb_docx(path: Path) -> None:
    """word/document.xml unpacks to 200 MB of blanks; the file is ~0.2 MB."""
    data = _docx_bytes()
    with (
        zipfile.ZipFile(io.BytesIO(data)) as source,
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as target,
    ):
        for item in source.infolist():
            if item.filename != "word/document.xml":
                target.writestr(item.filename, source.read(item.filename))
        with target.open("word/document.xml", "w", force_zip64=True) as member:
            member.write(b'<?xml version="1.0"?><w:document xmlns:w="x"><w:body>')
            block = b" " * (1 << 20)
            for _ in range(200):
                member.write(block)
            member.write(b"</w:body></w:document>")


def merged_whole_sheet_xlsx(path: Path) -> None:
    """One merged range over the whole sheet: 17 billion cells for a naive reader."""
    data = _xlsx_bytes()
    merge = b'<mergeCells count="1"><mergeCell ref="A1:XFD1048576"/></mergeCells>'
    _rezip(data, path, {"xl/worksheets/sheet1.xml": _sheet_with(data, merge)})


def far_cell_xlsx(path: Path) -> None:
    """Two real cells, A1 and XFD1048576: a reader walking the grid walks 17 billion."""
    path.write_bytes(_xlsx_bytes({"XFD1048576": "x"}))


def entity_bomb_xlsx(path: Path) -> None:
    """Billion laughs in the shared strings."""
    data = _xlsx_bytes()
    levels = "".join(
        f'<!ENTITY l{i} "{("&l" + str(i - 1) + ";") * 10 if i else "lol"}">' for i in range(10)
    )
    bomb = (
        f'<?xml version="1.0"?><!DOCTYPE sst [{levels}]>'
        '<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="1" '
        'uniqueCount="1"><si><t>&l9;</t></si></sst>'
    ).encode()
    with zipfile.ZipFile(io.BytesIO(data)) as package:
        names = package.namelist()
    member = "xl/sharedStrings.xml"
    if member in names:
        _rezip(data, path, {member: bomb})
    else:
        _rezip(data, path, {"xl/worksheets/sheet1.xml": bomb})


def many_cells_xlsx(path: Path) -> None:
    """250,000 real cells (written as XML directly: building them with openpyxl is slow)."""
    data = _xlsx_bytes()
    rows = "".join(
        f'<row r="{r}">' + "".join(f'<c r="{c}{r}"><v>1</v></c>' for c in "ABCDEFGHIJ") + "</row>"
        for r in range(3, 25_003)
    )
    with zipfile.ZipFile(io.BytesIO(data)) as package:
        xml = package.read("xl/worksheets/sheet1.xml")
    xml = xml.replace(b"</sheetData>", rows.encode() + b"</sheetData>", 1)
    _rezip(data, path, {"xl/worksheets/sheet1.xml": xml})


def rows_20k_docx(path: Path) -> None:
    """An honest table of 20,000 rows: beyond the rows one list may have."""
    path.write_bytes(_docx_bytes(rows=20_000))


def doctype_docx(path: Path) -> None:
    data = _docx_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as package:
        xml = package.read("word/document.xml")
    xml = xml.replace(b"?>", b'?><!DOCTYPE w [<!ENTITY e "x">]>', 1)
    _rezip(data, path, {"word/document.xml": xml})


def many_members_docx(path: Path) -> None:
    _rezip(_docx_bytes(), path, {}, add=2_500)


def truncated_docx(path: Path) -> None:
    data = _docx_bytes(rows=3)
    path.write_bytes(data[: len(data) // 2])


def not_a_zip_docx(path: Path) -> None:
    path.write_bytes(random.Random(1).randbytes(4096))


def deep_html(path: Path) -> None:
    depth = 50_000
    path.write_text("<div>\n" * depth + "1.开展排查。" + "</div>\n" * depth, encoding="utf-8")


def span_bomb_html(path: Path) -> None:
    cells = '<td rowspan="200" colspan="200">x</td>' * 50
    path.write_text(
        f"<table><tr><th>序号</th><th>重点任务</th><th>责任单位</th></tr><tr>{cells}</tr></table>",
        encoding="utf-8",
    )


def huge_text(path: Path) -> None:
    line = ITEM.format(n=1) + "\n"
    path.write_text(line * (5 * 1024 * 1024 // len(line.encode()) + 1), encoding="utf-8")


def long_line_text(path: Path) -> None:
    path.write_text("1.开展排查" + "，并" * 300_000, encoding="utf-8")


def wide_markdown(path: Path) -> None:
    header = "|" + "|".join(["牵头单位"] * 20_000) + "|"
    path.write_text(header + "\n|" + "---|" * 20_000 + "\n", encoding="utf-8")


def many_items_text(path: Path) -> None:
    """4,000 honest items (numbering restarts in each part): more than one draft may hold."""
    lines = []
    for part in "一二三四":
        lines.append(f"{part}、第{part}部分")
        lines.extend(ITEM.format(n=n) for n in range(1, 1_001))
    path.write_text("\n".join(lines), encoding="utf-8")


def garbage_text(path: Path) -> None:
    path.write_bytes(random.Random(2).randbytes(100_000).replace(b"\n", b" "))


def empty_text(path: Path) -> None:
    path.write_bytes(b"")


NASTY = (
    Nasty("zip-bomb.docx", "unpacked", zip_bomb_docx),
    Nasty("merged-whole-sheet.xlsx", "cells", merged_whole_sheet_xlsx),
    Nasty("far-cell.xlsx", "sheet_extent", far_cell_xlsx),
    Nasty("entity-bomb.xlsx", "doctype", entity_bomb_xlsx),
    Nasty("many-cells.xlsx", "cells", many_cells_xlsx),
    Nasty("rows-20k.docx", "blocks", rows_20k_docx),
    Nasty("doctype.docx", "doctype", doctype_docx),
    Nasty("many-members.docx", "members", many_members_docx),
    Nasty("truncated.docx", "unreadable", truncated_docx),
    Nasty("not-a-zip.docx", "unreadable", not_a_zip_docx),
    Nasty("deep.html", "nesting", deep_html),
    Nasty("span-bomb.html", "cells", span_bomb_html),
    Nasty("huge.txt", "file_size", huge_text),
    Nasty("long-line.txt", "line", long_line_text),
    Nasty("wide.md", "line", wide_markdown),
    Nasty("many-items.txt", "items", many_items_text),
    Nasty("garbage.txt", "no_items", garbage_text),
    Nasty("empty.txt", "no_items", empty_text),
)


# ``dutybot`` itself, with its peak memory written to a file at exit.  The peak is reset
# first (/proc/self/clear_refs): a forked child starts with its parent's high-water mark,
# so wait4's ru_maxrss would report the test process, not the command.
_COMMAND = (
    "import atexit, sys\n"
    "try:\n"
    "    open('/proc/self/clear_refs', 'w').write('5')\n"
    "except OSError:\n"
    "    pass\n"
    "target = sys.argv[1]\n"
    "def peak():\n"
    "    for line in open('/proc/self/status'):\n"
    "        if line.startswith('VmHWM'):\n"
    "            open(target, 'w').write(line.split()[1])\n"
    "atexit.register(peak)\n"
    "sys.argv = ['dutybot', *sys.argv[2:]]\n"
    "from bot.cli import main\n"
    "main()\n"
)


@dataclass(frozen=True)
class Outcome:
    code: int
    stderr: str
    seconds: float
    peak_mib: float  # the command's own peak RSS (VmHWM)
    killed: bool


def run_extract(path: Path, output: Path, *, timeout: float) -> Outcome:
    """``dutybot extract PATH -o OUTPUT`` in a child process, killed after ``timeout``."""
    env = {**os.environ, "DUTYBOT_LANG": "zh-CN"}
    with tempfile.TemporaryDirectory(prefix="extract-run-") as scratch:
        peak_file = Path(scratch) / "peak"
        err_file = Path(scratch) / "stderr"
        with err_file.open("wb") as err:
            started = time.monotonic()
            arguments = ["extract", str(path), "-o", str(output)]
            child = subprocess.Popen(
                [sys.executable, "-c", _COMMAND, str(peak_file), *arguments],
                stdout=subprocess.DEVNULL,
                stderr=err,
                env=env,
            )
            try:
                code = child.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                child.kill()
                code = child.wait()
            seconds = time.monotonic() - started
        text = err_file.read_text(encoding="utf-8", errors="replace")
        peak = int(peak_file.read_text()) / 1024 if peak_file.exists() else 0.0
    return Outcome(code, text, seconds, peak, code == -signal.SIGKILL)
