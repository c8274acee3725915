"""What a reader hands on: a document as paragraphs and tables, every piece with its line.

Readers for different formats (plain text, Markdown, HTML, .docx, .xlsx) differ only up to
here; everything after works on these blocks, so provenance (``file:line``) survives.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Para:
    """One paragraph (a text line, a docx paragraph, an HTML block)."""

    text: str
    line: int


@dataclass(frozen=True)
class Cell:
    """One table cell; ``merged`` marks a copy made for a vertically/horizontally merged cell."""

    text: str
    line: int
    merged: bool = False


@dataclass(frozen=True)
class Row:
    cells: tuple[Cell, ...]

    @property
    def line(self) -> int:
        return min((c.line for c in self.cells if c.text.strip()), default=self.cells[0].line)

    def texts(self) -> list[str]:
        return [c.text for c in self.cells]


@dataclass
class Table:
    rows: list[Row] = field(default_factory=list)

    @property
    def line(self) -> int:
        return self.rows[0].line if self.rows else 0


Block = Para | Table


@dataclass
class Document:
    """A read document: its file name (for ``source``) and blocks in reading order."""

    name: str
    blocks: list[Block] = field(default_factory=list)
    metadata_year: int | None = None  # a .docx/.xlsx file's creation year (a last resort)

    @property
    def paras(self) -> list[Para]:
        return [b for b in self.blocks if isinstance(b, Para)]

    @property
    def tables(self) -> list[Table]:
        return [b for b in self.blocks if isinstance(b, Table)]

    @property
    def size(self) -> int:
        """Paragraphs plus table rows: what "large document" progress is measured in."""
        return sum(len(b.rows) if isinstance(b, Table) else 1 for b in self.blocks)
