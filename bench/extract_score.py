"""How well ``dutybot extract`` reads the labelled corpus: per-field precision/recall/F1.

Prints figures; tests/test_extract_corpus.py pins the same numbers above the goal.  Each
document goes through what the command does (read → extract → draft YAML), the draft is
parsed back, and its tasks are scored against tests/data/extract/labels.yaml (see
bot/extract/score.py for how).  "owners" is the four roles counted as one field.

    .venv/bin/python bench/extract_score.py            # one table per document, then overall
    .venv/bin/python bench/extract_score.py --show     # and every difference
    .venv/bin/python bench/extract_score.py --only docs/yubei-twice-2023.txt
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from ruamel.yaml import YAML

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.extract.cli import make_draft
from bot.extract.reader import read_document
from bot.extract.score import Count, draft_facts, mismatches, owners, score
from tests.fakes.documents import Labelled, corpus

SHOWN = ("tasks", "owners", "lead", "responsible", "units", "partners", "due", "ongoing", "every")
GOAL = 0.95
TODAY = date(2030, 1, 1)  # far from every document's year: a fallback to it shows as wrong


@dataclass
class Result:
    doc: Labelled
    counts: dict[str, Count]
    problems: list[str]
    year: int | None
    year_guessed: bool


def fields_of(doc: Labelled) -> list[str]:
    base = ["lead", "responsible", "units", "partners", "due", "ongoing", "every"]
    return [*base, "deadline_text"] if doc.deadline_text else base


def score_document(doc: Labelled, folder: Path) -> Result:
    path = doc.materialise(folder)
    extraction, text = make_draft(read_document(path), year=None, today=TODAY)
    tree = YAML(typ="safe").load(text) if text else {}
    predicted = draft_facts((tree or {}).get("tasks") or [])
    fields = fields_of(doc)
    counts = score(predicted, doc.tasks, fields)
    counts["owners"] = owners(counts)
    problems = mismatches(predicted, doc.tasks, fields)
    year_guessed = not extraction.year_found
    if extraction.meta.year != doc.year or year_guessed != doc.year_guessed:
        problems.insert(
            0, f"year {extraction.meta.year} (guessed: {year_guessed}), labelled {doc.year}"
        )
    return Result(doc, counts, problems, extraction.meta.year, year_guessed)


def run_corpus(only: list[str] | None = None) -> list[Result]:
    with tempfile.TemporaryDirectory(prefix="extract-corpus-") as folder:
        return [
            score_document(doc, Path(folder)) for doc in corpus() if not only or doc.name in only
        ]


def total(results: list[Result]) -> dict[str, Count]:
    out: dict[str, Count] = {}
    for result in results:
        for name, count in result.counts.items():
            out.setdefault(name, Count()).add(count)
    return out


def _row(name: str, counts: dict[str, Count], columns: tuple[str, ...]) -> str:
    cells = []
    for column in columns:
        c = counts.get(column)
        cells.append("—" if c is None else f"{c.precision:.2f}/{c.recall:.2f}/{c.f1:.2f}")
    return f"| {name} | " + " | ".join(cells) + " |"


def table(results: list[Result]) -> str:
    columns = (*SHOWN, "deadline_text")
    lines = [
        "| document | " + " | ".join(columns) + " |",
        "|---|" + "---|" * len(columns),
    ]
    for result in results:
        lines.append(_row(f"{result.doc.name} ({len(result.doc.tasks)})", result.counts, columns))
    tasks = sum(len(r.doc.tasks) for r in results)
    lines.append(_row(f"**all** ({tasks})", total(results), columns))
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--show", action="store_true", help="print every difference")
    parser.add_argument("--only", action="append", help="score only this document (repeatable)")
    args = parser.parse_args()
    results = run_corpus(args.only)
    print("precision/recall/F1 per field (tasks: refs found)\n")
    print(table(results))
    overall = total(results)
    print()
    for name in ("tasks", "owners", "due", "ongoing", "every"):
        c = overall[name]
        mark = "ok" if min(c.recall if name == "tasks" else c.f1, 1.0) >= GOAL else "BELOW GOAL"
        print(f"{name:>8}: P {c.precision:.3f} R {c.recall:.3f} F1 {c.f1:.3f}  {mark}")
    years = [r for r in results if r.problems and r.problems[0].startswith("year ")]
    print(f"    year: {len(results) - len(years)}/{len(results)} documents right")
    if args.show:
        for result in results:
            if result.problems:
                print(f"\n## {result.doc.name}")
                for problem in result.problems:
                    print("  " + problem)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
