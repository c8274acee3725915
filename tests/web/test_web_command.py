"""The ``/web`` chat command on every platform: the platform's own parser turns the text into
the neutral event, the conversation answers the bound chat with a one-time sign-in link,
and that link signs the person in over real HTTP -- once."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from bot.adapters.dingtalk.stream import inbound_of_message
from bot.adapters.wecom.app import inbound as wecom_inbound
from bot.clock import SimulatedClock
from bot.conversation.events import Inbound
from bot.conversation.invites import redeem
from bot.conversation.service import ChatConfig, Conversation
from bot.messages import plain_text
from bot.signing import Signer
from bot.store.db import session_scope
from tests.fakes.chat import REMIND_DAY, seed
from tests.web.conftest import serve


def _parsed(platform: str, user: str, text: str) -> Inbound:
    """``text`` as each platform's receive side hands it to the conversation."""
    if platform == "wecom":
        event = wecom_inbound({"FromUserName": user, "MsgType": "text", "Content": text})
    elif platform == "dingtalk":
        event = inbound_of_message(
            {
                "conversationType": "1",
                "msgId": "msg000001",
                "senderStaffId": user,
                "senderNick": user,
                "msgtype": "text",
                "text": {"content": text},
            }
        )
    else:  # Telegram's parser needs a PTB Update; its e2e test sends /web through PTB
        name, _, args = text[1:].partition(" ")
        event = Inbound("telegram", user, user, command=name, args=args, text=args)
    assert event is not None
    return event


@pytest.mark.parametrize("platform", ["telegram", "dingtalk", "wecom"])
def test_slash_web_sends_a_sign_in_link_that_works_once(engine: Engine, platform: str) -> None:
    tokens = seed(engine)
    clock = SimulatedClock(REMIND_DAY)
    user = "zhangmin"
    with session_scope(engine) as session:
        redeem(session, token=tokens["张敏"], platform=platform, chat_id=user, now=clock.now())
    for served in serve(engine, clock):
        conversation = Conversation(
            db=engine,
            clock=clock,
            signer=Signer(b"s"),
            platform=platform,
            config=ChatConfig(web_url=served.url, signin_minutes=10),
            files=None,  # type: ignore[arg-type]
            invite_link=lambda token: token,
        )
        outcome = asyncio.run(conversation.handle(_parsed(platform, user, "/web")))
        said = "\n".join(plain_text(s.message) for s in outcome.says)
        assert "登录链接" in said and "10 分钟" in said, said
        found = re.search(r"http://\S+/login/\S+", said)
        assert found, said
        url = found.group(0)
        with httpx.Client() as client:
            form = client.get(url)
            csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
            assert form.status_code == 200 and csrf
            data: dict[str, Any] = {"csrf": csrf.group(1)}
            signed = client.post(url, data=data, follow_redirects=False)
            assert signed.status_code == 303
            assert "张敏" in client.get(served.url + "/ledger").text
            assert client.post(url, data=data).status_code == 403  # used

        # an unbound chat gets no link
        stranger = asyncio.run(conversation.handle(_parsed(platform, "nobody", "/web")))
        assert "/login/" not in "\n".join(plain_text(s.message) for s in stranger.says)
