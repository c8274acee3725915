"""DingTalk's OpenAPI over httpx: the access token, 1:1 robot messages, file downloads, and the
directory (user by mobile) -- with every failure mapped onto one :class:`DeliveryError`.

Hand-written rather than the ``alibabacloud-dingtalk`` SDK: that SDK is synchronous (it would
block the event loop the sender and the Stream client share), pulls in the Tea runtime, and
hides HTTP statuses that the error mapping below needs.  The endpoints are few and small.

Documented behaviour this module relies on (pages quoted in the comments):

- token: ``POST {api}/v1.0/oauth2/accessToken`` ``{appKey, appSecret}`` → ``{accessToken,
  expireIn}`` (7,200 s); cached and renewed :data:`TOKEN_MARGIN` before it expires -- the
  official Stream SDK keeps the same 5-minute margin (dingtalk_stream/stream.py) -- and renewed
  once when an API says the token is no longer valid.
- 1:1 robot messages: ``POST {api}/v1.0/robot/oToMessages/batchSend`` ``{robotCode, userIds
  (≤ 20), msgKey, msgParam}`` → ``{processQueryKey, invalidStaffIdList,
  flowControlledStaffIdList}``: a user who left the organisation or is outside the app's
  visible range comes back in ``invalidStaffIdList`` with HTTP 200, a user sent to too often
  in ``flowControlledStaffIdList``
  (https://help.dingtalk.io/zh/open/development/chatbots-send-one-on-one-chat-messages-in-batches).
- files a person sent the robot: ``POST {api}/v1.0/robot/messageFiles/download``
  ``{downloadCode, robotCode}`` → ``{downloadUrl}``, a temporary link fetched at once
  (https://help.dingtalk.io/zh/open/development/download-the-file-content-of-the-robot-receiving-message).
- rate limits: a limit hit answers HTTP 429 / a throttling code; the IP dimension bans for
  five minutes and answers an HTML page or ``{"status": 1111, "wait": 5, ...}`` instead of an
  error code; the monthly call quota of the organisation answers ``90020`` /
  ``Forbidden.AccessDenied.ApiCountLimitForOrg``
  (https://help.dingtalk.io/open/development/call-frequency-limit,
  http://www.dingtalk.com/qidian/help-detail-1061621972.html).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Mapping
from typing import Any

import httpx

from bot.adapters.base import DeliveryError

log = logging.getLogger("dutybot.dingtalk")

TOKEN_MARGIN = 300.0  # seconds before expiry when a token is renewed
MAX_USERS_PER_SEND = 20  # batchSend takes at most 20 userIds
# The organisation's monthly quota is spent: nothing goes out until an admin buys more or the
# month turns; an hour between probes keeps the log readable and the quota untouched.
QUOTA_WAIT = 3600.0
IP_BAN_WAIT = 300.0  # the IP dimension bans for five minutes
THROTTLED_WAIT = 1.0  # a QPS limit is a per-second window
USER_THROTTLED_WAIT = 60.0  # flowControlledStaffIdList: this user was sent to too often

# Codes that mean "the token is wrong or expired": renew it once and try again.
_TOKEN_CODES = frozenset(
    {
        "InvalidAuthentication",
        "invalidAuthentication",
        "Forbidden.AccessDenied.AccessTokenPermissionDenied",
        "40014",  # old API: 不合法的 access_token
        "42001",  # old API: access_token 超时
        "41001",  # old API: 缺少 access_token
    }
)
# Codes that mean "too fast": QPS limits of the new and the old API, robot send limits.
_THROTTLE_CODES = frozenset(
    {
        "Forbidden.AccessDenied.QpsLimitForApi",
        "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi",
        "Throttling",
        "Throttling.Api",
        "send.too.fast",
        "send.byToken.tooFast",
        "90002",  # global dimension: every organisation calling this API
        "90018",
        "90019",
        "88",
    }
)
_QUOTA_CODES = frozenset({"Forbidden.AccessDenied.ApiCountLimitForOrg", "90020"})
# The person, not the message: left the organisation, deleted, outside the visible range.
_GONE_CODES = frozenset({"staffId.notExisted", "60121", "60111", "33012"})


class OpenApi:
    """One app's credentials and connection pool; safe to share by the sender and the receiver.

    The client secret and tokens never appear in a log line or in a DeliveryError reason.
    """

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        robot_code: str,
        api_base: str = "https://api.dingtalk.com",
        oapi_base: str = "https://oapi.dingtalk.com",
        timeout: float = 10.0,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        if not client_id or not client_secret:
            raise ValueError("DingTalk needs DUTYBOT_DINGTALK_CLIENT_ID and …_CLIENT_SECRET")
        self.client_id, self.robot_code = client_id, robot_code or client_id
        self._secret = client_secret
        self.api_base, self.oapi_base = api_base.rstrip("/"), oapi_base.rstrip("/")
        self._http = http or httpx.AsyncClient(
            timeout=httpx.Timeout(timeout), limits=httpx.Limits(max_connections=80)
        )
        self._token: str | None = None
        self._expires = 0.0  # time.monotonic() at which the token is renewed
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"OpenApi(client_id={self.client_id!r}, api_base={self.api_base!r})"

    async def close(self) -> None:
        await self._http.aclose()

    # ---- the token -----------------------------------------------------------------------

    async def token(self, *, renew: bool = False) -> str:
        async with self._lock:
            if renew or self._token is None or time.monotonic() >= self._expires:
                await self._fetch_token()
            assert self._token is not None
            return self._token

    async def _fetch_token(self) -> None:
        url = f"{self.api_base}/v1.0/oauth2/accessToken"
        data = await self._call(
            "POST", url, json={"appKey": self.client_id, "appSecret": self._secret}
        )
        token, expires_in = data.get("accessToken"), data.get("expireIn")
        if not isinstance(token, str) or not token:
            raise DeliveryError("DingTalk token response without accessToken", permanent=False)
        ttl = float(expires_in) if isinstance(expires_in, int | float) else 7200.0
        self._token = token
        self._expires = time.monotonic() + max(ttl - TOKEN_MARGIN, ttl / 2)
        log.info("DingTalk access token renewed (valid %ds)", int(ttl))

    async def _authorised(self, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
        """A call with the token in the header; renewed once when it was refused."""
        for attempt in range(2):
            token = await self.token(renew=attempt > 0)
            headers = {"x-acs-dingtalk-access-token": token}
            try:
                return await self._call(method, url, headers=headers, **kwargs)
            except _TokenRefused:
                if attempt:
                    raise DeliveryError(
                        "DingTalk refused a freshly issued access token", permanent=False
                    ) from None
        raise AssertionError("unreachable")

    # ---- robot messages ----------------------------------------------------------------------

    async def send_to_user(self, user_id: str, msg_key: str, msg_param: Mapping[str, Any]) -> str:
        """One robot message in the person's 1:1 chat with the robot; its processQueryKey."""
        url = f"{self.api_base}/v1.0/robot/oToMessages/batchSend"
        body = {
            "robotCode": self.robot_code,
            "userIds": [user_id],
            "msgKey": msg_key,
            "msgParam": json.dumps(msg_param, ensure_ascii=False),
        }
        data = await self._authorised("POST", url, json=body)
        if user_id in (data.get("invalidStaffIdList") or []):
            raise DeliveryError(
                "DingTalk: user not in the organisation or outside the app's visible range "
                "(invalidStaffIdList)",
                permanent=True,
                recipient_gone=True,
            )
        if user_id in (data.get("flowControlledStaffIdList") or []):
            raise DeliveryError(
                "DingTalk: this user was sent to too often (flowControlledStaffIdList)",
                permanent=False,
                retry_after=USER_THROTTLED_WAIT,
            )
        key = data.get("processQueryKey")
        if not isinstance(key, str) or not key:
            raise DeliveryError(
                "DingTalk accepted the message without a processQueryKey", permanent=False
            )
        return key

    # ---- files ----------------------------------------------------------------------------------

    async def download(self, download_code: str, *, max_bytes: int) -> bytes:
        """The content of a file or picture a person sent the robot (downloadCode)."""
        url = f"{self.api_base}/v1.0/robot/messageFiles/download"
        data = await self._authorised(
            "POST", url, json={"downloadCode": download_code, "robotCode": self.robot_code}
        )
        link = data.get("downloadUrl")
        if not isinstance(link, str) or not link.startswith(("http://", "https://")):
            raise DeliveryError("DingTalk gave no download link", permanent=True)
        chunks: list[bytes] = []
        size = 0
        async with self._http.stream("GET", link) as response:
            if response.status_code != 200:
                raise DeliveryError(f"download HTTP {response.status_code}", permanent=False)
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > max_bytes:  # refused early: a file is not read past the limit
                    raise DeliveryError(f"file larger than {max_bytes} bytes", permanent=True)
                chunks.append(chunk)
        return b"".join(chunks)

    # ---- directory ------------------------------------------------------------------------------

    async def user_by_mobile(self, mobile: str) -> str | None:
        """The userid of the organisation's member with this mobile number, or None.

        ``POST {oapi}/topapi/v2/user/getbymobile?access_token=…`` ``{mobile}`` →
        ``{errcode: 0, result: {userid}}``; 60121 "找不到该用户" when nobody has it."""
        url = f"{self.oapi_base}/topapi/v2/user/getbymobile"
        for attempt in range(2):
            token = await self.token(renew=attempt > 0)
            try:
                data = await self._call(
                    "POST", url, params={"access_token": token}, json={"mobile": mobile}
                )
            except _TokenRefused:
                continue
            except DeliveryError as exc:
                if exc.recipient_gone:
                    return None
                raise
            result = data.get("result") or {}
            userid = result.get("userid") if isinstance(result, dict) else None
            return str(userid) if userid else None
        raise DeliveryError("DingTalk refused a freshly issued access token", permanent=False)

    # ---- one request, its failures mapped --------------------------------------------------------

    async def _call(self, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = await self._http.request(method, url, **kwargs)
        except httpx.TimeoutException as exc:
            # the request may have reached DingTalk: a retry may repeat the message
            raise DeliveryError(
                f"DingTalk timed out ({type(exc).__name__})", permanent=False, timed_out=True
            ) from exc
        except httpx.HTTPError as exc:
            raise DeliveryError(
                f"DingTalk unreachable ({type(exc).__name__})", permanent=False
            ) from exc
        return _answer(response)


class _TokenRefused(Exception):
    """The access token was refused: renew it and try once more."""


def _answer(response: httpx.Response) -> dict[str, Any]:
    """The JSON of a successful answer; anything else as the DeliveryError it means."""
    status = response.status_code
    try:
        data = response.json()
    except ValueError:
        data = None
    if not isinstance(data, dict):
        if status in (403, 429) or status == 200:  # the IP ban answers an HTML page
            raise DeliveryError(
                f"DingTalk rate limit (HTTP {status}, not JSON): IP dimension ban",
                permanent=False,
                retry_after=IP_BAN_WAIT,
            )
        raise DeliveryError(f"DingTalk HTTP {status} (not JSON)", permanent=status < 500)
    code = _code(data)
    if data.get("status") == 1111 and "wait" in data:  # the IP ban's own JSON
        wait = data.get("wait")
        minutes = float(wait) if isinstance(wait, int | float) else 5.0
        raise DeliveryError("DingTalk IP rate limit ban", permanent=False, retry_after=minutes * 60)
    if status == 200 and code in ("", "0"):
        return data
    message = str(data.get("message") or data.get("errmsg") or "")[:200]
    reason = f"DingTalk HTTP {status} {code}: {message}".strip()
    if code in _TOKEN_CODES or status == 401:
        raise _TokenRefused(reason)
    if code in _QUOTA_CODES:
        log.error("DingTalk: the organisation's monthly API quota is spent (%s)", code)
        raise DeliveryError(reason, permanent=False, retry_after=QUOTA_WAIT)
    if code in _THROTTLE_CODES or status == 429 or "qpslimit" in code.lower():
        wait = _retry_after(response)
        raise DeliveryError(reason, permanent=False, retry_after=wait)
    if code in _GONE_CODES:
        raise DeliveryError(reason, permanent=True, recipient_gone=True)
    if status >= 500 or code in ("-1", "systemError", "ServiceUnavailable"):
        raise DeliveryError(reason, permanent=False)
    # a 4xx with any other code: our request is wrong (a template, a parameter) -- not the person
    raise DeliveryError(reason, permanent=True)


def _code(data: dict[str, Any]) -> str:
    """The error code of either API: ``code`` (new, a string) or ``errcode`` (old, a number)."""
    if "code" in data and data["code"] not in (None, ""):
        return str(data["code"])
    if "errcode" in data:
        return str(data["errcode"])
    return ""


def _retry_after(response: httpx.Response) -> float:
    header = response.headers.get("retry-after", "")
    try:
        return max(float(header), THROTTLED_WAIT)
    except ValueError:
        return THROTTLED_WAIT
