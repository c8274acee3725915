"""Drafts (草稿): a schedule under review, as a database row shared by web and chat.

An upload becomes a Draft (a document goes through ``dutybot extract``'s own function); the
reviewer fixes owners, deadline and frequency per task, each fix validated by the schedule
validator and its errors mapped back to the field; ``preview`` rehearses the import and rolls
it back; ``apply`` imports through the one importer in the caller's transaction.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlmodel import Session

from bot.replies import Via
from bot.schedule.format import ScheduleFile
from bot.schedule.gaps import is_placeholder
from bot.schedule.importer import ImportDiff, import_schedule
from bot.schedule.validate import Loaded, Problem, load_schedule, read_yaml
from bot.store.models import AuditEvent, Draft

YAML_SUFFIXES = (".yaml", ".yml")
OWNER_ROLES = ("lead", "responsible", "units", "partners")


class DraftRefused(Exception):
    """The upload or edit cannot be taken; ``code`` names the message to show."""

    def __init__(self, code: str, **context: object) -> None:
        super().__init__(code)
        self.code = code
        self.context = context


@dataclass
class FieldErrors:
    """Validation problems of one edit, by field name (owners role, due, every)."""

    by_field: dict[str, list[str]] = field(default_factory=dict)
    other: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.by_field and not self.other


def _extract(
    name: str, content: bytes, today: Any, lang: str | None
) -> tuple[str, list[Any], dict[str, Any], list[Any]]:
    """Run the extractor on uploaded bytes: YAML text, source lines, task lines, flags."""
    from bot.extract.cli import make_draft
    from bot.extract.reader import read_document

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / Path(name).name
        path.write_bytes(content)
        document = read_document(path)
    extraction, text = make_draft(document, year=None, today=today, lang=lang)
    if not text:
        raise DraftRefused("no_items", name=name)
    lines = [[p.line, p.text] for p in document.paras]
    for table in document.tables:
        for row in table.rows:
            lines.append([row.line, " | ".join(c.text for c in row.cells if not c.merged)])
    lines.sort(key=lambda pair: pair[0])
    task_lines = {item.ref: list(item.lines) for item in extraction.items}
    flags: list[dict[str, Any]] = [
        {"kind": "unplaced", "ref": None, "line": u.line, "text": u.text, "reason": u.reason}
        for u in extraction.unplaced
    ]
    if not extraction.year_found:
        flags.append(
            {"kind": "guessed_year", "ref": None, "line": None, "text": str(extraction.meta.year)}
        )
    for item in extraction.items:
        for note in item.notes:
            flags.append(
                {
                    "kind": note.key,
                    "ref": item.ref,
                    "line": item.lines[0] if item.lines else None,
                    "text": "、".join(note.ctx().values()),
                }
            )
    return text, lines, task_lines, flags


def _problem_flags(loaded: Loaded) -> list[dict[str, Any]]:
    """Warnings the validator gives (tasks that remind nobody, undated tasks) and placeholder
    contacts, so the review highlights them."""
    flags = [
        {"kind": "warning", "ref": None, "line": p.line, "text": p.message} for p in loaded.warnings
    ]
    if loaded.spec is not None:
        for name, person in loaded.spec.people.items():
            if is_placeholder(name, person.title):
                flags.append(
                    {"kind": "placeholder_contact", "ref": None, "line": None, "text": name}
                )
    return flags


def create_draft(
    session: Session,
    *,
    name: str,
    content: bytes,
    person_id: int | None,
    now: datetime,
    via: Via,
    lang: str | None = None,
) -> Draft:
    """An upload (document or schedule YAML) as a Draft row; a YAML must at least parse."""
    kind = "yaml" if name.lower().endswith(YAML_SUFFIXES) else "document"
    if kind == "yaml":
        try:
            text = content.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise DraftRefused("not_utf8", name=name) from exc
        lines = [[n, line] for n, line in enumerate(text.splitlines(), 1)]
        task_lines: dict[str, Any] = {}
        flags: list[Any] = []
    else:
        text, lines, task_lines, flags = _extract(name, content, now.date(), lang)
    loaded = load_schedule(name, lang=lang, text=text)
    flags += _problem_flags(loaded)
    draft = Draft(
        schedule_id=loaded.spec.schedule if loaded.spec else None,
        source_name=name,
        source_kind=kind,
        source_bytes=content,
        source_lines=lines,
        yaml_text=text,
        task_lines=task_lines,
        flags=flags,
        created_by_id=person_id,
        created_via=via.channel,
        created_at=now,
        updated_at=now,
    )
    session.add(draft)
    session.flush()
    _audit(session, draft, "draft_created", now, person_id, via, name=name, kind=kind)
    return draft


def validate_draft(draft: Draft, lang: str | None = None) -> Loaded:
    return load_schedule(draft.source_name, lang=lang, text=draft.yaml_text)


def _task_lines_of(tree: Any, ref: str) -> tuple[int, int]:
    """The YAML line span (1-based, inclusive) of the task ``ref``, for mapping problems."""
    tasks = tree.get("tasks") or []
    for index, task in enumerate(tasks):
        if str(task.get("ref")) == ref:
            start = task.lc.line + 1
            end = tasks[index + 1].lc.line if index + 1 < len(tasks) else 10**9
            return start, end
    raise DraftRefused("no_task", ref=ref)


def _field_of(tree: Any, ref: str, problem: Problem) -> str | None:
    for task in tree.get("tasks") or []:
        if str(task.get("ref")) != ref:
            continue
        found = None
        for key in task:  # the last key starting at or above the problem's line
            if task.lc.key(key)[0] + 1 <= problem.line:
                found = str(key)
        return found
    return None


def update_task_in_draft(
    session: Session,
    *,
    draft_id: int,
    ref: str,
    changes: dict[str, Any],
    person_id: int | None,
    now: datetime,
    via: Via,
    lang: str | None = None,
) -> FieldErrors:
    """Set owners (lead/responsible/units/partners as lists), ``due`` or ``every`` of one task.
    Nothing is saved when the result has errors in this task: they come back by field."""
    from bot.extract.draft import dump

    draft = _draft(session, draft_id)
    tree = read_yaml(draft.yaml_text)
    start, end = _task_lines_of(tree, ref)
    task = next(t for t in tree["tasks"] if str(t.get("ref")) == ref)
    for key, value in changes.items():
        if key in OWNER_ROLES:
            if value:
                task[key] = list(value)
            elif key in task:
                del task[key]
        elif key in ("due", "every"):
            for other in ("due", "every", "ongoing", "times", "by"):
                if other in task and other != key:
                    del task[other]
            task[key] = value
        else:
            raise DraftRefused("bad_field", field=key)
    text = dump(tree)
    loaded = load_schedule(draft.source_name, lang=lang, text=text)
    new_tree = read_yaml(text)
    start, end = _task_lines_of(new_tree, ref)
    errors = FieldErrors()
    for problem in loaded.errors:
        if start <= problem.line < end:
            key = _field_of(new_tree, ref, problem) or "task"
            errors.by_field.setdefault(key, []).append(problem.message)
        else:
            errors.other.append(str(problem))
    if errors.by_field:
        return errors
    draft.yaml_text, draft.updated_at = text, now
    session.add(draft)
    _audit(session, draft, "draft_edited", now, person_id, via, ref=ref, fields=sorted(changes))
    return errors


def add_admin(
    session: Session, *, draft_id: int, name: str, person_id: int | None, now: datetime, via: Via
) -> None:
    """Name the uploader among the list's people and its admins, so that once applied they
    manage the list they loaded (a document names officials, never its admin)."""
    from ruamel.yaml.comments import CommentedMap

    from bot.extract.draft import dump

    draft = _draft(session, draft_id)
    tree = read_yaml(draft.yaml_text)
    people = tree.get("people")
    if people is None:
        people = tree["people"] = CommentedMap()
    if name not in people:
        people[name] = CommentedMap()
    admins = list(tree.get("admins") or [])
    if name in admins:
        return
    tree["admins"] = [*admins, name]
    draft.yaml_text, draft.updated_at = dump(tree), now
    session.add(draft)
    _audit(session, draft, "draft_edited", now, person_id, via, fields=["admins"], name=name)


def claim(session: Session, *, schedule_id: str, name: str, identity_id: int) -> bool:
    """After :func:`apply`: the person ``name`` of the list is the signed-in uploader (whom
    :func:`add_admin` named), unless that row already belongs to another human."""
    from sqlmodel import select

    from bot.store.models import Person

    person = session.exec(
        select(Person).where(Person.schedule_id == schedule_id, Person.name == name)
    ).first()
    if person is None or person.identity_id not in (None, identity_id):
        return False
    person.identity_id = identity_id
    session.add(person)
    return True


def _draft(session: Session, draft_id: int, *, applied_too: bool = False) -> Draft:
    """The draft, or DraftRefused("no_draft") (also once applied, unless ``applied_too``)."""
    draft = session.get(Draft, draft_id)
    if draft is None or (draft.state != "draft" and not applied_too):
        raise DraftRefused("no_draft")
    return draft


def _valid(
    session: Session, draft_id: int, *, applied_too: bool = False
) -> tuple[Draft, ScheduleFile]:
    """The draft and its schedule, or DraftRefused("invalid") while it has errors."""
    draft = _draft(session, draft_id, applied_too=applied_too)
    loaded = validate_draft(draft)
    if not loaded.ok or loaded.spec is None:
        raise DraftRefused("invalid", count=len(loaded.errors))
    return draft, loaded.spec


def preview(session: Session, *, draft_id: int, now: datetime, horizon_days: int) -> ImportDiff:
    """What applying would change, rehearsed in a nested transaction that is rolled back."""
    draft, spec = _valid(session, draft_id, applied_too=True)
    rehearsal = session.begin_nested()
    try:
        diff = import_schedule(
            session, spec, now=now, horizon_days=horizon_days, source_file=draft.source_name
        )
    finally:
        rehearsal.rollback()
    return diff


def forecast_draft(db: Any, *, draft_id: int, now: datetime, horizon_days: int) -> Any:
    """Who the applied draft would message at the next sending window
    (:class:`bot.forecast.Forecast`): the import and the window rehearsed on one connection,
    then rolled back."""
    from bot.forecast import forecast_on

    with db.connect() as conn:
        outer = conn.begin()
        try:
            with Session(conn) as session:
                draft, spec = _valid(session, draft_id, applied_too=True)
                import_schedule(
                    session, spec, now=now, horizon_days=horizon_days, source_file=draft.source_name
                )
                session.flush()
                schedule_id = spec.schedule
            return forecast_on(conn, schedule_id, now)
        finally:
            outer.rollback()


def apply(
    session: Session,
    *,
    draft_id: int,
    person_id: int | None,
    now: datetime,
    horizon_days: int,
    via: Via,
) -> ImportDiff:
    """Import the reviewed draft through the one importer, in the caller's transaction."""
    draft, spec = _valid(session, draft_id)
    actor = f"person:{person_id}" if person_id else via.channel
    diff = import_schedule(
        session,
        spec,
        now=now,
        horizon_days=horizon_days,
        actor=actor,
        source_file=draft.source_name,
    )
    draft.state, draft.applied_at, draft.updated_at = "applied", now, now
    draft.schedule_id = spec.schedule
    session.add(draft)
    _audit(session, draft, "draft_applied", now, person_id, via, **diff.summary())
    return diff


def _audit(
    session: Session,
    draft: Draft,
    action: str,
    now: datetime,
    person_id: int | None,
    via: Via,
    **detail: Any,
) -> None:
    session.add(
        AuditEvent(
            at=now,
            actor=f"person:{person_id}" if person_id else via.channel,
            action=action,
            schedule_id=draft.schedule_id,
            person_id=person_id,
            channel=via.channel,
            platform=via.platform,
            message_ref=via.message_ref,
            detail={"draft": draft.id, **detail},
        )
    )
