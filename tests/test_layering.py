"""Layering (issue 9 §1): adapters depend on the message model and the conversation, never
the reverse.  The core modules are imported in a fresh interpreter that records every import
statement naming ``bot.adapters`` or ``telegram`` and the module that ran it."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import bot.conversation

CONVERSATION = sorted(
    f"bot.conversation.{m.name}" for m in pkgutil.iter_modules(bot.conversation.__path__)
)
CORE = ["bot.engine", "bot.replies", "bot.signing", "bot.messages", *CONVERSATION]
# the outbox records intents and bundles them; only the sender (bot.dispatch) meets adapters
CORE.append("bot.outbox")

_TRACE = """
import builtins, importlib, json, sys
asked = []
real = builtins.__import__
def traced(name, globals=None, locals=None, fromlist=(), level=0):
    importer = (globals or {}).get("__name__", "?")
    target = name if level == 0 else (globals or {}).get("__package__", "") + "." + name
    if target.split(".")[0] == "telegram" or target.startswith("bot.adapters"):
        asked.append([importer, target])  # every import statement, loaded already or not
    return real(name, globals, locals, fromlist, level)
builtins.__import__ = traced
for module in sys.argv[1:]:
    importlib.import_module(module)
print(json.dumps(asked))
"""


def importers(*modules: str) -> set[tuple[str, str]]:
    """(importing module, imported name) for each import of an adapter or the chat library
    that importing ``modules`` runs, in a fresh interpreter."""
    out = subprocess.run(
        [sys.executable, "-c", _TRACE, *modules], capture_output=True, text=True, check=True
    ).stdout
    return {(who, name) for who, name in json.loads(out)}


def test_the_core_never_imports_an_adapter_or_a_chat_library() -> None:
    found = importers(*CORE)
    assert not found, found  # not the adapter boundary, not a chat library


def test_the_trace_sees_who_imports_an_adapter() -> None:
    """The check above can fail: the demo imports the console adapter itself, and the
    Telegram adapter imports the chat library."""
    assert ("bot.demo", "bot.adapters.console") in importers("bot.demo")
    assert ("bot.adapters.telegram", "telegram") in importers("bot.adapters.telegram")
