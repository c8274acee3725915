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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.extract.score import Count
from tests.fakes.documents import Scored, score_corpus, total

SHOWN = ("tasks", "owners", "lead", "responsible", "units", "partners", "due", "ongoing", "every")
GOAL = 0.95


def _row(name: str, counts: dict[str, Count], columns: tuple[str, ...]) -> str:
    cells = []
    for column in columns:
        c = counts.get(column)
        cells.append("—" if c is None else f"{c.precision:.2f}/{c.recall:.2f}/{c.f1:.2f}")
    return f"| {name} | " + " | ".join(cells) + " |"


def table(results: list[Scored]) -> str:
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
    results = score_corpus(args.only)
    print("precision/recall/F1 per field (tasks: refs found)\n")
    print(table(results))
    overall = total(results)
    print()
    for name in ("tasks", "owners", "due", "ongoing", "every"):
        c = overall[name]
        mark = "ok" if min(c.recall if name == "tasks" else c.f1, 1.0) >= GOAL else "BELOW GOAL"
        print(f"{name:>8}: P {c.precision:.3f} R {c.recall:.3f} F1 {c.f1:.3f}  {mark}")
    right = sum(r.year_right for r in results)
    print(f"    year: {right}/{len(results)} documents right (and said when guessed)")
    if args.show:
        for result in results:
            if result.problems:
                print(f"\n## {result.doc.name}")
                for problem in result.problems:
                    print("  " + problem)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
