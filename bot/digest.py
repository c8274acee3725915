"""督办汇总: what a leader sees at a glance.  Pure: items in, one digest (or none) out;
and :func:`screen`, what of a digest fits on one phone screen."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import date
from typing import Any

from natsort import natsort_keygen

from bot.calendar import WorkCalendar

DUE_SOON_WORKDAYS = 3
SCREEN_ITEMS = 6  # + header, 4 summary lines, 3 blank lines, 另有 N 项: at most 15 lines
SCREEN_UNITS = 3  # units named on the summary line; the others are counted together
LEVELS = ("red", "yellow", "blue")  # most severe first

ref_key = natsort_keygen()
"""Sort key for task numbers as people read them: 7.2 before 50.1, 13.2 before 13.10.
The one used wherever refs are sorted (digests, bundles, listings)."""


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


_ITEM_FIELDS = tuple(f.name for f in fields(Item))


def _row(item: Item, **extra: Any) -> dict[str, Any]:
    """Shallow on purpose: an Item holds only scalars and dates (a deep-copying ``asdict``
    was most of a 10k-item digest)."""
    row = {
        k: (v.isoformat() if isinstance(v, date) else v)
        for k in _ITEM_FIELDS
        for v in (getattr(item, k),)
    }
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
        rows = sorted(grouped[unit], key=lambda r: (-r["overdue_days"], ref_key(r["ref"])))
        per_task: dict[int, dict[str, Any]] = {}
        for row in rows:  # a duty missed period after period shows once, oldest first, with a count
            if row["task_id"] in per_task:
                per_task[row["task_id"]]["periods"] += 1
            else:
                per_task[row["task_id"]] = {**row, "periods": 1}
        digest.overdue[unit] = list(per_task.values())
    digest.due_soon.sort(key=lambda r: (r["due_date"], ref_key(r["ref"])))
    seen: set[int] = set()  # a daily duty shows once, with its nearest due day
    digest.due_soon = [
        r for r in digest.due_soon if not (r["task_id"] in seen or seen.add(r["task_id"]))
    ]
    digest.completed.sort(key=lambda r: (r["completed_on"], ref_key(r["ref"])))
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


def screen(payload: Mapping[str, Any], *, limit: int = SCREEN_ITEMS) -> dict[str, Any]:
    """What a digest payload shows on one phone screen (issue 12.4): counts per level and
    per unit, the most overdue items first (then what is due soon, while there is room),
    and how many overdue items are left out.  ``payload["full"]`` lists every item."""
    overdue = [row for rows in payload.get("overdue", {}).values() for row in rows]
    overdue.sort(key=lambda r: (-r["overdue_days"], -_severity(r), ref_key(r["ref"])))
    due_soon = list(payload.get("due_soon", []))
    room = len(overdue) + len(due_soon) if payload.get("full") else limit
    shown = overdue[:room]
    listed = {row["task_id"] for row in shown}  # a weekly duty late and due again: once
    fresh = [row for row in due_soon if row["task_id"] not in listed]
    shown += fresh[: max(room - len(shown), 0)]
    levels = Counter(row.get("level") or "blue" for row in overdue)
    units = Counter(row.get("unit") or "" for row in overdue)
    named = sorted(units.items(), key=lambda kv: (-kv[1], kv[0]))[:SCREEN_UNITS]
    weekly = list(payload.get("weekly", []))
    done, total = sum(w["done"] for w in weekly), sum(w["total"] for w in weekly)
    rate = round(100 * done / total) if total else 0
    lowest = min(weekly, key=lambda w: (w["rate"], w["unit"])) if weekly else None
    if lowest is not None and lowest["rate"] >= rate:  # worth naming only when below the rest
        lowest = None
    return {
        "overdue_count": len(overdue),
        "levels": [(level, levels[level]) for level in LEVELS if levels[level]],
        "units": named,
        "other_units": len(units) - len(named),
        "other_items": sum(units.values()) - sum(n for _, n in named),
        "due_soon_count": len(due_soon),
        "completed_count": len(payload.get("completed", [])),
        "weekly": {"done": done, "total": total, "rate": rate, "lowest": lowest}
        if weekly
        else None,
        "shown": shown,
        "rest": max(len(overdue) - room, 0),
    }


def _severity(row: Mapping[str, Any]) -> int:
    level = row.get("level") or "blue"
    return len(LEVELS) - LEVELS.index(level) if level in LEVELS else 0
