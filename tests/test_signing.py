"""Signed callback data: compact, inside Telegram's 64 bytes, and unforgeable."""

from __future__ import annotations

import pytest

from bot.messages import Button
from bot.signing import ACTIONS, CALLBACK_DATA_LIMIT, BadSignature, Signed, Signer, derive_secret

SIGNER = Signer(b"k" * 32)


@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_every_action_round_trips(action: str) -> None:
    data = SIGNER.sign(action, 4242)
    assert SIGNER.verify(data) == Signed(action, 4242)


def test_largest_id_fits_in_64_bytes() -> None:
    data = SIGNER.sign("not_mine", 2**63 - 1)
    assert len(data.encode()) <= CALLBACK_DATA_LIMIT
    assert SIGNER.verify(data).ref == 2**63 - 1


def test_encode_is_the_adapter_hook() -> None:
    assert SIGNER.encode(Button("✅ 已完成", "done", 7)) == SIGNER.sign("done", 7)


def test_changing_any_part_breaks_the_signature() -> None:
    data = SIGNER.sign("done", 7)
    code, ref, mac = data.split(":")
    for forged in (
        f"{code}:8:{mac}",  # another occurrence
        f"a:{ref}:{mac}",  # another action (approve)
        f"{code}:{ref}:{mac[:-1]}{'A' if mac[-1] != 'A' else 'B'}",
        f"{code}:{ref}:{mac[:8]}",  # truncated
        f"{code}:{ref}:",
    ):
        with pytest.raises(BadSignature):
            SIGNER.verify(forged)


@pytest.mark.parametrize(
    "data",
    [
        None,
        "",
        "d:7",
        "done:7",
        "d:007:AAAAAAAAAAAAAAAA",  # no second spelling of an id
        "d:-7:AAAAAAAAAAAAAAAA",
        "d:٧:AAAAAAAAAAAAAAAA",  # a non-ASCII digit
        "z:7:AAAAAAAAAAAAAAAA",  # unknown action code
        "d:7:" + "A" * 80,  # longer than Telegram allows
    ],
)
def test_malformed_data_is_refused(data: str | None) -> None:
    with pytest.raises(BadSignature):
        SIGNER.verify(data)


def test_another_secret_cannot_verify_and_rotation_keeps_old_buttons() -> None:
    old, new = Signer("old-secret"), Signer("new-secret")
    data = old.sign("approve", 3)
    with pytest.raises(BadSignature):
        new.verify(data)
    rotated = Signer("new-secret", previous=["old-secret"])
    assert rotated.verify(data) == Signed("approve", 3)
    assert rotated.sign("approve", 3) == new.sign("approve", 3)  # the first secret signs


def test_refuses_to_sign_what_it_cannot_verify() -> None:
    with pytest.raises(ValueError):
        SIGNER.sign("delete_everything", 1)
    with pytest.raises(ValueError):
        SIGNER.sign("done", -1)
    with pytest.raises(ValueError):
        Signer(b"")


def test_derived_secrets_depend_on_token_and_purpose() -> None:
    a = derive_secret("123:abc", "callback")
    assert a == derive_secret("123:abc", "callback")
    assert a != derive_secret("123:abc", "webhook")
    assert a != derive_secret("123:abd", "callback")


def test_a_link_names_its_person_and_last_day_and_is_no_button() -> None:
    from datetime import date

    from bot.signing import LinkExpired, SignedLink

    data = SIGNER.sign_link("done", 7, 42, date(2026, 6, 30))
    assert SIGNER.verify_link(data, date(2026, 6, 30)) == SignedLink(
        "done", 7, 42, date(2026, 6, 30)
    )
    with pytest.raises(LinkExpired):
        SIGNER.verify_link(data, date(2026, 7, 1))
    code, ref, person, day, mac = data.split(".")
    for forged in (
        f"{code}.{ref}.43.{day}.{mac}",  # another person
        f"{code}.{ref}.{person}.{int(day) + 30}.{mac}",  # a later last day
        f"p.{ref}.{person}.{day}.{mac}",  # another action
        f"{code}.{ref}.{person}.{day}.{mac[:-1]}A",
    ):
        with pytest.raises(BadSignature):
            SIGNER.verify_link(forged, date(2026, 6, 1))
    with pytest.raises(BadSignature):  # a button's signature is not a link's
        SIGNER.verify_link(SIGNER.sign("done", 7), date(2026, 6, 1))
