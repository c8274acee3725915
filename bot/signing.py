"""Signed button data: a forged or edited ``callback_data`` cannot act on anything.

Telegram hands back whatever bytes a button carried, and a client can send any bytes it
likes, so a button's payload is ``<code>:<ref>:<mac>`` -- the action as one letter, the id
it acts on, and a truncated HMAC-SHA256 of both under a server secret -- at most 38 bytes,
well inside Telegram's 64.  Verification is constant-time.  A signature proves the button
was ours; whether the person pressing it may act is still checked against the store.

Several secrets may verify (the first one signs), so the secret can be rotated without
breaking the buttons already in people's chats.

A one-tap *link* (``/a/<data>``, for platforms whose buttons can only open a URL) is the same
signature over more: a browser carries no chat identity, so the link also names the person
it was sent to and the last day it works -- ``<code>.<ref>.<person>.<day>.<mac>``, under its
own domain so a button's MAC never verifies as a link's.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from bot.messages import Button

CALLBACK_DATA_LIMIT = 64  # bytes, Telegram's limit
MAC_BYTES = 12  # 96 bits: forging one button takes ~2^95 tries on average
_DOMAIN = b"dutybot/callback/1|"
_LINK_DOMAIN = b"dutybot/link/1|"
LINK_LIMIT = 120  # characters: longer is not ours

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


@dataclass(frozen=True)
class SignedLink:
    action: str
    ref: int
    person_id: int
    last_day: date


class LinkExpired(BadSignature):
    """Genuine, but past its last day."""


def derive_secret(token: str, purpose: str) -> bytes:
    """A stable secret from the bot token, for deployments that configure no explicit one."""
    return hmac.new(token.encode(), f"dutybot/{purpose}".encode(), hashlib.sha256).digest()


class Signer:
    def __init__(self, secret: bytes | str, *, previous: Sequence[bytes | str] = ()) -> None:
        keys = [secret, *previous]
        if not all(keys):
            raise ValueError("a signing secret must not be empty")
        self._keys = [k.encode() if isinstance(k, str) else k for k in keys]

    def _mac(self, key: bytes, code: str, ref: int, domain: bytes = _DOMAIN, tail: str = "") -> str:
        message = domain + f"{code}:{ref}{tail}".encode()
        digest = hmac.new(key, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest[:MAC_BYTES]).decode().rstrip("=")

    def sign_link(self, action: str, ref: int, person_id: int, last_day: date) -> str:
        """The path part of a one-tap link for ``person_id``, valid through ``last_day``."""
        code = ACTIONS.get(action)
        if code is None:
            raise ValueError(f"unknown button action {action!r}")
        if ref < 0 or person_id < 0:
            raise ValueError("link refs are non-negative ids")
        tail = f":{person_id}:{last_day.toordinal()}"
        mac = self._mac(self._keys[0], code, ref, _LINK_DOMAIN, tail)
        return f"{code}.{ref}.{person_id}.{last_day.toordinal()}.{mac}"

    def verify_link(self, data: str | None, today: date) -> SignedLink:
        """The action, ref and person of a genuine, unexpired link; BadSignature (or its
        subclass LinkExpired) for anything else."""
        if not data or len(data) > LINK_LIMIT or not data.isascii():
            raise BadSignature("empty or oversized")
        parts = data.split(".")
        if len(parts) != 5 or parts[0] not in _BY_CODE:
            raise BadSignature("malformed")
        code, *numbers, mac = parts
        if not all(n.isdigit() and (len(n) == 1 or not n.startswith("0")) for n in numbers):
            raise BadSignature("malformed ref")
        ref, person_id, day = (int(n) for n in numbers)
        tail = f":{person_id}:{day}"
        valid = False
        for key in self._keys:
            expected = self._mac(key, code, ref, _LINK_DOMAIN, tail)
            valid |= hmac.compare_digest(expected.encode(), mac.encode())
        if not valid:
            raise BadSignature("bad mac")
        try:
            last_day = date.fromordinal(day)
        except (ValueError, OverflowError):
            raise BadSignature("malformed day") from None
        if last_day < today:
            raise LinkExpired("expired")
        return SignedLink(_BY_CODE[code], ref, person_id, last_day)

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
