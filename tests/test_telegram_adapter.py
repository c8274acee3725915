"""The Telegram adapter over real HTTP against the fake Bot API: what is sent, and how failures map."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from collections.abc import Coroutine, Iterator
from dataclasses import replace
from typing import Any, TypeVar

import pytest

from bot.adapters.base import ChatAdapter, Delivery, DeliveryError, RateLimits
from bot.adapters.telegram import (
    MAX_BUTTONS,
    TEXT_LIMIT,
    TelegramAdapter,
    render_html,
    split_message,
)
from bot.adapters.telegram_http import KEEPALIVE_SECONDS
from bot.messages import Button, Document, Field, Item, Message, OutboundMessage, compose
from tests.fakes.botapi import FakeBotApi, Fault, parse_html, utf16_len

T = TypeVar("T")

# PTB's own RetryAfter constructor warns about its int -> timedelta migration.
pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

BUTTONS = (
    (Button("完成", "done", 7), Button("申请延期", "extend", 7)),
    (Button("不是我的", "not_mine", 7),),
)


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


@pytest.fixture
def api() -> Iterator[FakeBotApi]:
    with FakeBotApi() as server:
        yield server


def adapter_for(api: FakeBotApi, **options: Any) -> TelegramAdapter:
    return TelegramAdapter(api.token, base_url=api.base_url, **options)


async def send_all(adapter: TelegramAdapter, *messages: OutboundMessage) -> list[Delivery]:
    async with adapter:
        return [await adapter.send(message) for message in messages]


def send(api: FakeBotApi, message: OutboundMessage, **options: Any) -> Delivery:
    return run(send_all(adapter_for(api, **options), message))[0]


def failure(api: FakeBotApi, message: OutboundMessage, **options: Any) -> DeliveryError:
    with pytest.raises(DeliveryError) as info:
        send(api, message, **options)
    return info.value


def note(*body: str, **parts: Any) -> Message:
    return Message(kind="test", lang="zh-CN", body=body, **parts)


def plain(chat_id: str = "42", text: str = "请于6月底前报送") -> OutboundMessage:
    return OutboundMessage(chat_id, note(*text.split("\n")))


# ---- what is sent ---------------------------------------------------------------------------


def test_sends_html_without_previews_and_with_buttons(api: FakeBotApi) -> None:
    message = note("请于6月底前报送", header="🔵 提醒｜清单", title="4. 专题研究")
    delivery = send(api, OutboundMessage("42", replace(message, actions=BUTTONS)))

    call = api.calls_to("sendMessage")[0]
    assert call.chat_id == "42"
    assert call.params["text"] == "<b>🔵 提醒｜清单</b>\n<b>4. 专题研究</b>\n\n请于6月底前报送"
    assert call.params["parse_mode"] == "HTML"
    assert call.params["link_preview_options"] == {"is_disabled": True}
    assert call.params["reply_markup"] == {
        "inline_keyboard": [
            [
                {"text": "完成", "callback_data": "done:7"},
                {"text": "申请延期", "callback_data": "extend:7"},
            ],
            [{"text": "不是我的", "callback_data": "not_mine:7"}],
        ]
    }
    assert delivery == Delivery(message_ref=str(api.sent_messages(42)[0]["message_id"]))


def test_a_message_without_buttons_has_no_keyboard(api: FakeBotApi) -> None:
    send(api, plain())

    assert "reply_markup" not in api.calls_to("sendMessage")[0].params


def test_callback_data_comes_from_the_injected_encoder(api: FakeBotApi) -> None:
    def signed(button: Button) -> str:
        return f"{button.action}|{button.ref}|sig"

    send(
        api,
        OutboundMessage("42", note("x", actions=((Button("完成", "done", 9),),))),
        encode=signed,
    )

    keyboard = api.calls_to("sendMessage")[0].params["reply_markup"]["inline_keyboard"]
    assert keyboard[0][0]["callback_data"] == "done|9|sig"


def test_callback_data_over_64_bytes_is_refused_before_sending(api: FakeBotApi) -> None:
    error = failure(
        api,
        OutboundMessage("42", note("x", actions=((Button("完成", "done", 9),),))),
        encode=lambda b: "签" * 22,
    )

    assert error.permanent is True and error.recipient_gone is False
    assert "66 bytes" in error.reason
    assert api.calls_to("sendMessage") == []


def test_a_long_message_goes_in_parts_with_buttons_on_the_last(api: FakeBotApi) -> None:
    lines = [f"{n}. " + "牵头单位按月报送工作进度。" * 30 for n in range(1, 31)]
    text = "\n".join(lines)
    assert utf16_len(text) > 2 * TEXT_LIMIT

    delivery = send(api, OutboundMessage("42", note(*lines, actions=BUTTONS)))

    calls = api.calls_to("sendMessage")
    assert len(calls) == 3
    texts = [c.params["text"] for c in calls]
    assert "\n".join(texts) == text  # cut at line ends, nothing lost or added
    assert all(utf16_len(t) <= TEXT_LIMIT for t in texts)
    assert [("reply_markup" in c.params) for c in calls] == [False, False, True]
    assert delivery.message_ref == str(api.sent_messages(42)[-1]["message_id"]) == "3"


def test_a_tag_open_across_a_cut_is_closed_and_reopened(api: FakeBotApi) -> None:
    title = "逾期事项：" + "责" * 6000  # a bold title longer than a whole part

    send(api, OutboundMessage("42", note(title=title)))  # the fake rejects unbalanced HTML

    texts = [c.params["text"] for c in api.calls_to("sendMessage")]
    assert len(texts) == 2
    assert texts[0].startswith("<b>") and texts[0].endswith("</b>")
    assert texts[1].startswith("<b>") and texts[1].endswith("</b>")
    assert "".join(parse_html(t) for t in texts) == title
    html = "<b>" + "\n".join(["逾期事项：" + "责" * 1000] * 6) + "</b>"  # across line cuts
    parts = split_message(html)
    assert len(parts) == 2 and all(p.startswith("<b>") and p.endswith("</b>") for p in parts)
    assert "\n".join(parse_html(p) for p in parts) == parse_html(html)


def test_split_message_edge_cases() -> None:
    assert split_message("短消息") == ["短消息"]
    assert split_message("") == [""]
    # one line of Chinese prose with no spaces: cut hard at the limit, after a clause mark if any
    prose = "各单位要落实安全生产责任" * 1000
    parts = split_message(prose)
    assert "".join(parts) == prose
    assert all(utf16_len(p) <= TEXT_LIMIT for p in parts)
    clauses = "每月2日前报送，" * 1000
    assert all(p.endswith("，") for p in split_message(clauses)[:-1])
    # emoji outside the BMP count twice, as Telegram counts
    assert [utf16_len(p) for p in split_message("😀" * 3000)] == [4096, 1904]
    # never inside an entity or a tag
    entities = "&amp;" * 2000
    assert all(parse_html(p) for p in split_message(entities))
    assert "".join(split_message(entities)) == entities
    links = '<a href="https://example.org/a b">链接</a> ' * 300
    for part in split_message(links, limit=1000):
        parse_html(part)
        assert utf16_len(part) <= 1000


# ---- how failures map -----------------------------------------------------------------------


def test_flood_control_is_transient_with_retry_after(api: FakeBotApi) -> None:
    api.inject("sendMessage", Fault.retry_after(7))

    error = failure(api, plain())

    assert error.permanent is False
    assert error.retry_after == 7.0
    assert isinstance(error.retry_after, float)


def test_retry_after_as_timedelta_is_accepted(
    api: FakeBotApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "1")  # PTB's opt-in: RetryAfter.retry_after is a timedelta
    api.inject("sendMessage", Fault.retry_after(12))

    assert failure(api, plain()).retry_after == 12.0


@pytest.mark.parametrize(
    "fault",
    [Fault.server_error(500), Fault.server_error(502), Fault.bad_gateway_html()],
    ids=["500", "502-json", "502-nginx-html"],
)
def test_server_errors_are_transient(api: FakeBotApi, fault: Fault) -> None:
    api.inject("sendMessage", fault)

    error = failure(api, plain())

    assert error.permanent is False
    assert error.retry_after is None


def test_an_answer_slower_than_the_read_timeout_is_transient(api: FakeBotApi) -> None:
    api.inject("sendMessage", Fault.slow(1.0))
    began = time.monotonic()

    error = failure(api, plain(), read_timeout=0.3)

    assert time.monotonic() - began < 0.9
    assert error.permanent is False
    assert "TimedOut" in error.reason


def test_a_connection_dropped_without_an_answer_is_transient_not_a_timeout(
    api: FakeBotApi,
) -> None:
    api.inject("sendMessage", Fault.connection_reset())

    error = failure(api, plain())

    assert error.permanent is False
    assert error.timed_out is False  # nothing was sent: not a possible duplicate


def test_more_sends_than_connections_wait_for_one_and_all_arrive_once(api: FakeBotApi) -> None:
    adapter = adapter_for(api, connection_pool_size=2, pool_timeout=5)

    async def scenario() -> list[Delivery]:
        async with adapter:
            return list(
                await asyncio.gather(*(adapter.send(plain(chat_id=str(n))) for n in range(12)))
            )

    delivered = run(scenario())

    assert len(delivered) == 12
    assert sorted(int(c.chat_id or 0) for c in api.calls_to("sendMessage")) == list(range(12))


def test_an_unreachable_server_is_transient() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    adapter = TelegramAdapter("1:x", base_url=f"http://127.0.0.1:{port}/bot", connect_timeout=1)

    with pytest.raises(DeliveryError) as info:
        run(adapter.send(plain()))

    assert info.value.permanent is False


@pytest.mark.parametrize(
    ("fault", "words"),
    [
        (Fault.blocked(), "blocked by the user"),
        (Fault.user_deactivated(), "deactivated"),
        (Fault.kicked(), "kicked"),
    ],
    ids=["blocked", "deactivated", "kicked"],
)
def test_forbidden_is_permanent(api: FakeBotApi, fault: Fault, words: str) -> None:
    api.inject("sendMessage", fault, chat_id="42")

    error = failure(api, plain())

    assert error.permanent is True and error.recipient_gone is True
    assert words in error.reason


def test_chat_not_found_is_permanent(api: FakeBotApi) -> None:
    api.inject("sendMessage", Fault.chat_not_found())

    error = failure(api, plain())

    assert error.permanent is True and error.recipient_gone is True
    assert "chat not found" in error.reason.lower()
    assert error.new_chat_id is None


def test_a_migrated_group_carries_its_new_chat_id(api: FakeBotApi) -> None:
    api.inject("sendMessage", Fault.migrated(-1001234567890), chat_id="-4242")

    error = failure(api, plain(chat_id="-4242"))

    assert error.permanent is True
    assert error.new_chat_id == "-1001234567890"


def test_a_malformed_message_is_permanent_with_telegrams_reason(api: FakeBotApi) -> None:
    api.inject("sendMessage", Fault.bad_request("Bad Request: can't parse entities: at byte 3"))
    error = failure(api, plain())

    assert error.permanent is True and error.recipient_gone is False  # our bug, not theirs
    assert "parse entities" in error.reason


def test_a_failure_after_some_parts_says_so(api: FakeBotApi) -> None:
    api.inject("sendMessage", Fault(), Fault.server_error(500))  # first part fine, second 500
    text = "\n".join(["督办" * 1500] * 2)

    error = failure(api, plain(text=text))

    assert error.permanent is False
    assert "after 1 of 2 parts" in error.reason


def test_one_chat_failing_does_not_touch_another(api: FakeBotApi) -> None:
    api.inject("sendMessage", Fault.blocked(), chat_id="7")

    async def scenario() -> tuple[str, Delivery]:
        async with adapter_for(api) as adapter:
            try:
                await adapter.send(plain(chat_id="7"))
            except DeliveryError as exc:
                blocked = exc.reason
            return blocked, await adapter.send(plain(chat_id="8"))

    blocked, delivered = run(scenario())

    assert "blocked" in blocked
    assert delivered.message_ref == "1"


# ---- the adapter itself ---------------------------------------------------------------------


def test_it_is_a_chat_adapter_paced_by_the_dispatcher(api: FakeBotApi) -> None:
    adapter: ChatAdapter = adapter_for(api)

    assert adapter.platform == "telegram"
    assert adapter.limits == RateLimits(overall_per_second=30, per_chat_per_second=1)


def test_the_token_never_reaches_logs_or_reasons(
    api: FakeBotApi, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    api.inject("sendMessage", Fault.chat_not_found())
    adapter = adapter_for(api)

    with pytest.raises(DeliveryError) as info:
        run(send_all(adapter, plain(), plain()))

    assert api.token not in info.value.reason
    assert api.token not in repr(adapter)
    messages = [record.getMessage() for record in caplog.records]
    assert any("HTTP Request" in m and "<token>" in m for m in messages)  # transport, redacted
    assert not [m for m in messages if api.token in m]


def test_a_rejected_token_fails_start_without_quoting_it(
    api: FakeBotApi, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    adapter = TelegramAdapter("999:rejected-secret", base_url=api.base_url)

    with pytest.raises(DeliveryError) as info:
        run(adapter.start())

    assert info.value.permanent is True
    assert "rejected-secret" not in info.value.reason
    assert info.value.__cause__ is None
    assert not [r for r in caplog.records if "rejected-secret" in r.getMessage()]


# ---- rendering: the one place that escapes ---------------------------------------------------


def test_markup_in_user_data_reaches_telegram_as_text(api: FakeBotApi) -> None:
    title = '4. 研究<落实> & “硬措施” "十五条" </b>'
    message = note(
        "张敏 & 李强 <i>请办理</i>",
        title=title,
        fields=(Field("责任人", "<张敏>"),),
        items=(Item(title="5. a<b", level="red"),),
    )

    send(api, OutboundMessage("42", message))

    sent = api.calls_to("sendMessage")[0].params["text"]
    visible = parse_html(sent)  # the fake refuses bad markup, as Telegram does
    assert title in visible and "<张敏>" in visible and "张敏 & 李强 <i>请办理</i>" in visible
    assert "&amp;amp;" not in sent and "&amp;lt;" not in sent  # escaped exactly once
    assert sent.count("<b>") == 1  # only the title is bold: no markup came from the data


def test_a_document_goes_with_its_caption_and_buttons() -> None:
    with FakeBotApi() as api:
        message = note("台账（3 项任务）", document=Document("台账.xlsx", b"PK\x03\x04"))
        send(api, OutboundMessage("42", replace(message, actions=BUTTONS)))
        call = api.calls_to("sendDocument")[0]
        assert call.params["caption"] == "台账（3 项任务）"
        assert "reply_markup" in call.params and not api.calls_to("sendMessage")
    with FakeBotApi() as api:  # a caption too long for Telegram's 1,024: the text follows
        send(api, OutboundMessage("42", note("台" * 1500, document=Document("a.xlsx", b"PK"))))
        assert "caption" not in api.calls_to("sendDocument")[0].params
        assert parse_html(api.calls_to("sendMessage")[0].params["text"]) == "台" * 1500


def test_a_bundle_keeps_within_the_keyboard_limit_and_says_how_to_answer_the_rest() -> None:
    payload = {
        "schedule": "清单", "title": "任务", "occurrence_kind": "deadline",
        "due_date": "2022-06-10", "original_due": None, "times_done": 0, "times_required": 1,
        "overdue_days": 2, "assignees": ["张敏"], "lead": [], "units": [], "evidence": "optional",
        "level": "blue", "offset": 2,
    }  # fmt: skip
    payloads = [{**payload, "ref": str(n), "occurrence_id": 100 + n} for n in range(1, 31)]
    first, second = (
        compose("reminder", part, person="张敏", lang="zh-CN")
        for part in (payloads[:15], payloads[15:])
    )
    # more items than a keyboard holds (a platform may list more than a bundle does)
    message = replace(first, items=first.items + second.items)

    text, rows = render_html(message)

    assert sum(len(row) for row in rows) <= MAX_BUTTONS and len(rows) == MAX_BUTTONS // 4
    assert [b.label for b in rows[0]] == ["✅ 1", "📝 1", "⏳ 1", "🙅 1"]
    assert {b.ref for b in rows[0]} == {101}
    visible = parse_html(text)
    assert "答复：/done 130 说明" in visible and "/done 125 " not in visible
    assert all(f"答复：/done {100 + n} 说明" in visible for n in range(26, 31))


def test_a_bundle_of_thousands_is_one_message_listing_the_most_overdue() -> None:
    """A catch-up after an outage gives one leader thousands of items: one Telegram message
    (not 150 parts), the most overdue listed, the rest counted."""
    payload = {
        "schedule": "清单", "title": "任务", "occurrence_kind": "deadline",
        "due_date": "2022-06-10", "original_due": None, "times_done": 0, "times_required": 1,
        "assignees": ["张敏"], "lead": ["熊伟"], "units": [], "evidence": "optional",
        "level": "yellow",
    }  # fmt: skip
    payloads = [
        {
            **payload,
            "ref": str(n),
            "occurrence_id": n,
            "overdue_days": 3 + n % 7,
            "title": f"工作{n}",
        }
        for n in range(1, 3001)
    ]
    text, _ = render_html(compose("escalation", payloads, person="熊伟", lang="zh-CN"))

    assert len(split_message(text)) == 1
    visible = parse_html(text)
    assert "您督办的 3000 项已逾期" in visible and "另有 2985 项未列出" in visible
    listed = [line for line in visible.splitlines() if "已逾期：" in line]
    assert len(listed) == 15 and set(listed) == {"已逾期：9 个工作日"}


async def _closing_when_idle(idle: float) -> tuple[asyncio.AbstractServer, str, list[str]]:
    """A Bot API that, when a request comes on a keep-alive connection idle for longer than
    ``idle``, closes it without an answer: its own idle timeout firing just as the request
    arrives (what a morning burst meets on a pool left idle overnight).  Returns the server,
    its base URL and what it answered or dropped."""
    loop = asyncio.get_running_loop()
    seen: list[str] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        last: float | None = None
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    (int(line.split(b":")[1]) for line in head.split(b"\r\n")
                     if line.lower().startswith(b"content-length:")),
                    0,
                )  # fmt: skip
                await reader.readexactly(length)
                method = head.split(b" ")[1].rsplit(b"/", 1)[-1].decode()
                if last is not None and loop.time() - last > idle:
                    seen.append(f"dropped {method}")
                    writer.close()
                    return
                seen.append(method)
                result: dict[str, Any] = (
                    {"id": 1, "is_bot": True, "first_name": "dutybot", "username": "dutybot"}
                    if method == "getMe"
                    else {"message_id": len(seen), "date": 0, "chat": {"id": 42, "type": "private"}}
                )
                payload = json.dumps({"ok": True, "result": result}).encode()
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    + f"Content-Length: {len(payload)}\r\n\r\n".encode()
                    + payload
                )
                await writer.drain()
                last = loop.time()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}/bot", seen


def test_an_idle_connection_is_not_reused_after_the_servers_idle_timeout() -> None:
    """A connection idle longer than the adapter's keep-alive is closed by the adapter, so a
    send never goes out on one the server is closing (it would fail and wait 30 s for its
    retry); the default keep-alive is below the 5-75 s servers commonly keep idle ones."""
    assert KEEPALIVE_SECONDS < 5

    async def scenario() -> tuple[list[Delivery], list[str]]:
        server, base_url, seen = await _closing_when_idle(0.5)
        adapter = TelegramAdapter("123:abc", base_url=base_url, keepalive_timeout=0.2)
        adapter.limits = None
        async with server, adapter:
            first = await adapter.send(plain())
            await asyncio.sleep(0.8)  # idle: past our keep-alive and past the server's
            second = await adapter.send(plain())
        return [first, second], seen

    delivered, seen = run(scenario())

    assert len(delivered) == 2
    assert seen == ["getMe", "sendMessage", "sendMessage"]  # nothing dropped
