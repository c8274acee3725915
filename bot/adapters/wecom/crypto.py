"""WeCom's callback crypto (加解密方案): the msg_signature check and AES of every callback.

The scheme, as documented (https://developer.work.weixin.qq.com/document/path/90968):

- ``msg_signature = sha1(sorted([Token, timestamp, nonce, msg_encrypt]) joined)``, hex;
- ``AESKey = Base64_Decode(EncodingAESKey + "=")``, 32 bytes; AES-256-CBC, IV = the key's first
  16 bytes, PKCS#7 padding to a multiple of **32** bytes;
- plaintext = 16 random bytes + msg length (4 bytes, network order) + msg + ReceiveId (the
  corp id for a self-built app), and ``msg_encrypt`` is its Base64.

Why ``cryptography`` and not ``wechatpy``: the cipher is the only part that must come from a
maintained library, and pyca/cryptography is that library (audited, wheels everywhere);
wechatpy's WeCom crypto wraps the same cipher with the framing below, but its last release is
from 2021 and it brings requests and its own XML handling that we would not use.  The framing
(random prefix, length, receive id) is protocol, not cryptography, and is a few lines here.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import struct

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

BLOCK = 32  # WeCom pads to 32 bytes (PKCS#7 with a block of 32), not AES's 16
MAX_ENCRYPTED = 1 << 20  # a callback body is a few KiB; refuse anything near a megabyte


class CryptoError(ValueError):
    """The data was not made with our key, or is malformed: refuse, never trust."""


def signature(token: str, timestamp: str, nonce: str, encrypted: str) -> str:
    parts = sorted([token, timestamp, nonce, encrypted])
    return hashlib.sha1("".join(parts).encode()).hexdigest()


class WeComCrypto:
    """The app's Token and EncodingAESKey, and the corp id plaintexts must name."""

    def __init__(self, *, token: str, aes_key: str, receive_id: str) -> None:
        if not token:
            raise ValueError("the WeCom callback Token is empty")
        if len(aes_key) != 43:
            raise ValueError("the WeCom EncodingAESKey must be 43 characters")
        try:
            key = base64.b64decode(aes_key + "=", validate=True)
        except binascii.Error as exc:
            raise ValueError("the WeCom EncodingAESKey is not Base64") from exc
        if len(key) != 32:
            raise ValueError("the WeCom EncodingAESKey does not decode to 32 bytes")
        self._token, self._key, self._receive_id = token, key, receive_id

    def __repr__(self) -> str:  # the key and the token are secrets
        return f"WeComCrypto(receive_id={self._receive_id!r})"

    def verify(self, msg_signature: str, timestamp: str, nonce: str, encrypted: str) -> bool:
        expected = signature(self._token, timestamp, nonce, encrypted)
        return hmac.compare_digest(expected.encode(), (msg_signature or "").lower().encode())

    def sign(self, timestamp: str, nonce: str, encrypted: str) -> str:
        return signature(self._token, timestamp, nonce, encrypted)

    def _cipher(self) -> Cipher[modes.CBC]:
        return Cipher(algorithms.AES(self._key), modes.CBC(self._key[:16]))

    def decrypt(self, encrypted: str) -> bytes:
        """The plaintext msg of ``msg_encrypt``; CryptoError if it is not ours."""
        if not encrypted or len(encrypted) > MAX_ENCRYPTED:
            raise CryptoError("empty or oversized ciphertext")
        try:
            data = base64.b64decode(encrypted, validate=True)
        except binascii.Error as exc:
            raise CryptoError("ciphertext is not Base64") from exc
        if not data or len(data) % 16:
            raise CryptoError("ciphertext is not whole AES blocks")
        decryptor = self._cipher().decryptor()
        padded = decryptor.update(data) + decryptor.finalize()
        pad = padded[-1]
        if not 1 <= pad <= BLOCK or padded[-pad:] != bytes([pad]) * pad:
            raise CryptoError("bad padding")
        plain = padded[:-pad]
        if len(plain) < 20:
            raise CryptoError("plaintext too short")
        (length,) = struct.unpack(">I", plain[16:20])
        msg, receive_id = plain[20 : 20 + length], plain[20 + length :]
        if len(msg) != length:
            raise CryptoError("length field overruns the plaintext")
        if not hmac.compare_digest(receive_id, self._receive_id.encode()):
            raise CryptoError("plaintext names another corp")
        return msg

    def encrypt(self, msg: bytes, *, prefix: bytes | None = None) -> str:
        """``msg_encrypt`` for ``msg`` (passive replies; the test client that plays WeCom)."""
        head = prefix if prefix is not None else os.urandom(16)
        plain = head + struct.pack(">I", len(msg)) + msg + self._receive_id.encode()
        pad = BLOCK - len(plain) % BLOCK
        encryptor = self._cipher().encryptor()
        data = encryptor.update(plain + bytes([pad]) * pad) + encryptor.finalize()
        return base64.b64encode(data).decode()
