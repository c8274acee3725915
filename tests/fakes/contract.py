"""Adapters under the delivery contract: each platform's harness scripts failures on its own
fake server (or, for ``scripted``, in memory) in that platform's terms, so one parametrised
suite (tests/test_dispatch_contract.py) checks that every adapter maps its platform's answers
onto the same dispatcher behaviour.

A harness says how to make the next send to a chat fail in each of the kinds the dispatcher
knows, and what the platform received.  Add a platform by adding a harness to HARNESSES.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from bot.adapters.base import ChatAdapter, Delivery, DeliveryError
from bot.messages import OutboundMessage, plain_text

# the failure kinds every platform can produce, in the platform's own words
RETRY_AFTER, TRANSIENT, TIMEOUT, GONE, REFUSED = (
    "retry_after",
    "transient",
    "timeout",
    "gone",
    "refused",
)
KINDS = (RETRY_AFTER, TRANSIENT, TIMEOUT, GONE, REFUSED)


class Harness(Protocol):
    platform: str
    adapter: ChatAdapter

    def chat(self, n: int) -> str:
        """The n-th chat id valid on this platform."""
        ...

    def fail(self, kind: str, chat: str, *, times: int = 1, seconds: int = 5) -> None:
        """Make the next ``times`` sends to ``chat`` fail this way (retry_after: ``seconds``)."""
        ...

    def fail_all(self, kind: str, *, times: int) -> None:
        """Make the next ``times`` sends to anyone fail this way (an outage)."""
        ...

    def received(self, chat: str) -> list[str]:
        """The texts the platform accepted for ``chat``, in order."""
        ...

    def attempts(self, chat: str) -> int:
        """How many send requests reached the platform for ``chat`` (accepted or not)."""
        ...


@dataclass
class ScriptedAdapter:
    """An in-memory adapter raising the scripted DeliveryError of each kind."""

    platform: str = "scripted"
    limits: None = None
    script: dict[str | None, list[str]] = field(default_factory=dict)
    seconds: dict[str | None, int] = field(default_factory=dict)
    sent: dict[str, list[str]] = field(default_factory=dict)
    tried: dict[str, int] = field(default_factory=dict)

    async def send(self, message: OutboundMessage) -> Delivery:
        chat = message.chat_id
        self.tried[chat] = self.tried.get(chat, 0) + 1
        for key in (chat, None):
            queue = self.script.get(key)
            if queue:
                kind = queue.pop(0)
                raise _error(kind, self.seconds.get(key, 5))
        self.sent.setdefault(chat, []).append(_text_of(message))
        return Delivery(message_ref=f"{chat}-{len(self.sent[chat])}")


def _text_of(message: OutboundMessage) -> str:
    return plain_text(message.message)


def _error(kind: str, seconds: int) -> DeliveryError:
    if kind == RETRY_AFTER:
        return DeliveryError("429 slow down", permanent=False, retry_after=seconds)
    if kind == TRANSIENT:
        return DeliveryError("503 unavailable", permanent=False)
    if kind == TIMEOUT:
        return DeliveryError("read timed out", permanent=False, timed_out=True)
    if kind == GONE:
        return DeliveryError("user left", permanent=True, recipient_gone=True)
    return DeliveryError("400 bad message", permanent=True)


class ScriptedHarness:
    platform = "scripted"

    def __init__(self) -> None:
        self.adapter = ScriptedAdapter()

    def chat(self, n: int) -> str:
        return f"s{n}"

    def fail(self, kind: str, chat: str, *, times: int = 1, seconds: int = 5) -> None:
        self.adapter.script.setdefault(chat, []).extend([kind] * times)
        self.adapter.seconds[chat] = seconds

    def fail_all(self, kind: str, *, times: int) -> None:
        self.adapter.script.setdefault(None, []).extend([kind] * times)

    def received(self, chat: str) -> list[str]:
        return list(self.adapter.sent.get(chat, []))

    def attempts(self, chat: str) -> int:
        return self.adapter.tried.get(chat, 0)


class TelegramHarness:
    """The real TelegramAdapter (PTB) against the fake Bot API over HTTP."""

    platform = "telegram"

    def __init__(self, api: object) -> None:
        from bot.adapters.telegram import TelegramAdapter
        from tests.fakes.botapi import FakeBotApi

        assert isinstance(api, FakeBotApi)
        self.api = api
        self.adapter = TelegramAdapter(
            api.token, base_url=api.base_url, read_timeout=0.5, connect_timeout=0.5
        )
        self.adapter.limits = None  # pacing has tests of its own

    def chat(self, n: int) -> str:
        return str(5000 + n)

    def _fault(self, kind: str, seconds: int):  # type: ignore[no-untyped-def]
        from tests.fakes.botapi import Fault

        return {
            RETRY_AFTER: Fault.retry_after(seconds),
            TRANSIENT: Fault.server_error(502),
            TIMEOUT: Fault.slow(1.5),
            GONE: Fault.blocked(),
            REFUSED: Fault.bad_request("can't parse entities"),
        }[kind]

    def fail(self, kind: str, chat: str, *, times: int = 1, seconds: int = 5) -> None:
        self.api.inject(
            "sendMessage", *[self._fault(kind, seconds) for _ in range(times)], chat_id=chat
        )

    def fail_all(self, kind: str, *, times: int) -> None:
        self.api.inject("sendMessage", *[self._fault(kind, 5) for _ in range(times)])

    def received(self, chat: str) -> list[str]:
        return [
            str(c.params.get("text", ""))
            for c in self.api.calls_to("sendMessage", chat_id=chat)
            if c.status in (None, 200) and (c.fault is None or c.fault.status is None)
        ]

    def attempts(self, chat: str) -> int:
        return len(self.api.calls_to("sendMessage", chat_id=chat))


class DingTalkHarness:
    """The real DingTalkAdapter (httpx, the renderer) against the fake DingTalk over HTTP."""

    platform = "dingtalk"

    def __init__(self, fake: object) -> None:
        from bot.adapters.dingtalk.adapter import DingTalkAdapter
        from bot.adapters.dingtalk.openapi import OpenApi
        from bot.clock import SystemClock
        from tests.fakes.dingtalk import CLIENT_ID, CLIENT_SECRET, ROBOT_CODE, FakeDingTalk

        assert isinstance(fake, FakeDingTalk)
        self.fake = fake
        api = OpenApi(
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            robot_code=ROBOT_CODE,
            api_base=fake.url,
            oapi_base=fake.url,
            timeout=0.5,
        )
        self.adapter = DingTalkAdapter(api, clock=SystemClock())
        self.adapter.limits = None  # pacing has tests of its own

    def chat(self, n: int) -> str:
        return f"user{5000 + n}"

    def _kind(self, kind: str) -> str:
        from tests.fakes import dingtalk as fake

        return {
            RETRY_AFTER: fake.IP_BANNED,  # the one limit answer that names its wait
            TRANSIENT: fake.SERVER_ERROR,
            TIMEOUT: fake.SLOW,
            GONE: fake.GONE,  # invalidStaffIdList: left the organisation
            REFUSED: fake.BAD_REQUEST,
        }[kind]

    def fail(self, kind: str, chat: str, *, times: int = 1, seconds: int = 5) -> None:
        wait = 1.5 if kind == TIMEOUT else seconds
        self.fake.fail(self._kind(kind), chat, times=times, seconds=wait)

    def fail_all(self, kind: str, *, times: int) -> None:
        self.fake.fail(self._kind(kind), None, times=times, seconds=1.5 if kind == TIMEOUT else 5)

    def received(self, chat: str) -> list[str]:
        return [sent.text for sent in self.fake.sent(chat)]

    def attempts(self, chat: str) -> int:
        return len(self.fake.sends(chat))


class WeComHarness:
    """The real WeComAdapter (httpx) against the fake WeCom server over HTTP; each failure
    kind is an answer in WeCom's own terms: an errcode, or an answer slower than the
    adapter's read timeout.

    WeCom states no wait with its throttling errcode (45009), so the adapter waits a fixed
    :attr:`~bot.adapters.wecom.adapter.WeComAdapter.throttle_seconds` (60 s by default, the
    shortest block 访问频率限制 documents); scripting a throttle of ``seconds`` sets that wait
    too, so the suite checks that the adapter's wait is honoured, whatever it is."""

    platform = "wecom"

    def __init__(self, fake: object) -> None:
        from bot.adapters.wecom.adapter import WeComAdapter
        from bot.adapters.wecom.api import WeComApi
        from bot.clock import SystemClock
        from bot.signing import Signer
        from tests.fakes.wecom import FakeWeCom

        assert isinstance(fake, FakeWeCom)
        self.fake = fake
        api = WeComApi(corp_id=fake.corp_id, secret=fake.secret, base_url=fake.url, timeout=0.5)
        self.adapter = WeComAdapter(
            api,
            agent_id=fake.agent_id,
            clock=SystemClock(),
            encode=Signer(b"contract-secret").encode,
        )
        self.adapter.limits = None  # pacing has tests of its own

    def chat(self, n: int) -> str:
        return f"member{n}"

    def _fault(self, kind: str, seconds: int):  # type: ignore[no-untyped-def]
        from tests.fakes.wecom import Fault

        if kind == RETRY_AFTER:
            self.adapter.throttle_seconds = float(seconds)
        return {
            RETRY_AFTER: Fault.error(45009, "api freq out of limit"),
            TRANSIENT: Fault.error(-1, "system busy"),
            TIMEOUT: Fault.slow(1.5),
            GONE: Fault.error(81013, "user & party & tag all invalid"),
            REFUSED: Fault.error(45002, "content size out of limit"),
        }[kind]

    def fail(self, kind: str, chat: str, *, times: int = 1, seconds: int = 5) -> None:
        faults = [self._fault(kind, seconds) for _ in range(times)]
        self.fake.inject("/cgi-bin/message/send", *faults, userid=chat)

    def fail_all(self, kind: str, *, times: int) -> None:
        faults = [self._fault(kind, 5) for _ in range(times)]
        self.fake.inject("/cgi-bin/message/send", *faults)

    def received(self, chat: str) -> list[str]:
        return [sent.text for sent in self.fake.received(chat)]

    def attempts(self, chat: str) -> int:
        return len(self.fake.calls_to("/cgi-bin/message/send", chat))


HarnessFactory = Callable[[], contextlib.AbstractContextManager[Harness]]


@contextlib.contextmanager
def scripted() -> Iterator[Harness]:
    yield ScriptedHarness()


@contextlib.contextmanager
def telegram() -> Iterator[Harness]:
    from tests.fakes.botapi import FakeBotApi

    with FakeBotApi(token="123456:TEST-contract") as api:
        yield TelegramHarness(api)


@contextlib.contextmanager
def dingtalk() -> Iterator[Harness]:
    from tests.fakes.dingtalk import FakeDingTalk

    with FakeDingTalk() as fake:
        yield DingTalkHarness(fake)


@contextlib.contextmanager
def wecom() -> Iterator[Harness]:
    from tests.fakes.wecom import FakeWeCom

    with FakeWeCom(members={f"member{n}": "" for n in range(10)}) as fake:
        yield WeComHarness(fake)


HARNESSES: dict[str, HarnessFactory] = {
    "scripted": scripted,
    "telegram": telegram,
    "dingtalk": dingtalk,
    "wecom": wecom,
}
