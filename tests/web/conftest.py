"""The browser harness: the app under uvicorn on a free port in a thread, against the real
store, and a real Chromium launched by its executable path (nothing downloaded).

Outside CI a missing browser skips loudly (a warning and a skip reason); in CI it fails.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import uvicorn
from sqlalchemy import Engine

from bot.clock import Clock, SystemClock
from bot.settings import Settings
from bot.web.app import create_app

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
CHROMIUM = os.environ.get("DUTYBOT_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"


@dataclass
class Served:
    url: str
    app: Any
    engine: Engine


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve(engine: Engine, clock: Clock | None = None, **settings: Any) -> Iterator[Served]:
    """Start the app in a thread; yields once it accepts connections."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    app = create_app(
        Settings(web_secret="browser-tests", web_url=url, **settings),
        engine=engine,
        clock=clock or SystemClock(),
    )
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield Served(url, app, engine)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def web(engine: Engine) -> Iterator[Served]:
    yield from serve(engine)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium for one test module: Playwright's sync API keeps an event loop running in
    this thread while it is open, which would break ``asyncio.run`` in later tests."""
    reason = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        reason = "the playwright package is not installed (pip install -e '.[dev]')"
    if reason is None and not os.path.exists(CHROMIUM):
        reason = f"no Chromium at {CHROMIUM} (apt-get install chromium, or set DUTYBOT_CHROMIUM)"
    if reason is not None:
        if IN_CI:
            pytest.fail(f"browser tests need a browser in CI: {reason}")
        warnings.warn(f"browser tests skipped: {reason}", stacklevel=1)
        pytest.skip(reason)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        try:
            yield launched
        finally:
            launched.close()
