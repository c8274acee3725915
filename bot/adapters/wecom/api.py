"""The WeCom server API over httpx: the access token, JSON calls, media down- and upload.

- **Token** (https://developer.work.weixin.qq.com/document/path/91039): ``GET
  /cgi-bin/gettoken?corpid=…&corpsecret=…`` gives ``access_token`` and ``expires_in`` (7200 s).
  It is cached and fetched again a few minutes before it expires; one refresh at a time,
  whatever the number of sends waiting for it.  WeCom may invalidate a token early: a call
  answered 42001 (expired), 40014 (invalid) or 41001 (missing) refreshes the token and is
  made once more, so an expiry in the middle of a run loses nothing and repeats nothing (the
  refused call was not carried out).
- **Errors**: every answer carries ``errcode``; anything but 0 raises :class:`WeComApiError`
  with it (https://developer.work.weixin.qq.com/document/path/90455).  Transport failures
  leave as httpx exceptions; the adapter maps both.
- Every base URL is configuration: 政务微信 and private deployments serve the same API from
  their own host.  The corp secret and every access token are kept out of the logs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import httpx

from bot.adapters.redaction import forget, redact_in_logs

log = logging.getLogger("dutybot.wecom")

DEFAULT_API_BASE = "https://qyapi.weixin.qq.com"
TOKEN_ERRORS = frozenset({42001, 40014, 41001})  # expired / invalid / missing access_token
KEPT_REDACTED = 4  # tokens kept out of the logs after they were replaced (late answers)
REFRESH_MARGIN = 300.0  # seconds before expires_in runs out that a token is fetched again
# httpx logs request URLs (with access_token and corpsecret in the query); so could we
SECRET_LOGGERS = ("httpx", "httpcore", "dutybot.wecom")


class WeComApiError(Exception):
    """WeCom answered with a non-zero errcode."""

    def __init__(self, errcode: int, errmsg: str, *, path: str = "") -> None:
        super().__init__(f"{path} errcode {errcode}: {errmsg}")
        self.errcode, self.errmsg, self.path = errcode, errmsg, path
        self.data: dict[str, Any] = {}


class MediaTooLarge(Exception):
    """A download stopped at the size limit."""


@dataclass(frozen=True)
class Media:
    content: bytes
    file_name: str | None
    content_type: str | None


class WeComApi:
    def __init__(
        self,
        *,
        corp_id: str,
        secret: str,
        base_url: str = DEFAULT_API_BASE,
        timeout: float = 10.0,
        connect_timeout: float | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not corp_id or not secret:
            raise ValueError("WeCom needs the corp id and the app secret")
        redact_in_logs(secret, SECRET_LOGGERS)
        self.corp_id, self._secret = corp_id, secret
        self.base_url = base_url.rstrip("/")
        self._timeout = httpx.Timeout(timeout, connect=connect_timeout or timeout)
        # the token's lifetime is wall time on WeCom's side, not the (maybe simulated) clock
        self._monotonic = monotonic
        self._client: httpx.AsyncClient | None = None
        self._token: str | None = None
        self._token_until = 0.0
        self._redacted: list[str] = []
        self._lock = asyncio.Lock()
        self.token_fetches = 0

    def __repr__(self) -> str:
        return f"WeComApi(base_url={self.base_url!r}, corp_id={self.corp_id!r})"

    # ---- life ----------------------------------------------------------------------------

    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                base_url=self.base_url,
                timeout=self._timeout,
                limits=httpx.Limits(max_connections=80, max_keepalive_connections=40),
            )
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # ---- the token ------------------------------------------------------------------------

    async def token(self) -> str:
        if self._token and self._monotonic() < self._token_until:
            return self._token
        return await self._refresh(stale=self._token)

    async def _refresh(self, *, stale: str | None) -> str:
        """A new token, unless another task already replaced ``stale`` meanwhile."""
        async with self._lock:
            if self._token and self._token != stale and self._monotonic() < self._token_until:
                return self._token
            response = await self.client().get(
                "/cgi-bin/gettoken", params={"corpid": self.corp_id, "corpsecret": self._secret}
            )
            data = _json(response, "/cgi-bin/gettoken")
            token = str(data.get("access_token") or "")
            if not token:
                raise WeComApiError(-1, "gettoken answered without a token", path="gettoken")
            redact_in_logs(token, SECRET_LOGGERS)
            self._redacted.append(token)
            if len(self._redacted) > KEPT_REDACTED:  # long dead: no request carries it now
                forget(self._redacted.pop(0))
            expires = float(data.get("expires_in") or 7200)
            self._token = token
            self._token_until = self._monotonic() + max(expires - REFRESH_MARGIN, expires / 2)
            self.token_fetches += 1
            log.info("WeCom access token fetched (valid %.0fs)", expires)
            return token

    # ---- calls ----------------------------------------------------------------------------

    async def call(
        self,
        path: str,
        *,
        json: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """POST ``json`` (or GET with ``params``) with the token; the answer's data, or
        WeComApiError.  A token error refreshes the token and tries once more."""
        for attempt in (1, 2):
            token = await self.token()
            query = {"access_token": token, **(params or {})}
            if json is not None:
                response = await self.client().post(path, params=query, json=json)
            else:
                response = await self.client().get(path, params=query)
            try:
                return _json(response, path)
            except WeComApiError as exc:
                if exc.errcode in TOKEN_ERRORS and attempt == 1:
                    log.info("WeCom token refused (%d): fetching a new one", exc.errcode)
                    await self._refresh(stale=token)
                    continue
                raise
        raise AssertionError("unreachable")

    async def download(self, media_id: str, *, max_bytes: int) -> Media:
        """``GET /cgi-bin/media/get``: the file, or WeComApiError (an expired media id is
        40007), or MediaTooLarge.  https://developer.work.weixin.qq.com/document/path/90254"""
        for attempt in (1, 2):
            token = await self.token()
            params = {"access_token": token, "media_id": media_id}
            async with self.client().stream("GET", "/cgi-bin/media/get", params=params) as r:
                kind = r.headers.get("content-type", "")
                if r.status_code >= 400 or kind.startswith(("application/json", "text/plain")):
                    await r.aread()
                    try:
                        _json(r, "/cgi-bin/media/get")
                    except WeComApiError as exc:
                        if exc.errcode in TOKEN_ERRORS and attempt == 1:
                            await self._refresh(stale=token)
                            continue
                        raise
                    raise WeComApiError(-1, "media/get answered JSON without a file")
                declared = int(r.headers.get("content-length") or 0)
                if declared > max_bytes:
                    raise MediaTooLarge(f"{declared} bytes")
                chunks, size = [], 0
                async for chunk in r.aiter_bytes():
                    size += len(chunk)
                    if size > max_bytes:
                        raise MediaTooLarge(f"more than {max_bytes} bytes")
                    chunks.append(chunk)
                return Media(b"".join(chunks), _file_name(r.headers), kind or None)
        raise AssertionError("unreachable")

    async def upload(self, *, kind: str, file_name: str, content: bytes) -> str:
        """``POST /cgi-bin/media/upload?type=file``: a media id valid for three days.
        https://developer.work.weixin.qq.com/document/path/90253"""
        for attempt in (1, 2):
            token = await self.token()
            response = await self.client().post(
                "/cgi-bin/media/upload",
                params={"access_token": token, "type": kind},
                files={"media": (file_name, content, "application/octet-stream")},
            )
            try:
                data = _json(response, "/cgi-bin/media/upload")
            except WeComApiError as exc:
                if exc.errcode in TOKEN_ERRORS and attempt == 1:
                    await self._refresh(stale=token)
                    continue
                raise
            return str(data["media_id"])
        raise AssertionError("unreachable")


def _json(response: httpx.Response, path: str) -> dict[str, Any]:
    """The answer's JSON when errcode is 0; WeComApiError otherwise; httpx.HTTPStatusError for
    a gateway's error page."""
    if response.status_code >= 500 or (response.status_code >= 400 and not response.content):
        response.raise_for_status()
    try:
        data = response.json()
    except ValueError as exc:
        if response.status_code >= 400:
            response.raise_for_status()
        raise WeComApiError(-1, "answer is not JSON", path=path) from exc
    if not isinstance(data, dict):
        raise WeComApiError(-1, "answer is not a JSON object", path=path)
    code = int(data.get("errcode") or 0)
    if code:
        error = WeComApiError(code, str(data.get("errmsg", ""))[:300], path=path)
        error.data = data
        raise error
    return data


def _file_name(headers: httpx.Headers) -> str | None:
    """The name in ``Content-disposition: attachment; filename="…"`` (maybe RFC 5987)."""
    value = headers.get("content-disposition", "")
    for part in value.split(";"):
        name, _, raw = part.strip().partition("=")
        if name.lower() == "filename*" and "''" in raw:
            return unquote(raw.split("''", 1)[1]) or None
        if name.lower() == "filename":
            return raw.strip('"') or None
    return None
