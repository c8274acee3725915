"""~1,000 malformed schedule files through `dutybot validate` and `dutybot import`.

Issue 15, "Schedule files and documents".  Every file is malformed or poisonous by
construction (deep nesting, alias bombs, NUL and surrogates, huge integers, wrong types in
every position, poison dates and offsets, sub-daily RRULEs, holiday and workday, huge
sizes, bad tags and syntax), so the right answer to each is exit 1 with FILE:LINE:COLUMN
errors.  Counted per run:

- crashed: an exception other than the CLI's exit, "Traceback" in the output, or MemoryError
  under a 2 GiB address-space limit;
- over 5 s: validate or import took longer (a file past ``--kill`` seconds is killed);
- poison accepted: exit 0 (the file was taken), except for "odd value" files (null, [], 5 …
  where some fields allow them: those count only for crashes, time and positions);
- no position: exit 1 without a FILE:LINE:COLUMN line;
- store touched: the store's row counts changed (checked after each run).

Files run in a worker process (CliRunner, one interpreter for many files, restarted after a
kill).  ``--tree DIR`` runs another checkout's ``bot`` (``git archive main | tar -x -C DIR``).
Prints min / median of ``--runs`` (3).

    .venv/bin/python bench/attack_schedules.py [--runs 3] [--every 1] [--tree DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import select
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIMIT_S = 5.0
HEAD = """\
schedule: attack
title: 攻击清单
issued_on: 2022-05-23
people:
  邓清华: {title: 主任, chief: true}
  张敏: {title: 科长}
units:
  能源科: {contacts: [张敏]}
