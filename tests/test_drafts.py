"""Drafts: seed 000 as a document → a Draft row → fix one owner → apply (SQLite and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import select

from bot.drafts import apply, create_draft, preview, update_task_in_draft
from bot.replies import Via
from bot.schedule.validate import read_yaml
from bot.store.db import session_scope
from bot.store.models import AuditEvent, Draft, Person, Schedule
from tests.conftest import local

SEED = Path("/work/shared/seeds/000_69e34481b734bfda.txt")
WEB = Via("web")


def test_a_document_becomes_a_draft_that_is_fixed_and_applied(engine: Engine) -> None:
    now = local(2022, 5, 25, 9)
    with session_scope(engine) as session:
        draft = create_draft(
            session, name="seed000.txt", content=SEED.read_bytes(), person_id=None, now=now, via=WEB
        )
        draft_id = draft.id
        assert draft.source_kind == "document" and draft.task_lines
        tree = read_yaml(draft.yaml_text)
    assert draft_id is not None
    ref = str(tree["tasks"][0]["ref"])
    with session_scope(engine) as session:
        bad = update_task_in_draft(
            session,
            draft_id=draft_id,
            ref=ref,
            changes={"responsible": ["无此人"]},
            person_id=None,
            now=now,
            via=WEB,
        )
        assert "responsible" in bad.by_field
    with session_scope(engine) as session:
        person = next(iter(read_yaml(session.get(Draft, draft_id).yaml_text)["people"]))
        good = update_task_in_draft(
            session,
            draft_id=draft_id,
            ref=ref,
            changes={"responsible": [person]},
            person_id=None,
            now=now,
            via=WEB,
        )
        assert good.ok, good
    with session_scope(engine) as session:
        diff = preview(session, draft_id=draft_id, now=now, horizon_days=60)
        assert diff.created and diff.tasks_added
        assert session.exec(select(Schedule)).first() is None
    with session_scope(engine) as session:
        apply(session, draft_id=draft_id, person_id=None, now=now, horizon_days=60, via=WEB)
    with session_scope(engine) as session:
        assert session.exec(select(Schedule)).first() is not None
        assert session.exec(select(Person)).first() is not None
        actions = {e.action: e.channel for e in session.exec(select(AuditEvent)).all()}
        assert actions["draft_applied"] == "web" and "draft_edited" in actions
        assert session.get(Draft, draft_id).state == "applied"
