"""A small schedule for chat tests: four people, a deadline task, one that needs evidence."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine
from sqlmodel import select

from bot.conversation.invites import create_invite
from bot.schedule.importer import import_schedule
from bot.schedule.validate import load_schedule
from bot.store.db import session_scope
from bot.store.models import Person
from tests.conftest import local

SCHEDULE_ID = "e2e-2022"
SCHEDULE_YAML = """\
schedule: e2e-2022
title: 测试县安全生产责任清单
issued_on: 2022-05-23
people:
  邓清华: {title: 党组书记、主任, chief: true}
  熊伟: {title: 副主任}
  张敏: {title: 能源科科长}
  李强: {title: 办公室主任}
units:
  能源科: {contacts: [张敏]}
  办公室: {contacts: [李强]}
admins: [李强]
policy:
  remind: [-3, -1, 0]
  escalate:
    - {after: 1, to: [assignees]}
    - {after: 3, to: [lead]}
tasks:
  - ref: "4"
    title: 党组专题研究落实“十五条硬措施”有关工作
    lead: [熊伟]
    units: [能源科]
    partners: [办公室]
    due: 2022-06-10
  - ref: "5"
    title: 开展安全生产大检查
    lead: [熊伟]
    units: [能源科]
    due: 2022-07-29
    policy: {evidence: required}
"""
IMPORTED = local(2022, 6, 1, 9, 0)
REMIND_DAY = local(2022, 6, 7, 9, 0)  # Tuesday: three working days before Friday 06-10
CHATS = {"张敏": 501, "熊伟": 502, "李强": 503, "邓清华": 504}


def seed(engine: Engine) -> dict[str, str]:
    """Import the schedule; return name → one-time invite token."""
    spec = load_schedule("e2e.yaml", text=SCHEDULE_YAML).spec
    assert spec is not None
    tokens = {}
    with session_scope(engine) as session:
        import_schedule(session, spec, now=IMPORTED, horizon_days=62)
        for person in session.exec(select(Person)).all():
            token, _ = create_invite(
                session, person=person, now=IMPORTED, ttl=timedelta(days=30), actor="test"
            )
            tokens[person.name] = token
    return tokens