admins: [张敏]
"""
TASK = '  - {ref: "1", title: 一, lead: [邓清华], units: [能源科], due: 2022-05-31}\n'
GOOD = HEAD + "tasks:\n" + TASK
WRONG = ["[[x]]", "{a: {b: 1}}", "[null]", "1.5"]  # wrong for every field of the format
ODD = ["null", "[]", "{}", "5", "true", "2022-05-31"]  # right for some fields: exit 0 may be fine
FIELDS = {  # (text to replace, template with {v})
    "title": ("title: 攻击清单", "title: {v}"),
    "schedule": ("schedule: attack", "schedule: {v}"),
    "issued_on": ("issued_on: 2022-05-23", "issued_on: {v}"),
    "people": (
        "people:\n  邓清华: {title: 主任, chief: true}\n  张敏: {title: 科长}",
        "people: {v}",
    ),
    "person": ("张敏: {title: 科长}", "张敏: {v}"),
    "person.title": ("{title: 科长}", "{{title: {v}}}"),
    "person.chief": ("chief: true", "chief: {v}"),
    "units": ("units:\n  能源科: {contacts: [张敏]}", "units: {v}"),
    "unit": ("能源科: {contacts: [张敏]}", "能源科: {v}"),
    "contacts": ("{contacts: [张敏]}", "{{contacts: {v}}}"),
    "admins": ("admins: [张敏]", "admins: {v}"),
    "tasks": ("tasks:\n" + TASK, "tasks: {v}\n"),
    "task": (TASK, "  - {v}\n"),
    "ref": ('ref: "1"', "ref: {v}"),
    "task.title": ("title: 一", "title: {v}"),
    "lead": ("lead: [邓清华]", "lead: {v}"),
    "lead.item": ("lead: [邓清华]", "lead: [邓清华, {v}]"),
    "units.item": ("units: [能源科]", "units: [{v}]"),
    "due": ("due: 2022-05-31", "due: {v}"),
}
POLICY_FIELDS = [
    "remind: {v}",
    "remind: [{v}]",
    "escalate: {v}",
    "escalate: [{v}]",
    "escalate: [{{after: {v}, to: [lead]}}]",
    "escalate: [{{after: 1, to: {v}}}]",
    "escalate: [{{after: 1, to: [lead], repeat: {v}}}]",
    "digest: {v}",
    "digest: {{at: {v}}}",
    "digest: {{to: {v}}}",
    "delivery: {{windows: {v}}}",
    "delivery: {{daily_cap: {v}}}",
    "evidence: {v}",
]


def with_policy(line: str) -> str:
    return HEAD + "policy:\n  " + line + "\ntasks:\n" + TASK


def task_with(extra: str) -> str:
    return (
        HEAD
        + "tasks:\n"
        + f'  - {{ref: "1", title: 一, lead: [邓清华], units: [能源科], {extra}}}\n'
    )


def bomb(width: int, depth: int) -> str:
    lines = ['a0: &a0 ["lol"]']
    for i in range(1, depth + 1):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]")
    return HEAD + "\n".join(lines) + "\ntasks:\n" + TASK


def files(rng: random.Random) -> Iterator[tuple[str, str]]:
    """(kind, text) for every attack file."""
    for levels in [100, 500, 1000, 2000, 5000, 10_000, 20_000, 50_000] * 3:
        yield "deep", HEAD + "tasks:\n  - " + "[" * levels + "]" * levels + "\n"
        yield "deep", HEAD + "x: " + "{a: " * levels + "1" + "}" * levels + "\ntasks: []\n"
    for width, depth in [(10, 8), (10, 9), (2, 30), (3, 20), (5, 12), (4, 15), (9, 9)] * 4:
        yield "alias bomb", bomb(width, depth)
    for _ in range(100):
        char = rng.choice(["\x00", "\ud800", "\udfff", "\udc80"])
        at = rng.randrange(len(GOOD))
        yield "bad character", GOOD[:at] + char + GOOD[at:]
    for escape in ['"\\0"', '"\\ud800"', '"a\\x00"', '"\\udfff"', '"\\U0000d800"'] * 4:
        yield "bad character", GOOD.replace("title: 一", f"title: {escape}")
    digits = [19, 20, 22, 40, 100, 1000, 4301, 10_000]
    numeric = [
        "escalate: [{{after: {v}, to: [lead]}}]",
        "remind: [-{v}]",
        "escalate: [{{after: 1, to: [lead], repeat: {v}}}]",
        "delivery: {{daily_cap: {v}}}",
    ]
    for n in digits:
        for line in numeric:
            for form in ("{d}", "0x{d}", "0o{o}", "{d}_{d}", "-{d}"):
                value = form.format(d="9" * n, o="7" * n)
                yield "huge integer", with_policy(line.format(v=value))
        yield "huge integer", GOOD.replace('ref: "1"', f"ref: {'7' * n}")
        yield (
            "huge integer",
            task_with(f"every: month, times: {'8' * n}").replace("due: 2022-05-31, ", ""),
        )
    values = [("wrong type", v) for v in WRONG] + [("odd value", v) for v in ODD]
    for old, template in FIELDS.values():
        for kind, value in values:
            text = GOOD.replace(old, template.format(v=value), 1)
            if text != GOOD:
                yield kind, text
    for template in POLICY_FIELDS:
        for kind, value in values:
            yield kind, with_policy(template.format(v=value))
    for extra in ["every: {v}", "by: {v}", "times: {v}", "ongoing: {v}", "from: {v}", "until: {v}"]:
        for kind, value in values:
            yield kind, task_with(extra.format(v=value)).replace("due: 2022-05-31, ", "")
    years = [1, 2, 100, 1000, 1900, 1999, 2016, 2033, 2100, 2200, 5000, 9999]
    for year in years:
        day = f"{year:04d}-12-31"
        yield "poison date", GOOD.replace("due: 2022-05-31", f"due: {day}")
        yield "poison date", GOOD.replace("due: 2022-05-31", f"due: {year:04d}-01-03")
        yield (
            "poison date",
            task_with(f"every: month, until: {day}").replace("due: 2022-05-31, ", ""),
        )
        yield "poison date", task_with(f"every: week, from: {day}").replace("due: 2022-05-31, ", "")
        yield "poison date", HEAD + f"holidays: [{day}]\ntasks:\n" + TASK
        yield "poison date", HEAD + f"workdays: [{day}]\ntasks:\n" + TASK
        if not 2000 <= year <= 2099:  # poison whatever the schedule's year is
            yield "poison date", GOOD.replace("issued_on: 2022-05-23", f"issued_on: {day}")
            yield (
                "poison date",
                GOOD.replace("issued_on: 2022-05-23\n", "").replace(
                    "due: 2022-05-31", f"due: {day}"
                ),
            )
    for value in [-367, -1000, -100_000, -(10**9), "-1e8", "-1e300", "-.inf"]:
        yield "poison offset", with_policy(f"remind: [{value}]")
        yield (
            "poison offset",
            GOOD.replace("due: 2022-05-31", f"due: 2022-05-31, policy: {{remind: [{value}]}}"),
        )
    for value in [367, 1000, 100_000, 10**8, "1e8", "1e300", ".inf", ".nan"]:
        yield "poison offset", with_policy(f"escalate: [{{after: {value}, to: [lead]}}]")
        yield "poison offset", with_policy(f"escalate: [{{after: 1, to: [lead], repeat: {value}}}]")
        yield (
            "poison offset",
            task_with(f"every: day, times: {value}").replace("due: 2022-05-31, ", ""),
        )
        yield (
            "poison offset",
            GOOD.replace(
                "due: 2022-05-31",
                f"due: 2022-05-31, policy: {{escalate: [{{after: {value}, to: [lead]}}]}}",
            ),
        )
    rules = [
        "FREQ=SECONDLY",
        "FREQ=MINUTELY",
        "FREQ=HOURLY",
        "FREQ=SECONDLY;INTERVAL=1",
        "FREQ=DAILY;BYHOUR=0,1,2,3,4,5,6,7,8,9,10,11",
        "FREQ=DAILY;BYMINUTE=0,30",
        "FREQ=WEEKLY;BYSECOND=1,2",
        "FREQ=DAILY;COUNT=100000",
        "FREQ=MONTHLY;COUNT=99999999",
        "FREQ=HOURLY;UNTIL=20221231T000000",
        "freq=secondly",
        "FREQ=MINUTELY;COUNT=5",
    ]
    for rule in rules * 4:
        yield "sub-daily rrule", task_with(f'every: "{rule}"').replace("due: 2022-05-31, ", "")
    for offset in range(30):
        day = f"2022-{offset % 12 + 1:02d}-{offset % 28 + 1:02d}"
        yield (
            "holiday and workday",
            HEAD + f"holidays: [{day}]\nworkdays: [2022-01-01, {day}]\ntasks:\n" + TASK,
        )
    people = "".join(f"  人员{i}: {{title: 科员}}\n" for i in range(200_000))
    yield "size", GOOD.replace("people:\n", "people:\n" + people, 1)
    people = "".join(f"  人员{i}: {{title: 科员}}\n" for i in range(30_000))
    yield "size", GOOD.replace("people:\n", "people:\n" + people, 1)
    tasks = "".join(
        f'  - {{ref: "9.{i}", title: 任务, lead: [邓清华], due: 2022-06-30}}\n'
        for i in range(25_000)
    )
    yield "size", GOOD + tasks
    yield "size", GOOD + "# " + "x" * (9 * 2**20) + "\n"
    syntax = [
        "tasks:\n  - !!python/object/apply:os.system [echo]\n",
        "tasks:\n  - {ref: !!binary aGk=, title: 一}\n",
        "x: &a [*a]\ntasks: []\n",
        "admins: *nowhere\ntasks: []\n",
        "tasks:\n" + TASK + "---\nb: 1\n",
        "? [a, b]\n: 1\ntasks: []\n",
        "tasks:\n\t- 1\n",
        'tasks:\n  - {ref: "1, title: 一}\n',
        "tasks:\n  - <<: 5\n    ref: '1'\n",
        "tasks: [\n",
        "admins: [张敏]\n" + "tasks:\n" + TASK,
        "x: !foo 5\ntasks: []\n",
        "x: !!set {a, b}\ntasks: []\n",
    ]
    for text in syntax * 4:
        yield "syntax", HEAD + text


# -- the worker: one interpreter, many files ------------------------------------------------
POSITION = re.compile(r"^(.+?):\d+:\d+: \S", re.M)


def worker() -> None:
    """Reads ``PATH`` lines, answers one JSON line per file: both commands' outcomes."""
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (2 * 2**30, 2 * 2**30))
    from typer.testing import CliRunner

    from bot.cli import app
    from bot.settings import get_settings

    get_settings.cache_clear()
    runner = CliRunner()
    for line in sys.stdin:
        path = line.strip()
        out = {}
        for command in ("validate", "import"):
            args = [command, path] + (["--now", "2022-05-23T09:00"] if command == "import" else [])
            started = time.perf_counter()
            try:
                result = runner.invoke(app, args)
                exc = result.exception
                crashed = (exc is not None and not isinstance(exc, SystemExit)) or (
                    "Traceback" in result.output
                )
                code, output = result.exit_code, result.output
            except MemoryError:
                crashed, code, output = True, -1, ""
            out[command] = {
                "s": time.perf_counter() - started,
                "crashed": crashed,
                "code": code,
                "position": any(m.group(1) == path for m in POSITION.finditer(output)),
            }
        print(json.dumps(out), flush=True)


