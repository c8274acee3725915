"""Who a chat speaks for, and which chats reach a person.

A Person row is a person as one list names them; an :class:`~bot.store.models.Identity` is
the human behind the rows of every list they appear in; a
:class:`~bot.store.models.ChatBinding` is one chat of that human on one platform.  A
notification is for a person; it is delivered to each reachable binding of their identity.
Reachability belongs to the binding: losing DingTalk does not silence Telegram.

Two Person rows become one identity when the same platform account binds both (an official
opening the invite of a second list from the chat that already answers for the first), or
when schedules declare the same platform account for them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, update
from sqlmodel import Session, col, select

from bot.store.models import AuditEvent, ChatBinding, Identity, Notification, Person

WAITING, PENDING = "waiting", "pending"


def other_admins(session: Session, person: Person, identity_id: int) -> list[Person]:
    """The active admins of the person's list, leaving out whoever holds that identity: the
    people told about a binding of it."""
    return list(
        session.exec(
            select(Person).where(
                Person.schedule_id == person.schedule_id,
                col(Person.admin).is_(True),
                col(Person.active).is_(True),
                not_same_person(identity_id),
            )
        ).all()
    )


def not_same_person(identity_id: int) -> Any:
    """A WHERE clause: people who are not this human (a person with no identity yet -- never
    bound -- is somebody else)."""
    return or_(col(Person.identity_id).is_(None), col(Person.identity_id) != identity_id)


def ensure_identities(session: Session, people: list[Person], now: datetime) -> None:
    """Every person has an identity (created with the first Person row of a human)."""
    for person in people:
        if person.identity_id is None:
            identity = Identity(name=person.name, created_at=now)
            session.add(identity)
            session.flush()
            person.identity_id = identity.id
            session.add(person)
    session.flush()


def identity_of(session: Session, person: Person, now: datetime) -> int:
    if person.identity_id is None:
        ensure_identities(session, [person], now)
    assert person.identity_id is not None
    return person.identity_id


def binding_for(session: Session, platform: str, chat_id: str) -> ChatBinding | None:
    return session.exec(
        select(ChatBinding).where(
            ChatBinding.platform == platform,
            ChatBinding.chat_id == chat_id,
            col(ChatBinding.active).is_(True),
        )
    ).first()


def people_of(session: Session, platform: str, chat_id: str) -> list[Person]:
    """The active Person rows this chat answers for (one per list the human is on)."""
    binding = binding_for(session, platform, chat_id)
    if binding is None:
        return []
    return list(
        session.exec(
            select(Person)
            .where(Person.identity_id == binding.identity_id, col(Person.active).is_(True))
            .order_by(col(Person.id))
        ).all()
    )


def bindings_of(
    session: Session, identity_id: int, *, reachable_only: bool = True
) -> list[ChatBinding]:
    query = select(ChatBinding).where(
        ChatBinding.identity_id == identity_id, col(ChatBinding.active).is_(True)
    )
    if reachable_only:
        query = query.where(col(ChatBinding.unreachable_reason).is_(None))
    return list(session.exec(query.order_by(col(ChatBinding.id))).all())


@dataclass(frozen=True)
class Bound:
    """What binding a chat did: the binding, and whom it answered for before, if anyone."""

    binding: ChatBinding
    merged_from: int | None = None  # an identity folded into this person's (same human)
    replaced: int | None = None  # an identity the chat answered for and no longer does
    new: bool = True  # False when the chat already answered for this person


def bind(
    session: Session,
    *,
    person: Person,
    platform: str,
    chat_id: str,
    now: datetime,
    user_id: str | None = None,
    via: str = "invite",
) -> Bound:
    """Bind a chat to a person's identity; one active chat per identity and platform.

    A chat already bound to another identity is either the same human on another list (that
    identity has nobody on this person's list: the two identities merge) or a chat that
    changed hands (it has: the chat moves to this person, the old identity loses it)."""
    identity_id = identity_of(session, person, now)
    existing = session.exec(
        select(ChatBinding).where(ChatBinding.platform == platform, ChatBinding.chat_id == chat_id)
    ).first()
    merged = replaced = None
    if existing is not None and existing.active and existing.identity_id != identity_id:
        other = existing.identity_id
        same_list = session.exec(
            select(Person.id).where(
                Person.identity_id == other, Person.schedule_id == person.schedule_id
            )
        ).first()
        if same_list is None:
            merge(session, keep=other, gone=identity_id)
            merged, identity_id = identity_id, other
            person.identity_id = other
        else:
            replaced = other
    was_bound = (
        existing is not None
        and existing.active
        and existing.identity_id == identity_id
        and existing.unreachable_reason is None
    )
    for older in session.exec(
        select(ChatBinding).where(
            ChatBinding.identity_id == identity_id,
            ChatBinding.platform == platform,
            ChatBinding.chat_id != chat_id,
            col(ChatBinding.active).is_(True),
        )
    ):
        older.active = False  # one account per platform: the newer chat replaces the older
        session.add(older)
    binding = existing or ChatBinding(
        identity_id=identity_id, platform=platform, chat_id=chat_id, bound_at=now
    )
    binding.identity_id, binding.active, binding.via = identity_id, True, via
    binding.user_id = user_id or binding.user_id or chat_id
    binding.unreachable_reason = binding.unreachable_at = None  # a fresh bind is the remedy
    if not was_bound:
        binding.bound_at = now
    session.add(binding)
    session.flush()
    release_waiting(session, identity_id, now)
    return Bound(binding, merged_from=merged, replaced=replaced, new=not was_bound)


def merge(session: Session, *, keep: int, gone: int) -> None:
    """Fold identity ``gone`` into ``keep``: its people and bindings now belong to ``keep``."""
    if keep == gone:
        return
    session.execute(
        update(Person)
        .where(col(Person.identity_id) == gone)
        .values(identity_id=keep)
        .execution_options(synchronize_session="fetch")
    )
    session.execute(
        update(ChatBinding)
        .where(col(ChatBinding.identity_id) == gone)
        .values(identity_id=keep)
        .execution_options(synchronize_session="fetch")
    )
    from bot.store.models import Bundle  # the outbox's open bundles follow their person

    session.execute(
        update(Bundle)
        .where(col(Bundle.identity_id) == gone)
        .values(identity_id=keep)
        .execution_options(synchronize_session="fetch")
    )
    session.flush()


def unbind(session: Session, binding: ChatBinding, *, now: datetime, actor: str, why: str) -> None:
    """Take a chat off a person ("这不是我", an admin, a newer account)."""
    binding.active = False
    session.add(binding)
    person_ids = [
        p.id for p in session.exec(select(Person).where(Person.identity_id == binding.identity_id))
    ]
    session.add(
        AuditEvent(
            at=now,
            actor=actor,
            action="chat_unbound",
            person_id=person_ids[0] if person_ids else None,
            platform=binding.platform,
            detail={"binding": binding.id, "platform": binding.platform, "why": why},
        )
    )


def mark_unreachable(session: Session, binding: ChatBinding, *, reason: str, now: datetime) -> None:
    binding.unreachable_reason = reason[:500]
    binding.unreachable_at = now
    session.add(binding)


def release_waiting(session: Session, identity_id: int, now: datetime) -> int:
    """A person who can be reached again gets what is still relevant: the latest waiting
    notification per occurrence and kind goes back to the queue, older ones are superseded."""
    waiting = session.exec(
        select(Notification)
        .join(Person, col(Person.id) == Notification.person_id)
        .where(Person.identity_id == identity_id, Notification.state == WAITING)
        .order_by(col(Notification.not_before), col(Notification.id))
    ).all()
    latest: dict[tuple[object, ...], Notification] = {}
    for row in waiting:
        key = (
            (row.person_id, row.occurrence_id, _family(row.kind))
            if row.occurrence_id is not None
            else (row.id,)
        )
        if key in latest:
            latest[key].state = "superseded"
            session.add(latest[key])
        latest[key] = row
    for row in latest.values():
        row.state = PENDING
        row.not_before = max(row.not_before, now) if row.not_before > now else now
        session.add(row)
    session.flush()
    return len(latest)


def _family(kind: str) -> str:
    """Reminders and escalations of one occurrence supersede each other; other kinds stand."""
    return "chase" if kind in ("reminder", "progress", "escalation") else kind


def bind_everyone(session: Session, *, platform: str, now: datetime) -> int:
    """A binding on ``platform`` for every identity that has none: the demo's and ``run
    --console``'s terminal, where each person's messages are printed under their name."""
    people = session.exec(select(Person).where(col(Person.active).is_(True))).all()
    ensure_identities(session, [p for p in people if p.identity_id is None], now)
    have = {
        b.identity_id: b
        for b in session.exec(select(ChatBinding).where(ChatBinding.platform == platform))
    }
    taken = {b.chat_id for b in have.values()}
    added = 0
    for person in people:
        identity_id = person.identity_id
        assert identity_id is not None
        if identity_id in have:
            continue
        chat = person.name if person.name not in taken else f"{person.name}#{identity_id}"
        binding = ChatBinding(
            identity_id=identity_id,
            platform=platform,
            chat_id=chat,
            user_id=chat,
            via="console",
            bound_at=now,
        )
        session.add(binding)
        have[identity_id], added = binding, added + 1
        taken.add(chat)
    session.flush()
    return added


def announce(session: Session, *, person: Person, binding: ChatBinding, now: datetime) -> None:
    """A new binding is told to the list's admins and to the person's other chats, each with
    a one-tap unbind: a leaked invite link then costs one message, not a stranger reading
    every reminder."""
    from bot.outbox import enqueue, notification_row

    assert binding.id is not None
    local = now.astimezone(_tz(session, person)).strftime("%Y-%m-%d %H:%M")
    payload = {
        "person": person.name,
        "platform": binding.platform,
        "binding_id": binding.id,
        "bound_at": local,
    }
    admins = other_admins(session, person, binding.identity_id)
    rows = [
        notification_row(
            key=f"bound:{binding.id}:{admin.id}:{local}",
            kind="binding_added",
            person_id=admin.id,
            not_before=now,
            now=now,
            schedule_id=person.schedule_id,
            payload=payload,
        )
        for admin in admins
        if admin.id is not None
    ]
    others = [b for b in bindings_of(session, binding.identity_id) if b.id != binding.id]
    if others and person.id is not None:
        rows.append(
            notification_row(
                key=f"bound:{binding.id}:self:{local}",
                kind="binding_notice",
                person_id=person.id,
                not_before=now,
                now=now,
                schedule_id=person.schedule_id,
                payload={**payload, "except_binding": binding.id},
            )
        )
    enqueue(session, rows)


def _tz(session: Session, person: Person) -> Any:
    from zoneinfo import ZoneInfo

    from bot.store.models import Schedule

    schedule = session.get(Schedule, person.schedule_id)
    return ZoneInfo(schedule.timezone if schedule else "Asia/Shanghai")


def announce_removed(
    session: Session, *, person: Person, binding: ChatBinding, now: datetime
) -> None:
    """The person said "not me" about a binding: the list's admins are told."""
    from bot.outbox import enqueue, notification_row

    local = now.astimezone(_tz(session, person)).strftime("%Y-%m-%d %H:%M")
    admins = other_admins(session, person, binding.identity_id)
    enqueue(
        session,
        [
            notification_row(
                key=f"unbound:{binding.id}:{admin.id}:{local}",
                kind="binding_removed",
                person_id=admin.id,
                not_before=now,
                now=now,
                schedule_id=person.schedule_id,
                payload={"person": person.name, "platform": binding.platform, "at": local},
            )
            for admin in admins
            if admin.id is not None
        ],
    )
