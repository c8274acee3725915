"""Finding a person's DingTalk account without an invite: the userid the schedule declares
(``people: {张敏: {dingtalk: <userid>}}``), else their mobile number looked up in the
organisation's directory (``topapi/v2/user/getbymobile``; the app needs the 通讯录
个人信息读权限 / 成员信息读权限 permissions).  Used by ``dutybot bindings --resolve``."""

from __future__ import annotations

from typing import Any

from bot.adapters.dingtalk.openapi import OpenApi
from bot.store.models import Person


class Directory:
    """A :data:`bot.bindings.Resolve` for DingTalk; ``aclose`` releases its connections."""

    def __init__(self, api: OpenApi) -> None:
        self.api = api

    async def __call__(self, person: Person) -> str | None:
        accounts: dict[str, Any] = person.accounts or {}
        declared = accounts.get("dingtalk")
        if declared:
            return str(declared)
        mobile = accounts.get("mobile")
        if mobile:
            return await self.api.user_by_mobile(str(mobile))
        return None

    async def aclose(self) -> None:
        await self.api.close()
