"""A 10,000-task schedule file: load + validate, and the full import, on SQLite and PostgreSQL.

Issue 13 row 2 (goal: ≤ 3 s in total, validation included).  The file mixes what real lists
hold: deadlines (70 %), monthly and quarterly duties (25 %), ongoing ones (5 %), 300 people,
60 units.  Each run is a fresh child process.  ``--old-tree DIR`` also times load + validate
with another checkout's ``bot`` (e.g. ``git archive main | tar -x -C DIR``), to compare
loaders on the same file.  Prints min / median of ``--runs`` (3).

    .venv/bin/python bench/import_validate.py [--tasks 10000] [--old-tree /tmp/main-tree]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from datetime import date, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.import_plan import (  # noqa: E402
    child_import,
    in_child,
    load,
    min_med,
    uptime,
)
from tests.fakes.databases import PG_URL, scratch_database  # noqa: E402

PEOPLE = [f"人员{i:03d}" for i in range(300)]
UNITS = [f"单位{i:02d}" for i in range(60)]


def schedule_text(tasks: int) -> str:
    """``tasks`` tasks of every kind, written as an admin would (block style, comments)."""
    lines = [
        "# 生成的测速清单",
        "schedule: bench-validate",
        "title: 校验测速清单",
        "issued_on: 2024-06-01",
        "holidays: [2024-06-10]",
        "people:",
        *(
            f"  {p}: {{title: 科长{', chief: true' if i == 0 else ''}}}"
            for i, p in enumerate(PEOPLE)
        ),
        "units:",
        *(f"  {u}: {{contacts: [{PEOPLE[i % len(PEOPLE)]}]}}" for i, u in enumerate(UNITS)),
        f"admins: [{PEOPLE[1]}]",
        "policy:",
        "  remind: [-7, -3, -1, 0]",
        "  escalate:",
        "    - {after: 1, to: [assignees, responsible]}",
        "    - {after: 3, to: [lead]}",
        "    - {after: 5, to: [chief], repeat: 5}",
        "tasks:",
    ]
    base = date(2024, 6, 20)
    for t in range(tasks):
        lead, resp, unit = PEOPLE[t % 300], PEOPLE[(t * 7 + 1) % 300], UNITS[t % 60]
        lines += [
            f'  - ref: "{t // 100 + 1}.{t % 100 + 1}"',
            f"    title: 第{t}项安全生产任务",
            f"    lead: [{lead}]",
            f"    responsible: [{resp}]",
            f"    units: [{unit}]",
        ]
        kind = t % 20
        if kind < 14:
            lines.append(f"    due: {(base + timedelta(days=t % 180)).isoformat()}")
            lines.append("    deadline_text: 限期完成")
        elif kind < 18:
            lines += ["    every: month", "    by: day 2"]
        elif kind < 19:
            lines.append("    every: quarter")
        else:
            lines.append("    ongoing: true")
    return "\n".join(lines) + "\n"


def child_load(file: str) -> dict[str, Any]:
    _, took = load(Path(file))
    return {"load_s": took}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--old-tree", type=Path, help="time this checkout's loader too")
    parser.add_argument("--pg-url", default=os.environ.get("DUTYBOT_TEST_PG_URL", PG_URL))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-validate-") as folder:
        file = Path(folder) / "tasks.yaml"
        file.write_text(schedule_text(args.tasks), encoding="utf-8")
        size = file.stat().st_size / 2**20
        print(f"{args.tasks:,} tasks, {size:.1f} MiB; load average before: {uptime()}")
        loads = [in_child("load", file, script=__file__)["load_s"] for _ in range(args.runs)]
        print(f"load + validate (this tree): {min_med(loads)} s")
        if args.old_tree:
            old = os.environ.get("PYTHONPATH")
            os.environ["PYTHONPATH"] = str(args.old_tree.resolve())
            try:
                olds = [in_child("load", file, script=__file__)["load_s"] for _ in range(args.runs)]
            finally:
                if old is None:
                    os.environ.pop("PYTHONPATH")
                else:
                    os.environ["PYTHONPATH"] = old
            print(f"load + validate ({args.old_tree}): {min_med(olds)} s")
        for backend in args.backends.split(","):
            runs = []
            for _ in range(args.runs):
                with contextlib.ExitStack() as stack:
                    url = stack.enter_context(scratch_database(backend, args.pg_url))
                    runs.append(in_child("import", url, file, script=__file__))
            print(
                f"{backend}: load+validate {min_med([r['load_s'] for r in runs])} s, "
                f"import {min_med([r['store_s'] for r in runs])} s, "
                f"total {min_med([r['total_s'] for r in runs])} s "
                f"({runs[0]['occurrences']:,} occurrences)"
            )
        print(f"load average after: {uptime()}")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        import json

        kind, rest = sys.argv[2], sys.argv[3:]
        result = child_load(*rest) if kind == "load" else child_import(*rest)
        print(json.dumps(result))
    else:
        main()
