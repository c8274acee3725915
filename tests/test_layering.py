"""Layering (issue 9 §1): adapters depend on the message model and the conversation, never
the reverse.  Each core module is imported in a fresh interpreter that records, for every
``bot.adapters`` or ``telegram`` module loaded, which module's import statement asked for it."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import pytest

import bot.conversation

CONVERSATION = sorted(
    f"bot.conversation.{m.name}" for m in pkgutil.iter_modules(bot.conversation.__path__)
)
CORE = ["bot.engine", "bot.replies", "bot.signing", "bot.messages", *CONVERSATION]
# Until the Dispatcher (claim and send) leaves bot/outbox.py for its own module (issue 9 §1,
# "Split the outbox", the lead's change), the engine and replies reach bot.adapters.base
# through bot.outbox for DeliveryError and Delivery.  Remove this when the split lands.
THROUGH_THE_OUTBOX = {"bot.outbox"}

_TRACE = """
import builtins, json, sys
seen = {}
real = builtins.__import__
def traced(name, globals=None, locals=None, fromlist=(), level=0):
    importer = (globals or {}).get("__name__", "?")
    target = name if level == 0 else (globals or {}).get("__package__", "") + "." + name
    if target.split(".")[0] == "telegram" or target.startswith("bot.adapters"):
        if target not in sys.modules:
            seen.setdefault(target, importer)
    return real(name, globals, locals, fromlist, level)
builtins.__import__ = traced
import importlib
importlib.import_module(sys.argv[1])
print(json.dumps({"asked": seen, "loaded": sorted(
    m for m in sys.modules if m.split(".")[0] == "telegram" or m.startswith("bot.adapters"))}))
"""


def imported(module: str) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", _TRACE, module], capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out)


@pytest.mark.parametrize("module", CORE)
def test_the_core_never_imports_an_adapter_or_a_chat_library(module: str) -> None:
    found = imported(module)
    loaded = found["loaded"]
    assert isinstance(loaded, list)
    assert not [m for m in loaded if m.split(".")[0] == "telegram"], loaded
    asked = found["asked"]
    assert isinstance(asked, dict)
    importers = {who for name, who in asked.items() if name.startswith("bot.adapters")}
    assert importers <= THROUGH_THE_OUTBOX, asked


def test_the_trace_sees_who_imports_an_adapter() -> None:
    """The check above can fail: the demo imports the console adapter itself, and the
    Telegram adapter imports the chat library."""
    assert imported("bot.demo")["asked"] == {"bot.adapters.console": "bot.demo"} | {
        "bot.adapters.base": "bot.outbox"
    }
    assert "telegram" in imported("bot.adapters.telegram")["loaded"]  # type: ignore[operator]
