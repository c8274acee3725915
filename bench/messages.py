"""Messages as people see them: how long digests get, and what rendering one message costs.

Prints figures; it is not a test.

- **digest screen** (issue 12.4, "at most about 15 lines"): each shipped schedule is imported
  into a scratch SQLite database as of its issue date and left unanswered (the worst case: a
  list nobody works on); on every working day of the next ``--days`` days at 08:30 the
  engine plans the digests and each is composed and rendered for Telegram.  Per schedule:
  how many digests, their lines (max / median), the longest in characters (Telegram HTML),
  and how many needed "另有 N 项".  Deterministic: one run is the figure.
- **render cost**: ``compose`` + ``render_html`` for a single reminder, a 10-item reminder
  bundle and a 68-task digest, timed ``--repeat`` times each, min / median of 3 rounds (the
  dispatcher does this inside its prepare transaction, once per message).

    .venv/bin/python bench/messages.py
    .venv/bin/python bench/messages.py --days 60 --repeat 500
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from bot.adapters.telegram import render_html
from bot.engine import Engine
from bot.materialise import schedule_time
from bot.messages import compose, plain_text, row_payload
from bot.schedule.importer import import_schedule
from bot.schedule.validate import load_schedule
from bot.store.db import open_store, session_scope
from bot.store.models import Notification, Person, Schedule
from tests.fakes.databases import scratch_database

SCHEDULES = Path(__file__).resolve().parent.parent / "schedules"


def digest_screen(path: Path, days: int) -> dict[str, Any]:
    loaded = load_schedule(path)
    assert loaded.spec is not None, path
    spec = loaded.spec
    with scratch_database("sqlite") as url:
        db = open_store(url)
        first = spec.issued_on or date(2022, 5, 23)
        start = datetime.combine(first, clock_time(8, 0), ZoneInfo(spec.timezone))
        with session_scope(db) as session:
            import_schedule(session, spec, now=start, horizon_days=62)
            found = session.get(Schedule, spec.schedule)
            assert found is not None
            st = schedule_time(found)
        engine = Engine(db, horizon_days=62)
        lines: list[int] = []
        longest = 0
        with_rest = 0
        for offset in range(days):
            day = first + timedelta(days=offset)
            if not st.calendar.is_workday(day):
                continue
            now = datetime.combine(day, clock_time(8, 30), st.tz)
            engine.materialise_all(now)
            engine.plan_digests(now)
            with Session(db) as session:
                rows = session.exec(
                    select(Notification, Person)
                    .join(Person, col(Person.id) == Notification.person_id)
                    .where(Notification.kind == "digest", Notification.state == "pending")
                ).all()
                for row, person in rows:
                    message = compose(
                        "digest", [row_payload(row)], person=person.name, lang="zh-CN"
                    )
                    lines.append(len(plain_text(message).splitlines()))
                    longest = max(longest, len(render_html(message)[0]))
                    with_rest += bool(message.footer)
                    row.state = "sent"
                    session.add(row)
                session.commit()
        db.dispose()
    return {
        "schedule": path.name,
        "digests": len(lines),
        "lines max": max(lines, default=0),
        "lines median": statistics.median(lines) if lines else 0,
        "over 15": sum(n > 15 for n in lines),
        "longest chars": longest,
        "with 另有 N 项": with_rest,
    }


def render_cost(repeat: int) -> list[dict[str, Any]]:
    base = {
        "schedule": "丰都县发展改革委落实安全生产“十五条硬措施”责任清单",
        "title": "加强风险研判，确定重点检查对象，编制年度监督检查计划",
        "occurrence_kind": "deadline", "due_date": "2022-06-10", "original_due": None,
        "times_done": 0, "times_required": 1, "overdue_days": 3, "assignees": ["张敏"],
        "lead": ["熊伟"], "units": ["能源科"], "evidence": "optional", "level": "blue",
        "offset": -1, "repeat": 0,
    }  # fmt: skip
    one = [{**base, "ref": "35", "occurrence_id": 1}]
    ten = [{**base, "ref": str(n), "occurrence_id": n} for n in range(1, 11)]
    rows = [
        {**base, "ref": str(n), "occurrence_id": n, "task_id": n, "unit": f"科室{n % 6}",
         "status": "open", "overdue_days": n, "periods": 1}
        for n in range(1, 69)
    ]  # fmt: skip
    digest = [{"schedule": base["schedule"], "date": "2022-07-04", "whole": True,
               "overdue": {"能源科": rows}, "due_soon": [], "completed": [], "weekly": [],
               "overdue_count": 68}]  # fmt: skip
    results = []
    for name, kind, payloads in (
        ("reminder", "reminder", one),
        ("reminder bundle of 10", "reminder", ten),
        ("digest of 68 overdue", "digest", digest),
    ):
        rounds = []
        for _ in range(3):
            began = time.perf_counter()
            for _ in range(repeat):
                render_html(compose(kind, payloads, person="张敏", lang="zh-CN"))
            rounds.append((time.perf_counter() - began) / repeat * 1000)
        results.append(
            {"message": name, "ms min": min(rounds), "ms median": statistics.median(rounds)}
        )
    return results


def table(rows: list[dict[str, Any]]) -> str:
    heads = list(rows[0])
    out = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    for row in rows:
        cells = [f"{v:.3f}" if isinstance(v, float) else str(v) for v in row.values()]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=300)
    args = parser.parse_args()
    print(f"== digest screen: every working day for {args.days} days, nobody answering ==")
    print(table([digest_screen(path, args.days) for path in sorted(SCHEDULES.glob("*.yaml"))]))
    print(f"\n== render cost: compose + render_html, {args.repeat} each, 3 rounds ==")
    print(table(render_cost(args.repeat)))


if __name__ == "__main__":
    main()
