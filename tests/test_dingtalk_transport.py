"""DingTalk's transport against the fake over real HTTP and a real websocket: the token, the
error mapping of batchSend, downloads, the directory, and the Stream client (the official SDK's
frames and ACKs) turning pushes into the conversation's events."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest

from bot.adapters.base import DeliveryError
from bot.adapters.dingtalk.openapi import OpenApi
from bot.adapters.dingtalk.stream import StreamClient
from bot.conversation.events import Inbound
from tests.fakes.dingtalk import (
    BAD_REQUEST,
    CLIENT_ID,
    CLIENT_SECRET,
    FLOW_CONTROLLED,
    GONE,
    QUOTA,
    ROBOT_CODE,
    SERVER_ERROR,
    SLOW,
    THROTTLED,
    FakeDingTalk,
)


@pytest.fixture
def fake() -> Iterator[FakeDingTalk]:
    with FakeDingTalk(users={"13800000001": "zhangmin"}) as server:
        yield server


def api_for(fake: FakeDingTalk, **kwargs: object) -> OpenApi:
    return OpenApi(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        robot_code=ROBOT_CODE,
        api_base=fake.url,
        oapi_base=fake.url,
        **kwargs,  # type: ignore[arg-type]
    )


def test_the_token_is_cached_and_renewed_once_when_refused(fake: FakeDingTalk) -> None:
    async def scenario() -> None:
        api = api_for(fake)
        try:
            for n in range(3):
                await api.send_to_user("u1", "sampleText", {"content": f"第{n}条"})
            assert fake.tokens_issued == 1  # one token for three sends
            fake.revoke_tokens()  # it expired on DingTalk's side
            await api.send_to_user("u1", "sampleText", {"content": "再来一条"})
            assert fake.tokens_issued == 2
        finally:
            await api.close()

    asyncio.run(scenario())
    assert [s.text for s in fake.sent("u1")][-1] == "再来一条"
    refused = [r for r in fake.sends("u1") if r.status == 401]
    assert len(refused) == 1  # refused once, renewed, sent


@pytest.mark.parametrize(
    ("kind", "expect"),
    [
        (THROTTLED, {"permanent": False, "retry_after": 1.0}),
        (QUOTA, {"permanent": False, "retry_after": 3600.0}),
        (SERVER_ERROR, {"permanent": False, "retry_after": None, "recipient_gone": False}),
        (GONE, {"permanent": True, "recipient_gone": True}),
        (BAD_REQUEST, {"permanent": True, "recipient_gone": False}),
        (FLOW_CONTROLLED, {"permanent": False, "retry_after": 60.0}),
    ],
)
def test_each_documented_failure_maps_to_one_kind(
    fake: FakeDingTalk, kind: str, expect: dict[str, object]
) -> None:
    fake.fail(kind, "u2")

    async def scenario() -> DeliveryError:
        api = api_for(fake)
        try:
            with pytest.raises(DeliveryError) as raised:
                await api.send_to_user("u2", "sampleText", {"content": "x"})
            return raised.value
        finally:
            await api.close()

    error = asyncio.run(scenario())
    for name, value in expect.items():
        assert getattr(error, name) == value, (name, error.reason)
    assert CLIENT_SECRET not in error.reason


def test_a_slow_answer_is_a_timeout_that_may_have_been_delivered(fake: FakeDingTalk) -> None:
    fake.fail(SLOW, "u3", seconds=1.5)

    async def scenario() -> DeliveryError:
        api = api_for(fake, timeout=0.5)
        try:
            with pytest.raises(DeliveryError) as raised:
                await api.send_to_user("u3", "sampleText", {"content": "x"})
            return raised.value
        finally:
            await api.close()

    error = asyncio.run(scenario())
    assert error.timed_out and not error.permanent


def test_downloads_and_the_directory(fake: FakeDingTalk) -> None:
    code = fake.add_file(b"\xff\xd8\xffphoto-bytes")

    async def scenario() -> tuple[bytes, str | None, str | None]:
        api = api_for(fake)
        try:
            content = await api.download(code, max_bytes=1024)
            with pytest.raises(DeliveryError):  # too big: refused, not read whole
                await api.download(code, max_bytes=4)
            return (
                content,
                await api.user_by_mobile("13800000001"),
                await api.user_by_mobile("13900000000"),
            )
        finally:
            await api.close()

    content, known, unknown = asyncio.run(scenario())
    assert content.endswith(b"photo-bytes")
    assert (known, unknown) == ("zhangmin", None)


def test_stream_pushes_become_events_and_every_push_is_acknowledged(fake: FakeDingTalk) -> None:
    async def scenario() -> list[Inbound]:
        queue: asyncio.Queue[Inbound] = asyncio.Queue()
        async with httpx.AsyncClient(timeout=5) as http:
            client = StreamClient(
                client_id=CLIENT_ID,
                client_secret=CLIENT_SECRET,
                gateway=fake.url,
                http=http,
                queue=queue,
            )
            stop = asyncio.Event()
            task = asyncio.create_task(client.run(stop))
            await fake.until_connected()
            ids = [
                fake.push_text("zhangmin", "任务"),
                fake.push_text("zhangmin", "✅ 已完成 #d:12:AAAAAAAAAAAAAAAA"),
                fake.push_text("zhangmin", "绑定 abcdefghijklmnop"),
                fake.push_picture("zhangmin", b"jpeg")[0],
                fake.push_file("zhangmin", b"%PDF", "纪要.pdf")[0],
                fake.push_card_callback("zhangmin", "a:7:BBBBBBBBBBBBBBBB"),
                fake.push_text("zhangmin", "群里说的", group=True),
            ]
            events = [await asyncio.wait_for(queue.get(), 5) for _ in ids]
            acks = await fake.until(lambda: all(fake.ack(i) for i in ids), what="acks")
            assert acks
            # the gateway drops the connection: the client comes back with a new ticket
            fake.drop_connections()
            await fake.until(lambda: fake._state.connections >= 2, what="a reconnection")
            await fake.until_connected()
            fake.push_text("zhangmin", "帮助")
            events.append(await asyncio.wait_for(queue.get(), 5))
            stop.set()
            await asyncio.wait_for(task, 5)  # stops cleanly
        for message_id in ids:
            ack = fake.ack(message_id)
            assert ack is not None and ack["code"] == 200
            assert ack["headers"]["messageId"] == message_id
        return events

    events = asyncio.run(scenario())
    topics = {s["topic"] for s in fake.subscriptions}
    assert topics == {"/v1.0/im/bot/messages/get", "/v1.0/card/instances/callback"}
    text, button, bind, picture, document, card, group, again = events
    assert (text.chat_id, text.text, text.private) == ("zhangmin", "任务", True)
    assert button.callback == "d:12:AAAAAAAAAAAAAAAA" and button.text is None
    assert (bind.command, bind.args) == ("start", "abcdefghijklmnop")
    assert picture.attachments[0].kind == "photo" and picture.attachments[0].file_id
    assert document.attachments[0].file_name == "纪要.pdf"
    assert card.callback == "a:7:BBBBBBBBBBBBBBBB" and card.message_ref == "card-1"
    assert group.private is False
    assert again.text == "帮助"
