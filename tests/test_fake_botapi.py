"""The fake Bot API speaks enough Telegram for PTB's Bot and Application, over real HTTP."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import httpx
import pytest
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import (
    BadRequest,
    EndPointNotFound,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TimedOut,
)
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, ContextTypes
from telegram.request import HTTPXRequest

from tests.fakes.botapi import FakeBotApi, Fault

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


@pytest.fixture(params=["threads", "asyncio"])
def api(request: pytest.FixtureRequest) -> Iterator[FakeBotApi]:
    """Both front ends (the tests' threads, the benchmarks' event loop) answer alike."""
    with FakeBotApi(front=request.param) as server:
        yield server


def make_bot(api: FakeBotApi, *, read_timeout: float = 5.0) -> Bot:
    return Bot(
        api.token,
        base_url=api.base_url,
        base_file_url=api.base_file_url,
        request=HTTPXRequest(read_timeout=read_timeout),
    )


def test_bot_sends_a_message_and_the_server_records_it(api: FakeBotApi) -> None:
    async def scenario() -> Any:
        async with make_bot(api) as bot:
            markup = InlineKeyboardMarkup([[InlineKeyboardButton("完成", callback_data="done:1")]])
            return bot.bot, await bot.send_message(
                42, "<b>请于6月底前</b>报送", parse_mode="HTML", reply_markup=markup
            )

    me, message = run(scenario())

    assert me.username == "dutybot_test_bot"
    assert message.message_id == 1
    assert message.chat.id == 42
    assert message.chat.type == "private"
    assert message.text == "请于6月底前报送"  # markup parsed away, as Telegram does
    assert message.reply_markup.inline_keyboard[0][0].callback_data == "done:1"
    assert [c.method for c in api.calls] == ["getMe", "sendMessage"]
    call = api.calls_to("sendMessage")[0]
    assert call.encoding == "form"
    assert call.status == 200
    assert call.chat_id == "42"
    assert call.params == {
        "chat_id": "42",
        "text": "<b>请于6月底前</b>报送",
        "parse_mode": "HTML",
        "reply_markup": {"inline_keyboard": [[{"text": "完成", "callback_data": "done:1"}]]},
    }
    assert api.sent_messages(42)[0]["message_id"] == 1


def test_get_updates_returns_pushed_updates_once(api: FakeBotApi) -> None:
    api.push_message(42, "/start", from_id=7)
    api.push_callback(42, "done:1", message_id=5)

    async def scenario() -> tuple[tuple[Update, ...], tuple[Update, ...], tuple[Update, ...]]:
        async with make_bot(api) as bot:
            first = await bot.get_updates(timeout=0)
            again = await bot.get_updates(timeout=0)  # not confirmed yet: same updates
            confirmed = await bot.get_updates(offset=first[-1].update_id + 1, timeout=0)
            return first, again, confirmed

    first, again, confirmed = run(scenario())

    assert [u.update_id for u in first] == [1, 2]
    assert [u.update_id for u in again] == [1, 2]
    assert confirmed == ()
    assert api.pending_updates() == []
    message, callback = first[0].message, first[1].callback_query
    assert message is not None and callback is not None
    assert message.text == "/start"
    assert message.from_user is not None and message.from_user.id == 7
    assert message.entities[0].type == "bot_command"
    assert callback.data == "done:1"
    assert callback.message is not None and callback.message.message_id == 5


def test_long_poll_is_capped(api: FakeBotApi) -> None:
    async def scenario() -> tuple[float, tuple[Update, ...]]:
        async with make_bot(api) as bot:
            began = time.monotonic()
            empty = await bot.get_updates(timeout=10)
            return time.monotonic() - began, empty

    idle, empty = run(scenario())

    assert empty == ()
    assert api.poll_cap * 0.9 <= idle < 1.0  # answered at the cap, not after 10 s


def test_long_poll_wakes_on_push() -> None:
    with FakeBotApi(poll_cap=5.0) as api:

        async def scenario() -> tuple[float, tuple[Update, ...]]:
            async with make_bot(api) as bot:
                threading.Timer(0.05, api.push_message, args=(42, "hi")).start()
                began = time.monotonic()
                woken = await bot.get_updates(timeout=10)
                return time.monotonic() - began, woken

        waited, woken = run(scenario())

    assert waited < 2.0  # answered on the push, not at the cap
    assert [u.message.text for u in woken if u.message] == ["hi"]


def test_json_bodies_are_accepted_and_recorded_alike(api: FakeBotApi) -> None:
    body = {"chat_id": 42, "text": "hi", "reply_markup": {"inline_keyboard": []}}
    response = httpx.post(f"{api.base_url}{api.token}/sendMessage", json=body)

    assert response.json()["ok"] is True
    call = api.calls_to("sendmessage")[0]
    assert call.encoding == "json"
    assert call.params["chat_id"] == "42"
    assert call.params["reply_markup"] == {"inline_keyboard": []}


def test_uploads_and_downloads(api: FakeBotApi) -> None:
    pushed = api.push_document(42, b"%PDF-1.4 minutes", file_name="会议纪要.pdf")
    api.push_photo(42, b"\xff\xd8 photo bytes", caption="现场照片")

    async def scenario() -> dict[str, Any]:
        async with make_bot(api) as bot:
            sent = await bot.send_document(42, b"ledger bytes", filename="台账.xlsx")
            updates = await bot.get_updates(timeout=0)
            document = updates[0].message.document  # type: ignore[union-attr]
            photo = updates[1].message.photo[-1]  # type: ignore[union-attr]
            document_file = await bot.get_file(document.file_id)  # type: ignore[union-attr]
            photo_file = await bot.get_file(photo.file_id)
            return {
                "sent": sent,
                "document": document,
                "caption": updates[1].message.caption,  # type: ignore[union-attr]
                "document_bytes": bytes(await document_file.download_as_bytearray()),
                "photo_bytes": bytes(await photo_file.download_as_bytearray()),
            }

    result = run(scenario())

    upload = api.calls_to("sendDocument")[0]
    assert upload.encoding == "multipart"
    assert upload.chat_id == "42"
    assert upload.files["document"].data == b"ledger bytes"
    assert upload.files["document"].filename == "台账.xlsx"
    assert result["sent"].document.file_name == "台账.xlsx"
    assert result["document"].file_name == "会议纪要.pdf"
    assert result["document"].file_id == pushed["message"]["document"]["file_id"]
    assert result["document_bytes"] == b"%PDF-1.4 minutes"
    assert result["photo_bytes"] == b"\xff\xd8 photo bytes"
    assert result["caption"] == "现场照片"


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")  # PTB's RetryAfter
def test_faults_are_scripted_per_chat_then_per_method_and_used_once(api: FakeBotApi) -> None:
    api.inject("sendMessage", Fault.blocked(), chat_id=7)
    api.inject("sendMessage", Fault.retry_after(3))

    async def scenario() -> list[str]:
        outcomes = []
        async with make_bot(api) as bot:
            for chat in (7, 8, 7, 8):
                try:
                    await bot.send_message(chat, "x")
                    outcomes.append("ok")
                except (Forbidden, RetryAfter) as exc:
                    outcomes.append(type(exc).__name__)
        return outcomes

    # chat 7 takes its own fault; chat 8 the method-wide one; then both are spent
    assert run(scenario()) == ["Forbidden", "RetryAfter", "ok", "ok"]
    assert [c.status for c in api.calls_to("sendMessage")] == [403, 429, 200, 200]
    assert api.calls_to("sendMessage")[0].fault == Fault.blocked()
    assert api.pending_faults("sendMessage") == 0


def test_a_slow_answer_times_the_client_out_but_is_still_served(api: FakeBotApi) -> None:
    api.inject("sendMessage", Fault.slow(0.3))

    async def scenario() -> None:
        async with make_bot(api, read_timeout=0.1) as bot:
            with pytest.raises(TimedOut):
                await bot.send_message(42, "x")

    run(scenario())

    # the ambiguous case of the real API: the client gave up, the message went out anyway
    assert api.wait_for_calls("sendMessage", timeout=2)[0].status == 200
    assert len(api.sent_messages(42)) == 1


def test_a_connection_reset_fails_the_send_and_sends_nothing(api: FakeBotApi) -> None:
    api.inject("sendMessage", Fault.connection_reset())

    async def scenario() -> str:
        async with make_bot(api) as bot:
            try:
                await bot.send_message(42, "x")
            except NetworkError as exc:
                return type(exc).__name__
            return "ok"

    assert run(scenario()) != "ok"
    assert api.calls_to("sendMessage")[0].status == 0
    assert api.sent_messages(42) == []


def test_html_length_and_button_data_are_checked_like_telegram(api: FakeBotApi) -> None:
    async def scenario() -> list[str]:
        errors = []
        async with make_bot(api) as bot:
            await bot.send_message(42, "责" * 4096)  # exactly at the limit
            await bot.send_message(
                42, "<b>" + "责" * 4096 + "</b>", parse_mode="HTML"
            )  # not counted
            for kwargs in (
                {"text": "<b>unclosed", "parse_mode": "HTML"},
                {"text": "<div>x</div>", "parse_mode": "HTML"},
                {"text": "责" * 4097},
                {"text": "😀" * 2049},  # UTF-16 units, not code points
                {"text": " "},
                {
                    "text": "x",
                    "reply_markup": InlineKeyboardMarkup(
                        [[InlineKeyboardButton("b", callback_data="d" * 65)]]
                    ),
                },
            ):
                with pytest.raises(BadRequest) as info:
                    await bot.send_message(42, **kwargs)
                errors.append(info.value.message)
        return errors

    assert run(scenario()) == [
        "Can't parse entities: can't find end tag corresponding to start tag \"b\"",
        'Can\'t parse entities: unsupported start tag "div"',
        "Message is too long",
        "Message is too long",
        "Message text is empty",
        "Button_data_invalid",
    ]


def test_edits_and_callback_answers(api: FakeBotApi) -> None:
    async def scenario() -> Any:
        async with make_bot(api) as bot:
            markup = InlineKeyboardMarkup([[InlineKeyboardButton("完成", callback_data="done:1")]])
            sent = await bot.send_message(42, "提醒", reply_markup=markup)
            edited = await bot.edit_message_text(
                "已完成", chat_id=42, message_id=sent.message_id, reply_markup=markup
            )
            await bot.edit_message_reply_markup(chat_id=42, message_id=sent.message_id)
            with pytest.raises(BadRequest, match="not modified"):  # as on the real API
                await bot.edit_message_reply_markup(chat_id=42, message_id=sent.message_id)
            with pytest.raises(BadRequest, match="not found"):
                await bot.edit_message_text("x", chat_id=42, message_id=99)
            answered = await bot.answer_callback_query("1", text="已记录")
            return edited, answered

    edited, answered = run(scenario())

    assert edited.text == "已完成"
    assert answered is True
    assert api.sent_messages(42)[0]["text"] == "已完成"
    assert "reply_markup" not in api.sent_messages(42)[0]
    assert api.calls_to("answerCallbackQuery")[0].params["text"] == "已记录"


def test_an_application_polls_and_answers(api: FakeBotApi) -> None:
    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_chat is not None
        keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("完成", callback_data="done:1")]])
        await context.bot.send_message(update.effective_chat.id, "pong", reply_markup=keyboard)

    async def pressed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.callback_query is not None
        await update.callback_query.answer("ok")
        await update.callback_query.edit_message_reply_markup(None)

    async def scenario() -> None:
        app = (
            Application.builder()
            .token(api.token)
            .base_url(api.base_url)
            .base_file_url(api.base_file_url)
            .build()
        )
        app.add_handler(CommandHandler("start", start))
        app.add_handler(CallbackQueryHandler(pressed))
        async with app:
            assert app.updater is not None
            await app.updater.start_polling(poll_interval=0, timeout=1)
            await app.start()
            api.push_message(42, "/start")
            await api.until_calls("sendMessage")
            api.push_callback(42, "done:1")
            await api.until_calls("editMessageReplyMarkup")
            await app.updater.stop()
            await app.stop()

    run(scenario())

    methods = {c.method for c in api.calls}
    assert {"getMe", "deleteWebhook", "getUpdates", "answerCallbackQuery"} <= methods
    assert api.calls_to("sendMessage")[0].params["text"] == "pong"
    assert api.calls_to("answerCallbackQuery")[0].params["text"] == "ok"
    assert api.calls_to("editMessageReplyMarkup")[0].status == 200
    assert "reply_markup" not in api.sent_messages(42)[-1]


def test_wrong_token_and_unknown_method(api: FakeBotApi) -> None:
    async def scenario() -> None:
        stranger = Bot("1:wrong", base_url=api.base_url)
        with pytest.raises(InvalidToken):
            await stranger.initialize()
        await stranger.shutdown()
        async with make_bot(api) as bot:
            with pytest.raises(EndPointNotFound):
                await bot.do_api_request("noSuchMethod")

    run(scenario())

    assert api.calls[0].status == 401
