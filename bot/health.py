"""What /healthz and /metrics read from the store.

Both ask the database at request time rather than keeping counts in this process: several
workers share one store, and a web process that sends nothing must still say how the
queue stands.  Each adapter's last successful call is the newest ``ChatBinding.last_ok_at``
of its platform (the sender stamps it on every accepted send, whichever worker sent), and,
when the sender runs in this process, its own circuit's last success.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Gauge
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from bot.store.db import current_revision, head_revision
from bot.store.models import ChatBinding, Delivery, Notification


@dataclass
class HealthReport:
    """The /healthz answer: ``ok`` decides 200 or 503; ``body`` is the JSON."""

    ok: bool
    body: dict[str, Any] = field(default_factory=dict)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:300]


def check_health(
    engine: Engine,
    *,
    now: datetime,
    platforms: Iterable[str],
    last_ok: Mapping[str, datetime] | None = None,
    process_errors: Mapping[str, str] | None = None,
) -> HealthReport:
    """Database reachable, migrations at head, each platform's last successful call.

    Unhealthy (503) when the store cannot be reached, its schema is not at the head
    revision, or a loop of this process reports a failure; a platform that has not sent
    yet is not a failure (a new install has sent nothing)."""
    body: dict[str, Any] = {"now": now.isoformat()}
    ok = True
    database: dict[str, Any] = {"ok": False}
    adapters: dict[str, dict[str, Any]] = {name: {"last_ok": None} for name in platforms}
    try:
        head = head_revision()
        current = current_revision(engine)
        database.update(ok=True, revision=current, head=head, at_head=current == head)
        with Session(engine) as session:
            rows = session.exec(
                select(ChatBinding.platform, func.max(ChatBinding.last_ok_at)).group_by(
                    ChatBinding.platform
                )
            ).all()
        for platform, stamp in rows:
            if platform in adapters or stamp is not None:
                adapters.setdefault(platform, {})["last_ok"] = _iso(stamp)
        if current != head:
            ok = False
    except Exception as exc:  # any failure to answer is the store being unreachable
        database["error"] = _error(exc)
        ok = False
    for platform, stamp in (last_ok or {}).items():
        entry = adapters.setdefault(platform, {})
        known = entry.get("last_ok")
        if known is None or known < stamp.isoformat():
            entry["last_ok"] = stamp.isoformat()
    body["database"] = database
    body["adapters"] = adapters
    if process_errors:
        body["errors"] = dict(process_errors)
        ok = False
    body["status"] = "ok" if ok else "failing"
    return HealthReport(ok, body)


def store_up(up: bool) -> CollectorRegistry:
    """``dutybot_store_up``: 1 when the store answered this scrape, 0 when it did not."""
    registry = CollectorRegistry(auto_describe=True)
    Gauge("dutybot_store_up", "1 if the store answered the last scrape.", registry=registry).set(
        1 if up else 0
    )
    return registry


def collect_store_gauges(engine: Engine, now: datetime) -> CollectorRegistry:
    """A registry of the store's gauges, read now: notifications by state and kind,
    deliveries due (queue depth) and the age of the oldest due one."""
    registry = CollectorRegistry(auto_describe=True)
    by_state = Gauge(
        "dutybot_notifications",
        "Notifications in the store by state and kind.",
        ["state", "kind"],
        registry=registry,
    )
    depth = Gauge(
        "dutybot_queue_depth",
        "Deliveries pending whose instant has come (due now, not yet claimed).",
        registry=registry,
    )
    oldest = Gauge(
        "dutybot_queue_oldest_due_seconds",
        "Age of the oldest due pending delivery (0 when none is due).",
        registry=registry,
    )
    with Session(engine) as session:
        counts = session.exec(
            select(Notification.state, Notification.kind, func.count()).group_by(
                Notification.state, Notification.kind
            )
        ).all()
        due = session.exec(
            select(func.count(), func.min(Delivery.not_before)).where(
                col(Delivery.state) == "pending", col(Delivery.not_before) <= now
            )
        ).one()
    for state, kind, number in counts:
        by_state.labels(state, kind).set(number)
    depth.set(due[0] or 0)
    first = due[1]
    if first is not None:
        if first.tzinfo is None:  # SQLite may hand back naive UTC from an aggregate
            first = first.replace(tzinfo=UTC)
        oldest.set(max((now - first).total_seconds(), 0.0))
    else:
        oldest.set(0)
    return registry
