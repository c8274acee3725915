"""The per-chat state of a multi-step flow, in the store so a restart loses nothing.

One row per chat at most: starting a flow replaces whatever was half-done, and a flow
that was abandoned lapses at ``expires_at`` instead of capturing an unrelated reply days later.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, select

from bot.store.models import ChatState


def current(session: Session, platform: str, chat_id: str, now: datetime) -> ChatState | None:
    state = session.exec(
        select(ChatState).where(ChatState.platform == platform, ChatState.chat_id == chat_id)
    ).first()
    if state is not None and state.expires_at <= now:
        session.delete(state)
        session.flush()
        return None
    return state


def begin(
    session: Session,
    *,
    platform: str,
    chat_id: str,
    person_id: int,
    flow: str,
    step: str,
    now: datetime,
    ttl: timedelta,
    occurrence_id: int | None = None,
    data: dict[str, Any] | None = None,
) -> ChatState:
    state = session.exec(
        select(ChatState).where(ChatState.platform == platform, ChatState.chat_id == chat_id)
    ).first()
    if state is None:
        state = ChatState(
            platform=platform,
            chat_id=chat_id,
            person_id=person_id,
            flow=flow,
            step=step,
            updated_at=now,
            expires_at=now + ttl,
        )
    state.person_id, state.flow, state.step = person_id, flow, step
    state.occurrence_id, state.data = occurrence_id, dict(data or {})
    state.updated_at, state.expires_at = now, now + ttl
    session.add(state)
    session.flush()
    return state


def advance(
    session: Session, state: ChatState, *, step: str, now: datetime, ttl: timedelta, **data: Any
) -> ChatState:
    state.step = step
    state.data = {**(state.data or {}), **data}  # a new dict: JSON columns track assignment
    state.updated_at, state.expires_at = now, now + ttl
    session.add(state)
    session.flush()
    return state


def clear(session: Session, platform: str, chat_id: str) -> bool:
    state = session.exec(
        select(ChatState).where(ChatState.platform == platform, ChatState.chat_id == chat_id)
    ).first()
    if state is None:
        return False
    session.delete(state)
    session.flush()
    return True
