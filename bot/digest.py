"""督办汇总: what a leader sees at a glance.  Pure: items in, one digest (or none) out."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

from bot.calendar import WorkCalendar

DUE_SOON_WORKDAYS = 3


@dataclass(frozen=True)
class Item:
    occurrence_id: int
    task_id: int
    ref: str
    title: str
    unit: str
    due_date: date
    status: str  # open | done
    level: str  # blue | yellow | red
    times_done: int
    times_required: int
    completed_on: date | None = None
    routine: bool = False  # a daily duty: shown when overdue, not as due-soon or completed


@dataclass
class Digest:
    overdue: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # unit → items
    due_soon: list[dict[str, Any]] = field(default_factory=list)
    completed: list[dict[str, Any]] = field(default_factory=list)
    weekly: list[dict[str, Any]] = field(default_factory=list)  # per unit: done, total, rate

    @property
    def empty(self) -> bool:
        return not (self.overdue or self.due_soon or self.completed or self.weekly)

    def as_payload(self) -> dict[str, Any]:
        return {
            "overdue": self.overdue,
            "due_soon": self.due_soon,
            "completed": self.completed,
            "weekly": self.weekly,
            "overdue_count": sum(len(v) for v in self.overdue.values()),
        }


def _row(item: Item, **extra: Any) -> dict[str, Any]:
    row = {k: (v.isoformat() if isinstance(v, date) else v) for k, v in asdict(item).items()}
    return {**row, **extra}


def build(
    items: list[Item],
    *,
    today: date,
    since: date,
    cal: WorkCalendar,
    weekly: list[Item] | None = None,
) -> Digest:
    """Overdue grouped by unit (most overdue first), due in the next 3 working days,
    completed since the last digest, and — on the week's first working day — last week's
    completion rate per unit."""
    digest = Digest()
    horizon = cal.shift_workdays(today, DUE_SOON_WORKDAYS)
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for item in items:
        if item.status == "open" and item.due_date < today:
            days = cal.workdays_after(item.due_date, today)
            grouped[item.unit].append(_row(item, overdue_days=max(days, 1)))
        elif item.routine:
            continue
        elif item.status == "open" and item.due_date <= horizon:
            digest.due_soon.append(_row(item))
        elif item.status == "done" and item.completed_on and item.completed_on >= since:
            digest.completed.append(_row(item))
    for unit in sorted(grouped, key=lambda u: -max(r["overdue_days"] for r in grouped[u])):
        rows = sorted(grouped[unit], key=lambda r: (-r["overdue_days"], r["ref"]))
        per_task: dict[int, dict[str, Any]] = {}
        for row in rows:  # a duty missed period after period shows once, oldest first, with a count
            if row["task_id"] in per_task:
                per_task[row["task_id"]]["periods"] += 1
            else:
                per_task[row["task_id"]] = {**row, "periods": 1}
        digest.overdue[unit] = list(per_task.values())
    digest.due_soon.sort(key=lambda r: (r["due_date"], r["ref"]))
    seen: set[int] = set()  # a daily duty shows once, with its nearest due day
    digest.due_soon = [
        r for r in digest.due_soon if not (r["task_id"] in seen or seen.add(r["task_id"]))
    ]
    digest.completed.sort(key=lambda r: (r["completed_on"], r["ref"]))
    if weekly:
        per_unit: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for item in weekly:
            per_unit[item.unit][1] += 1
            per_unit[item.unit][0] += item.status == "done"
        digest.weekly = [
            {"unit": unit, "done": done, "total": total, "rate": round(100 * done / total)}
            for unit, (done, total) in sorted(per_unit.items())
        ]
    return digest
