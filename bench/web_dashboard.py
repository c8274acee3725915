"""/ledger of a 5,000-task install, served in ≤ 300 ms (issue 10).  Prints min / median of 3.

A generated list (deadlines, monthly, quarterly and yearly duties over 20 units and 60 people,
a tenth of them answered) is imported into an empty store; then the admin, who sees every
task, asks for ``/ledger`` through the app (Starlette's test client: the whole request,
session, queries, judging every task and rendering) after one warm-up request.  Judgements
are remembered while the store is unchanged, so both cases are timed: the store unchanged,
and each request right after a new answer (every task judged again).

    .venv/bin/python bench/web_dashboard.py [--tasks 5000] [--runs 3] [--backend sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.fakes.databases import PG_URL, scratch_database  # noqa: E402

NOW = datetime(2024, 6, 3, 2, 0, tzinfo=UTC)  # Mon 10:00 Asia/Shanghai
PEOPLE = [f"人员{i:03d}" for i in range(60)]
UNITS = [f"单位{i:02d}" for i in range(20)]
EVERY = ("month", "quarter", "year")


def schedule_text(tasks: int) -> str:
    """Three in five tasks are deadlines (some already past), the rest recurring duties."""
    lines = [
        "schedule: bench-web",
        "title: 台账测速清单",
        "issued_on: 2024-01-02",
        "people:",
        *(
            f"  {p}: {{title: 科长{', chief: true' if i == 0 else ''}}}"
            for i, p in enumerate(PEOPLE)
        ),
        "units:",
        *(f"  {u}: {{contacts: [{PEOPLE[i % len(PEOPLE)]}]}}" for i, u in enumerate(UNITS)),
        f"admins: [{PEOPLE[1]}]",
        "tasks:",
    ]
    base = date(2024, 5, 1)
    for t in range(tasks):
        lead, unit = PEOPLE[t % 60], UNITS[t % 20]
        when = (
            f"due: {(base + timedelta(days=t % 120)).isoformat()}"
            if t % 5 < 3
            else f"every: {EVERY[t % 3]}"
        )
        lines.append(
            f'  - {{ref: "{t + 1}", title: 安全生产第{t}项, lead: [{lead}], '
            f"units: [{unit}], {when}}}"
        )
    return "\n".join(lines) + "\n"


def seed(url: str, tasks: int) -> None:
    from sqlmodel import select

    from bot import replies
    from bot.schedule.importer import import_schedule
    from bot.schedule.validate import load_schedule
    from bot.store.db import open_store, session_scope
    from bot.store.models import Occurrence

    loaded = load_schedule("bench-web.yaml", text=schedule_text(tasks))
    assert loaded.spec is not None, loaded.errors[:3]
    engine = open_store(url)
    started = NOW - timedelta(days=40)
    with session_scope(engine) as session:
        import_schedule(session, loaded.spec, now=started, horizon_days=62)
    with session_scope(engine) as session:
        from bot.roster import Roster
        from bot.store.models import Schedule

        schedule = session.get(Schedule, "bench-web")
        assert schedule is not None
        roster = Roster.cached(session, schedule)
        rows = session.exec(select(Occurrence).where(Occurrence.status == "open")).all()
        for occ in rows[:: max(1, len(rows) // (tasks // 10))]:
            assert occ.id is not None
            who = roster.assignees(occ.task_id)[0]
            replies.report_progress(
                session,
                occurrence_id=occ.id,
                person_id=who,
                now=started,
                note="正在推进",
                percent=50,
            )
    engine.dispose()


def signed_client(app: Any, engine: Any, name: str) -> Any:
    """A test client signed in as ``name`` through a one-time link."""
    from fastapi.testclient import TestClient
    from sqlmodel import select

    from bot.identities import identity_of
    from bot.store.db import session_scope
    from bot.store.models import Person
    from bot.web.auth import SIGNIN, issue_token

    with session_scope(engine) as session:
        person = session.exec(select(Person).where(Person.name == name)).one()
        token = issue_token(
            session,
            identity_id=identity_of(session, person, NOW),
            kind=SIGNIN,
            now=NOW,
            ttl=timedelta(minutes=15),
        )
    client = TestClient(app)
    form = client.get(f"/login/{token}").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form)
    assert csrf
    signed = client.post(f"/login/{token}", data={"csrf": csrf.group(1)}, follow_redirects=False)
    assert signed.status_code == 303
    return client


def measure(url: str, runs: int) -> tuple[list[float], list[float]]:
    from bot.clock import SimulatedClock
    from bot.settings import Settings
    from bot.store.db import open_store
    from bot.web.app import create_app

    engine = open_store(url)
    app = create_app(Settings(web_secret="bench"), engine=engine, clock=SimulatedClock(NOW))
    client = signed_client(app, engine, PEOPLE[1])  # the admin: every task
    began = time.perf_counter()
    first = client.get("/ledger")
    print(
        f"first request (everything read and judged): {(time.perf_counter() - began) * 1000:.0f} ms"
    )
    assert first.status_code == 200 and "共 " in first.text, first.text[:300]
    warm, cold = [], []
    for _ in range(runs):
        began = time.perf_counter()
        answer = client.get("/ledger")
        warm.append((time.perf_counter() - began) * 1000)
        assert answer.status_code == 200
    for n in range(runs):
        answer_one(engine, n)  # a new answer: every judgement must be made again
        began = time.perf_counter()
        answer = client.get("/ledger")
        cold.append((time.perf_counter() - began) * 1000)
        assert answer.status_code == 200
    task = re.search(r'href="(/s/bench-web/t/\d+)"', answer.text)
    assert task
    pages = []
    for _ in range(runs):
        began = time.perf_counter()
        assert client.get(task.group(1)).status_code == 200
        pages.append((time.perf_counter() - began) * 1000)
    print(
        f"a task page: min {min(pages):.0f} ms, median {statistics.median(pages):.0f} ms "
        f"({', '.join(f'{t:.0f}' for t in pages)})"
    )
    leader = signed_client(app, engine, PEOPLE[7])  # leads 1 task in 60
    leading = []
    for _ in range(runs):
        began = time.perf_counter()
        assert leader.get("/ledger").status_code == 200
        leading.append((time.perf_counter() - began) * 1000)
    print(
        f"a leader's /ledger: min {min(leading):.0f} ms, median {statistics.median(leading):.0f}"
        f" ms ({', '.join(f'{t:.0f}' for t in leading)})"
    )
    engine.dispose()
    return warm, cold


def answer_one(engine: Any, n: int) -> None:
    """One progress report, as chat would record it."""
    from sqlmodel import select

    from bot import replies
    from bot.roster import Roster
    from bot.store.db import session_scope
    from bot.store.models import Occurrence, Schedule

    with session_scope(engine) as session:
        schedule = session.get(Schedule, "bench-web")
        assert schedule is not None
        occ = session.exec(select(Occurrence).where(Occurrence.status == "open")).all()[n]
        assert occ.id is not None
        who = Roster.cached(session, schedule).assignees(occ.task_id)[0]
        replies.report_progress(
            session, occurrence_id=occ.id, person_id=who, now=NOW, note=f"第{n}次", percent=60
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as folder,
        scratch_database(args.backend, PG_URL, Path(folder)) as url,
    ):
        began = time.perf_counter()
        seed(url, args.tasks)
        print(f"seeded {args.tasks} tasks in {time.perf_counter() - began:.1f} s")
        warm, cold = measure(url, args.runs)
    for name, times in (("unchanged store", warm), ("after a new answer", cold)):
        print(
            f"/ledger, {args.tasks} tasks, {args.backend}, {name}: min {min(times):.0f} ms, "
            f"median {statistics.median(times):.0f} ms ({', '.join(f'{t:.0f}' for t in times)})"
        )


if __name__ == "__main__":
    main()
