"""Chat platforms behind one small interface (see base.py), registered by name.

Each platform lives in its own module and is imported only when it is configured: the core
never imports a chat library.  A platform's entry says whether the settings configure it and
builds its *frontend*: the object ``dutybot run`` starts and stops, whose ``adapter`` sends
(bot.dispatch) and whose receive side feeds bot.conversation.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from bot.adapters.base import ChatAdapter
    from bot.clock import Clock
    from bot.settings import Settings


class Frontend(Protocol):
    """A running platform: its send side, start/stop for its receive side, and the HTTP routes
    (webhooks, callback URLs) the web app (bot.web) mounts for it -- none for a platform that
    pulls its updates (long polling, DingTalk's Stream mode)."""

    adapter: ChatAdapter

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def routes(self) -> list[Any]:
        """Starlette routes to mount, e.g. ``Route("/wecom/callback", ...)``."""
        ...


@dataclass(frozen=True)
class Platform:
    name: str
    module: str  # imported on first use
    configured: Callable[[Settings], bool]

    def build(self, *, settings: Settings, db: Engine, clock: Clock) -> Frontend:
        module: Any = importlib.import_module(self.module)
        return module.frontend(settings=settings, db=db, clock=clock)


PLATFORMS: dict[str, Platform] = {}


def register(platform: Platform) -> None:
    PLATFORMS[platform.name] = platform


def configured(settings: Settings) -> list[Platform]:
    """The platforms these settings turn on, in registration order."""
    return [p for p in PLATFORMS.values() if p.configured(settings)]


register(
    Platform(
        "telegram",
        "bot.adapters.telegram_app",
        lambda s: s.telegram_token is not None,
    )
)
register(
    Platform(
        "dingtalk",
        "bot.adapters.dingtalk.frontend",
        lambda s: s.dingtalk_client_id is not None,
    )
)
register(
    Platform(
        "wecom",
        "bot.adapters.wecom.app",
        lambda s: bool(s.wecom_corp_id) and s.wecom_secret is not None,
    )
)
