"""How long ``dutybot extract`` takes on a 60-task document (issue 14: under 1 s).

Prints figures.  Two measures, each min/median of 3:
- in process: read → extract → draft YAML (what the command does once Python is up);
- the whole command in a fresh process, interpreter start-up and imports included.
Documents: seed 000 (50 items, 61 draft tasks with its recurring sub-tasks) and a generated
list of 60 measures with owner parentheticals and deadlines; and, for scale, 1,000 items.

    .venv/bin/python bench/extract_speed.py
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.extract.cli import make_draft
from bot.extract.reader import read_document
from tests.fakes.documents import ROOTS
from tests.fakes.hostile_documents import run_extract

RUNS = 3
MEASURE = (
    "（{cn}）强化第{n}项安全监管。督促企业落实主体责任，每季度至少开展1次专项检查，"
    "{month}月底前完成隐患整改。（市应急局会同市住建局、市交通运输局负责）"
)
CN = "一二三四五六七八九十"


def _cn(n: int) -> str:
    tens, ones = divmod(n, 10)
    head = "" if tens == 0 else ("十" if tens == 1 else CN[tens - 1] + "十")
    return head + (CN[ones - 1] if ones else "")


def measures(count: int) -> str:
    lines = ["江州市人民政府办公室关于加强安全生产的实施意见", "江州府办发〔2023〕9号"]
    for n in range(1, count + 1):
        if n <= 99:
            lines.append(MEASURE.format(cn=_cn(n), n=n, month=(n % 12) + 1))
        else:
            lines.append(f"{n % 1000}." + MEASURE.split("）", 1)[1].format(n=n, month=(n % 12) + 1))
    lines.append("2023年4月12日")
    return "\n".join(lines)


def in_process(path: Path) -> tuple[list[float], int]:
    times = []
    tasks = 0
    for _ in range(RUNS):
        started = time.perf_counter()
        _, text = make_draft(read_document(path), year=None, today=date.today())
        times.append(time.perf_counter() - started)
        tasks = text.count("\n  - ref: ")
    return times, tasks


def main() -> int:
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}, {os.cpu_count()} cores")
    print(
        "| document | draft tasks | in process s min/median | command s min/median | peak RSS MiB |"
    )
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="speed-") as folder:
        docs = []
        seed = ROOTS["seeds"] / "000_69e34481b734bfda.txt"
        if seed.exists():
            docs.append(("seed 000", seed))
        for count in (60, 1000):
            path = Path(folder) / f"measures-{count}.txt"
            path.write_text(measures(count), encoding="utf-8")
            docs.append((f"{count} measures", path))
        for name, path in docs:
            inside, tasks = in_process(path)
            whole = [run_extract(path, Path(folder) / "o.yaml", timeout=120) for _ in range(RUNS)]
            seconds = [o.seconds for o in whole]
            print(
                f"| {name} | {tasks} | {min(inside):.3f}/{statistics.median(inside):.3f} "
                f"| {min(seconds):.2f}/{statistics.median(seconds):.2f} "
                f"| {max(o.peak_mib for o in whole):.0f} |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
