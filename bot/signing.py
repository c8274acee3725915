"""Signed button data: a forged or edited ``callback_data`` cannot act on anything.

Telegram hands back whatever bytes a button carried, and a client can send any bytes it
likes, so a button's payload is ``<code>:<ref>:<mac>`` -- the action as one letter, the id
it acts on, and a truncated HMAC-SHA256 of both under a server secret -- at most 38 bytes,
well inside Telegram's 64.  Verification is constant-time.  A signature proves the button
was ours; whether the person pressing it may act is still checked against the store.

Several secrets may verify (the first one signs), so the secret can be rotated without
breaking the buttons already in people's chats.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass

from bot.messages import Button

CALLBACK_DATA_LIMIT = 64  # bytes, Telegram's limit
MAC_BYTES = 12  # 96 bits: forging one button takes ~2^95 tries on average
_DOMAIN = b"dutybot/callback/1|"

# action name <-> one-letter code (the wire format is compact, the code base speaks names)
ACTIONS: dict[str, str] = {
    "done": "d",
    "progress": "p",
    "extend": "e",
    "not_mine": "n",
    "nudge": "u",
    "approve": "a",
    "deny": "x",
    "done_now": "f",  # complete without a note (evidence optional)
    "cancel": "c",  # abandon the current multi-step flow
    "import_ok": "i",
    "import_no": "j",
    "lang": "l",  # ref: index into bot.texts.LANGS
    "unbind": "b",  # ref: a chat binding ("这不是我")
}
_BY_CODE = {code: action for action, code in ACTIONS.items()}


class BadSignature(ValueError):
    """The data was not made by us (or by a secret we no longer accept)."""


@dataclass(frozen=True)
class Signed:
    action: str
    ref: int


def derive_secret(token: str, purpose: str) -> bytes:
    """A stable secret from the bot token, for deployments that configure no explicit one."""
    return hmac.new(token.encode(), f"dutybot/{purpose}".encode(), hashlib.sha256).digest()


class Signer:
    def __init__(self, secret: bytes | str, *, previous: Sequence[bytes | str] = ()) -> None:
        keys = [secret, *previous]
        if not all(keys):
            raise ValueError("a signing secret must not be empty")
        self._keys = [k.encode() if isinstance(k, str) else k for k in keys]

    def _mac(self, key: bytes, code: str, ref: int) -> str:
        digest = hmac.new(key, _DOMAIN + f"{code}:{ref}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest[:MAC_BYTES]).decode().rstrip("=")

    def sign(self, action: str, ref: int) -> str:
        code = ACTIONS.get(action)
        if code is None:
            raise ValueError(f"unknown button action {action!r}")
        if ref < 0:
            raise ValueError("button refs are non-negative ids")
        data = f"{code}:{ref}:{self._mac(self._keys[0], code, ref)}"
        assert len(data.encode()) <= CALLBACK_DATA_LIMIT
        return data

    def encode(self, button: Button) -> str:
        """The adapter's ``encode`` hook."""
        return self.sign(button.action, button.ref)

    def verify(self, data: str | None) -> Signed:
        """The action and ref of genuine data; BadSignature for anything else."""
        if not data or len(data) > CALLBACK_DATA_LIMIT:
            raise BadSignature("empty or oversized")
        parts = data.split(":")
        if len(parts) != 3 or parts[0] not in _BY_CODE or not parts[1].isascii():
            raise BadSignature("malformed")
        code, ref_text, mac = parts
        if not ref_text.isdigit() or (len(ref_text) > 1 and ref_text.startswith("0")):
            raise BadSignature("malformed ref")
        ref = int(ref_text)
        valid = False
        for key in self._keys:  # every key is tried: timing says nothing about which matched
            valid |= hmac.compare_digest(self._mac(key, code, ref).encode(), mac.encode())
        if not valid:
            raise BadSignature("bad mac")
        return Signed(_BY_CODE[code], ref)
