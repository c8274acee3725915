"""The labelled extraction corpus, for tests and for bench/extract_score.py.

Pytest-free, like :mod:`tests.fakes.databases`.  Labels live in
tests/data/extract/labels.yaml; documents are the real lists in ../shared/seeds and the
constructed ones in tests/data/extract/docs.  Word and Excel documents are kept as YAML
specs (``NAME.docx.yaml``) and built here with python-docx / openpyxl, so no binary file is
in git and a reviewer can read them.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from bot.extract.cli import make_draft
from bot.extract.pipeline import Extraction
from bot.extract.reader import read_document
from bot.extract.score import Count, Facts, draft_facts, label_facts, mismatches, owners, score

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "extract"
LABELS = DATA / "labels.yaml"
ROOTS = {
    "seeds": ROOT.parent / "shared" / "seeds",
    "docs": DATA / "docs",
    "heldout": DATA / "heldout",
}


@dataclass(frozen=True)
class Labelled:
    """One labelled document: where it is, what year the draft must use, its tasks."""

    name: str  # as keyed in labels.yaml: "seeds/000_….txt", "docs/….docx"
    year: int
    year_guessed: bool
    deadline_text: bool  # every task's deadline wording is labelled, so it is scored
    tasks: dict[str, Facts]

    @property
    def source(self) -> Path:
        """The file on disk: the document itself, or the YAML spec it is built from."""
        root, _, rest = self.name.partition("/")
        path = ROOTS[root] / rest
        if path.suffix in (".docx", ".xlsx"):
            return path.with_name(path.name + ".yaml")
        return path

    def materialise(self, folder: Path) -> Path:
        """A path to the document, building office files from their spec into ``folder``."""
        source = self.source
        if source.suffix != ".yaml":
            return source
        target = folder / source.name.removesuffix(".yaml")
        if not target.exists():
            spec = YAML(typ="safe").load(source.read_text(encoding="utf-8"))
            builder = build_docx if target.suffix == ".docx" else build_xlsx
            builder(spec, target)
        return target


# far from every document's year, so a fall-back to "today" shows up as a wrong year
TODAY = date(2030, 1, 1)
BASE_FIELDS = ("lead", "responsible", "units", "partners", "due", "ongoing", "every")


@dataclass
class Scored:
    """One document run through ``dutybot extract`` and scored against its labels."""

    doc: Labelled
    extraction: Extraction
    draft: str
    counts: dict[str, Count]
    problems: list[str]

    @property
    def year_right(self) -> bool:
        return self.extraction.meta.year == self.doc.year and (
            (not self.extraction.year_found) == self.doc.year_guessed
        )


def score_document(doc: Labelled, folder: Path) -> Scored:
    """What the command writes for ``doc``, parsed back and scored field by field."""
    extraction, text = make_draft(read_document(doc.materialise(folder)), year=None, today=TODAY)
    tree = YAML(typ="safe").load(text) if text else {}
    predicted = draft_facts((tree or {}).get("tasks") or [])
    fields = [*BASE_FIELDS, "deadline_text"] if doc.deadline_text else list(BASE_FIELDS)
    counts = score(predicted, doc.tasks, fields)
    counts["owners"] = owners(counts)
    problems = mismatches(predicted, doc.tasks, fields)
    scored = Scored(doc, extraction, text, counts, problems)
    if not scored.year_right:
        guessed = not extraction.year_found
        problems.insert(0, f"year {extraction.meta.year} (guessed: {guessed}), labelled {doc.year}")
    return scored


def score_corpus(only: list[str] | None = None) -> list[Scored]:
    with tempfile.TemporaryDirectory(prefix="extract-corpus-") as folder:
        return [score_document(d, Path(folder)) for d in corpus() if not only or d.name in only]


def total(results: list[Scored]) -> dict[str, Count]:
    out: dict[str, Count] = {}
    for result in results:
        for name, count in result.counts.items():
            out.setdefault(name, Count()).add(count)
    return out


def corpus() -> list[Labelled]:
    data = YAML(typ="safe").load(LABELS.read_text(encoding="utf-8"))
    out = []
    for name, entry in data["documents"].items():
        tasks = {str(ref): label_facts(facts or {}) for ref, facts in entry["tasks"].items()}
        out.append(
            Labelled(
                name=name,
                year=int(entry["year"]),
                year_guessed=bool(entry.get("year_guessed")),
                deadline_text=bool(entry.get("deadline_text")),
                tasks=tasks,
            )
        )
    return out


def seeds_present() -> bool:
    return ROOTS["seeds"].is_dir()


def _when(value: Any) -> datetime | None:
    if value is None:
        return None
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def build_docx(spec: dict[str, Any], path: Path) -> None:
    """``body``: a list of ``{p: text}`` and ``{table: {rows, merge}}``; ``metadata``.

    A paragraph may be a list of runs, each a string or ``{b: text}`` (bold), the way Word
    writes a bold lead-in ("**责任单位**：…").
    """
    import docx

    document = docx.Document()
    meta = spec.get("metadata") or {}
    props = document.core_properties
    props.created = _when(meta.get("created")) or props.created
    props.modified = _when(meta.get("modified")) or props.modified
    props.author = str(meta.get("author", ""))
    props.title = str(meta.get("title", ""))
    for block in spec.get("body") or []:
        if "p" in block:
            _paragraph(document, block["p"])
            continue
        rows = block["table"]["rows"]
        width = max(len(r) for r in rows)
        table = document.add_table(rows=len(rows), cols=width)
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                table.cell(r, c).text = "" if value is None else str(value)
        for r1, c1, r2, c2 in block["table"].get("merge") or []:
            table.cell(r1 - 1, c1 - 1).merge(table.cell(r2 - 1, c2 - 1))
    document.save(str(path))


def _paragraph(document: Any, value: Any) -> None:
    if not isinstance(value, list):
        document.add_paragraph(str(value))
        return
    paragraph = document.add_paragraph()
    for run in value:
        if isinstance(run, dict):
            paragraph.add_run(str(run["b"])).bold = True
        else:
            paragraph.add_run(str(run))


def build_xlsx(spec: dict[str, Any], path: Path) -> None:
    """``sheets``: each ``{name, rows, merge}`` (merge as 1-based row, col, last row, last col)."""
    import openpyxl

    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)
    meta = spec.get("metadata") or {}
    workbook.properties.created = _when(meta.get("created")) or workbook.properties.created
    workbook.properties.modified = _when(meta.get("modified")) or workbook.properties.modified
    workbook.properties.creator = str(meta.get("creator", ""))
    for sheet_spec in spec["sheets"]:
        sheet = workbook.create_sheet(str(sheet_spec.get("name", "Sheet1")))
        for row in sheet_spec["rows"]:
            sheet.append([None if v in ("", None) else str(v) for v in row])
        for r1, c1, r2, c2 in sheet_spec.get("merge") or []:
            sheet.merge_cells(start_row=r1, start_column=c1, end_row=r2, end_column=c2)
    workbook.save(str(path))
