"""``dutybot extract`` on the nasty documents: exit code, wall time and peak RSS.

Prints figures; tests/test_extract_hostile.py checks the same documents (exit 1, both
languages, no traceback, < 5 s).  Each document runs 3 times in a fresh child process (the
real command, interpreter start-up included); the table gives min/median seconds and the
largest peak RSS (the child's own ``ru_maxrss`` from ``wait4``).

    .venv/bin/python bench/extract_hostile.py
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fakes.hostile_documents import NASTY, run_extract

RUNS = 3


def main() -> int:
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}, {os.cpu_count()} cores")
    print("| document | size on disk | expected | exit | seconds min/median | peak RSS MiB |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="nasty-") as folder:
        for nasty in NASTY:
            path = nasty.materialise(Path(folder))
            outcomes = [
                run_extract(path, Path(folder) / "out.yaml", timeout=60) for _ in range(RUNS)
            ]
            times = [o.seconds for o in outcomes]
            print(
                f"| {nasty.name} | {path.stat().st_size / 1024:,.0f} KiB | {nasty.expected} "
                f"| {outcomes[0].code} | {min(times):.2f}/{statistics.median(times):.2f} "
                f"| {max(o.peak_mib for o in outcomes):.0f} |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
