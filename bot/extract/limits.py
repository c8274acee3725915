"""How big a document may be, checked before and while it is read.

Admins upload whatever they were sent, and a broken or hostile file must end in a clear
error, quickly, with bounded memory — never a hang or a traceback.  Sizes are checked
before any parser sees the file: the bytes on disk, the uncompressed size of every member
of a .docx/.xlsx (a 1 MB zip can unpack to gigabytes), XML declarations (office files
never carry a DOCTYPE, which is where entity bombs live), and for a sheet the cells and
merged ranges it declares (one merged range over a whole sheet is 17 billion cells).
While reading, the readers count paragraphs, rows and cells against the caps below, and
the command stops after :data:`MAX_SECONDS` whatever happens.

The caps are far above any real responsibility list (the largest seed has ~150 rows).
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

MAX_FILE_BYTES = 20 * 1024 * 1024  # a document on disk
MAX_TEXT_BYTES = 4 * 1024 * 1024  # .txt .md .html: read whole and parsed in Python
MAX_UNPACKED_BYTES = 64 * 1024 * 1024  # a .docx/.xlsx's members, uncompressed, together
MAX_MEMBERS = 2_000  # files inside a .docx/.xlsx
MAX_LINE_CHARS = 20_000  # one paragraph, line or cell
MAX_BLOCKS = 20_000  # paragraphs plus table rows
MAX_CELLS = 200_000  # table cells, merged copies included
MAX_NESTING = 200  # HTML elements inside each other
MAX_ITEMS = 3_000  # tasks in one draft: no one reviews more
MAX_SECONDS = 30  # the whole extraction, a backstop behind the caps

_DOCTYPE = re.compile(rb"<!(?:DOCTYPE|ENTITY)", re.IGNORECASE)
_MERGE = re.compile(
    rb'<(?:\w+:)?mergeCell\b[^>]*\bref="([A-Z]{1,3})(\d{1,7}):([A-Z]{1,3})(\d{1,7})"'
)
_CELL = re.compile(rb'<(?:\w+:)?c\b[^>]*\br="([A-Z]{1,3})(\d{1,7})"')
_TABLE_ROW = re.compile(rb"<w:tr[ >]")
_CHUNK = 1 << 20


class DocumentRefused(Exception):
    """The document is beyond a cap; ``reason`` names the message (``refused_<reason>``)."""

    def __init__(self, reason: str, **context: object) -> None:
        super().__init__(reason)
        self.reason = reason
        self.context = context


def check_file(path: Path, *, text: bool) -> None:
    """The size on disk, before anything is read."""
    size = path.stat().st_size
    limit = MAX_TEXT_BYTES if text else MAX_FILE_BYTES
    if size > limit:
        raise DocumentRefused("file_size", size=_mib(size), limit=_mib(limit))


def check_package(path: Path) -> None:
    """A .docx/.xlsx before python-docx or openpyxl opens it (raises zipfile.BadZipFile)."""
    with zipfile.ZipFile(path) as package:
        members = package.infolist()
        if len(members) > MAX_MEMBERS:
            raise DocumentRefused("members", count=len(members), limit=MAX_MEMBERS)
        unpacked = sum(m.file_size for m in members)
        if unpacked > MAX_UNPACKED_BYTES:
            raise DocumentRefused("unpacked", size=_mib(unpacked), limit=_mib(MAX_UNPACKED_BYTES))
        for member in members:
            if not member.filename.endswith((".xml", ".rels", ".vml")):
                continue
            with package.open(member) as stream:
                if _DOCTYPE.search(stream.read(4096)):
                    raise DocumentRefused("doctype", member=member.filename)
            if member.filename.startswith("xl/worksheets/"):
                with package.open(member) as stream:
                    _check_sheet(stream, member.filename)
            elif member.filename == "word/document.xml":
                with package.open(member) as stream:
                    _check_body(stream)


def _check_sheet(stream: object, name: str) -> None:
    """Cells and merged ranges a worksheet declares, streamed (its XML may be large)."""
    cells = merged = 0
    max_row = max_col = 0
    tail = b""
    read = stream.read  # type: ignore[attr-defined]
    while chunk := read(_CHUNK):
        data = tail + chunk
        cut = data.rfind(b">") + 1  # never split a tag between two chunks
        data, tail = data[:cut], data[cut:]
        for match in _MERGE.finditer(data):
            rows = abs(int(match[4]) - int(match[2])) + 1
            cols = abs(column_number(match[3]) - column_number(match[1])) + 1
            merged += rows * cols
        for match in _CELL.finditer(data):
            cells += 1
            max_row = max(max_row, int(match[2]))
            max_col = max(max_col, column_number(match[1]))
        if merged > MAX_CELLS or cells > MAX_CELLS:
            raise DocumentRefused("cells", count=max(merged, cells), limit=MAX_CELLS)
        if len(tail) > MAX_LINE_CHARS * 4:
            raise DocumentRefused("line", limit=MAX_LINE_CHARS)
    if max_row * max_col > MAX_CELLS:
        raise DocumentRefused(
            "sheet_extent", rows=max_row, columns=max_col, limit=MAX_CELLS, sheet=name
        )


def _check_body(stream: object) -> None:
    """Table rows of a Word body, counted before python-docx parses it."""
    rows = 0
    tail = b""
    read = stream.read  # type: ignore[attr-defined]
    while chunk := read(_CHUNK):
        data = tail + chunk
        keep = len(data) - 8  # a tag starting in the last bytes is counted next round
        rows += sum(1 for m in _TABLE_ROW.finditer(data) if m.start() < keep)
        tail = data[keep:]
        if rows > MAX_BLOCKS:
            raise DocumentRefused("blocks", limit=MAX_BLOCKS)


def column_number(letters: bytes | str) -> int:
    """A → 1, Z → 26, AA → 27, XFD → 16384."""
    text = letters.decode() if isinstance(letters, bytes) else letters
    value = 0
    for char in text:
        value = value * 26 + ord(char) - 64
    return value


class Tally:
    """Counts what a reader produces against the caps, as it produces it."""

    def __init__(self) -> None:
        self.blocks = 0
        self.cells = 0

    def block(self, text: str = "") -> None:
        self.blocks += 1
        if self.blocks > MAX_BLOCKS:
            raise DocumentRefused("blocks", limit=MAX_BLOCKS)
        self.text(text)

    def cell(self, text: str = "", copies: int = 1) -> None:
        self.cells += copies
        if self.cells > MAX_CELLS:
            raise DocumentRefused("cells", count=self.cells, limit=MAX_CELLS)
        self.text(text)

    @staticmethod
    def text(text: str) -> None:
        if len(text) > MAX_LINE_CHARS:
            raise DocumentRefused("line", limit=MAX_LINE_CHARS)


def _mib(size: int) -> str:
    return f"{size / 1024 / 1024:.1f}"