class Worker:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.proc: subprocess.Popen[str] | None = None

    def ask(self, path: Path, kill_after: float) -> dict[str, dict[str, object]] | None:
        if self.proc is None:
            self.proc = subprocess.Popen(
                [sys.executable, __file__, "--worker"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
                env=self.env,
                cwd=ROOT,
            )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"{path}\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], kill_after)
        answer = self.proc.stdout.readline() if ready else ""
        if not answer:  # hung or died: kill it, a fresh one takes the next file
            self.close()
            return None
        return json.loads(answer)

    def close(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


def row_counts(url: str) -> dict[str, int]:
    from sqlalchemy import create_engine, inspect, text

    engine = create_engine(url)
    with engine.connect() as conn:
        names = inspect(conn).get_table_names()
        found = {
            n: int(conn.execute(text(f'select count(*) from "{n}"')).scalar_one()) for n in names
        }
    engine.dispose()
    return found


def one_run(
    paths: list[tuple[str, Path]], env: dict[str, str], url: str, kill: float
) -> Counter[str]:
    counts: Counter[str] = Counter()
    before = row_counts(url)
    pool = Worker(env)
    try:
        for kind, path in paths:
            answer = pool.ask(path, kill)
            if answer is None:
                counts["over 5 s"] += 1
                counts[f"over 5 s: {kind}"] += 1
                continue
            outcome = "ok"
            for said in answer.values():
                if said["crashed"]:
                    outcome = "crashed"
                elif said["code"] == 0 and kind != "odd value":
                    outcome = "poison accepted"
                elif float(said["s"]) > LIMIT_S:  # type: ignore[arg-type]
                    outcome = "over 5 s"
                elif not said["position"] and outcome == "ok":
                    outcome = "no position"
                if outcome != "ok":
                    break
            counts[outcome] += 1
            if outcome != "ok":
                counts[f"{outcome}: {kind}"] += 1
    finally:
        pool.close()
    counts["store touched"] += int(row_counts(url) != before)
    return counts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--every", type=int, default=1, help="take every Nth file only")
    parser.add_argument("--kill", type=float, default=8.0, help="kill a file after S seconds")
    parser.add_argument("--tree", type=Path, help="run this checkout's bot instead")
    parser.add_argument("--database-url", help="default: a fresh SQLite file")
    args = parser.parse_args(argv)
    rng = random.Random(15)
    with tempfile.TemporaryDirectory(prefix="attack-schedules-") as folder:
        paths = []
        for n, (kind, text) in enumerate(files(rng)):
            if n % args.every:
                continue
            path = Path(folder) / f"{n:04d}.yaml"
            path.write_text(text, encoding="utf-8", errors="surrogatepass")
            paths.append((kind, path))
        url = args.database_url or f"sqlite:///{folder}/store.db"
        env = {**os.environ, "DATABASE_URL": url, "DUTYBOT_LANG": "zh-CN"}
        pythonpath = [str(args.tree.resolve())] if args.tree else []
        env["PYTHONPATH"] = os.pathsep.join([*pythonpath, str(ROOT)])
        good = Path(folder) / "good.yaml"
        good.write_text(GOOD, encoding="utf-8")
        subprocess.run(  # a store with one schedule in it, to see that it stays as it was
            [sys.executable, "-m", "bot", "import", "--now", "2022-05-23T09:00", str(good)],
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
            check=True,
        )
        print(f"{len(paths)} files ({Counter(k for k, _ in paths)}); tree: {args.tree or ROOT}")
        print(f"load average before: {Path('/proc/loadavg').read_text().split()[0]}", flush=True)
        runs = []
        for run in range(args.runs):
            started = time.perf_counter()
            counts = one_run(paths, env, url, args.kill)
            took = time.perf_counter() - started
            runs.append((counts, took))
            print(f"run {run + 1}: {took:.0f} s, {dict(sorted(counts.items()))}", flush=True)
        for key in ("crashed", "over 5 s", "poison accepted", "no position", "store touched", "ok"):
            values = [c[key] for c, _ in runs]
            print(f"{key:16s} min {min(values)} / median {statistics.median(values):g}")
        times = [t for _, t in runs]
        print(f"run time s       min {min(times):.0f} / median {statistics.median(times):.0f}")
        print(f"load average after: {Path('/proc/loadavg').read_text().split()[0]}")


if __name__ == "__main__":
    if sys.argv[1:] == ["--worker"]:
        worker()
    else:
        main()
