"""PTB's HTTP transport for the send side, on aiohttp instead of httpx.

python-telegram-bot lets any asyncio HTTP library carry its requests (``telegram.request.
BaseRequest``: PTB builds the request and maps every answer to its errors, the transport only
moves bytes).  Its default, ``HTTPXRequest``, cost about 0.7 ms of CPU per sendMessage with 8
connections and over 3 ms with 40 on this project's 2-core host (httpcore's pool; encode/httpx
#3215): the HTTP client, not the dispatcher, capped sending at a few hundred messages a second.
aiohttp moves the same request for about 0.1 ms (bench/http_ceiling.py).

Semantics kept from HTTPXRequest: form-encoded parameters (multipart when a file is sent); the
pool, connect and read timeouts (aiohttp has no write timeout: an upload gets the longer media
timeout for its answer instead); every timeout raised as ``TimedOut``, every other transport
failure as ``NetworkError``; proxies from the environment (``HTTPS_PROXY``), as httpx reads
them.  Each request is logged at DEBUG on a logger whose records are redacted (the token is in
the URL).
"""

from __future__ import annotations

import logging
from urllib.parse import urlencode, urlsplit
from urllib.request import getproxies, proxy_bypass

import aiohttp
from telegram._utils.defaultvalue import DefaultValue
from telegram._utils.types import ODVInput
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

__all__ = ["LOGGER_NAME", "AiohttpRequest"]

LOGGER_NAME = "dutybot.telegram.http"
_LOG = logging.getLogger(LOGGER_NAME)
_FORM = {"Content-Type": "application/x-www-form-urlencoded"}
# An idle keep-alive connection is closed by us after this long, before the server's own idle
# timeout can close it just as a request goes out on it: that request then fails at once
# (ServerDisconnectedError) and waits for the dispatcher's first retry, 30 s later.  bench/
# burst.py met it: the pool opened at start sat idle until the 08:30 burst, as long as the
# fake server's idle timeout (10 s).  nginx-fronted APIs close idle connections after 5-75 s.
KEEPALIVE_SECONDS = 4.0


class AiohttpRequest(BaseRequest):
    """One aiohttp session with a pool of ``connection_pool_size`` keep-alive connections."""

    def __init__(
        self,
        *,
        connection_pool_size: int = 64,
        connect_timeout: float | None = 5.0,
        read_timeout: float | None = 5.0,
        write_timeout: float | None = 5.0,
        pool_timeout: float | None = 1.0,
        media_write_timeout: float | None = 20.0,
        keepalive_timeout: float = KEEPALIVE_SECONDS,
    ) -> None:
        self._pool_size = connection_pool_size
        self._keepalive = keepalive_timeout
        self._timeouts = (connect_timeout, read_timeout, write_timeout, pool_timeout)
        self._media_write_timeout = media_write_timeout
        self._session: aiohttp.ClientSession | None = None
        self._proxies: dict[tuple[str, str], str | None] = {}

    @property
    def read_timeout(self) -> float | None:
        return self._timeouts[1]

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._pool_size,
                limit_per_host=self._pool_size,
                ttl_dns_cache=300,
                keepalive_timeout=self._keepalive,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                headers={"User-Agent": self.USER_AGENT},
                raise_for_status=False,
                # not trust_env: aiohttp would then read .netrc and the proxy variables in a
                # thread on every request; the proxy is looked up once per host instead
                trust_env=False,
            )

    def _proxy(self, url: str) -> str | None:
        """The proxy the environment names for this URL (HTTPS_PROXY, ALL_PROXY; NO_PROXY
        honoured), as httpx would use it; read once per scheme and host."""
        parts = urlsplit(url)
        key = (parts.scheme, parts.hostname or "")
        if key not in self._proxies:
            found = getproxies()
            bypass = not parts.hostname or proxy_bypass(parts.hostname)
            self._proxies[key] = None if bypass else found.get(parts.scheme) or found.get("all")
        return self._proxies[key]

    async def shutdown(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        """See ``BaseRequest.do_request``: (status, body), or TimedOut / NetworkError."""
        if self._session is None or self._session.closed:
            raise RuntimeError("This AiohttpRequest is not initialized!")
        default_connect, default_read, _write, default_pool = self._timeouts
        files = request_data.multipart_data if request_data else None
        params = request_data.json_parameters if request_data else {}
        connect = default_connect if isinstance(connect_timeout, DefaultValue) else connect_timeout
        read = default_read if isinstance(read_timeout, DefaultValue) else read_timeout
        pool = default_pool if isinstance(pool_timeout, DefaultValue) else pool_timeout
        if files and isinstance(read_timeout, DefaultValue):  # an upload: the media timeout
            read = max(read or 0, self._media_write_timeout or 0) or None
        timeout = aiohttp.ClientTimeout(
            total=None,
            connect=None if pool is None and connect is None else (pool or 0) + (connect or 0),
            sock_connect=connect,
            sock_read=read,
        )
        # encoded here: a dict would go through aiohttp.FormData, whose multipart writer draws
        # a uuid4 boundary per request even for a urlencoded body (a getrandom call each)
        data: aiohttp.FormData | bytes = urlencode(params).encode()
        headers = _FORM
        if files:
            headers = None
            form = aiohttp.FormData()
            for name, value in params.items():
                form.add_field(name, value)
            for name, part in files.items():
                filename, content, *mime = part
                form.add_field(
                    name, content, filename=filename, content_type=mime[0] if mime else None
                )
            data = form
        try:
            async with self._session.request(
                method, url, data=data, headers=headers, timeout=timeout, proxy=self._proxy(url)
            ) as response:
                body = await response.read()
                status = response.status
        except TimeoutError as err:  # aiohttp's timeouts (pool, connect, read) are all these
            raise TimedOut from err
        except aiohttp.ClientError as err:
            raise NetworkError(f"aiohttp.{err.__class__.__name__}: {err}") from err
        _LOG.debug("HTTP Request: %s %s %d", method, url, status)
        return status, body
