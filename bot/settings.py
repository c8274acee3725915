"""One settings class: everything configurable comes from the environment (or a .env file)."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DUTYBOT_", env_file=".env", extra="ignore")

    database_url: str = Field(
        default="sqlite:///dutybot.db",
        validation_alias=AliasChoices("DATABASE_URL", "DUTYBOT_DATABASE_URL"),
    )
    lang: str = "zh-CN"
    # how far ahead occurrences exist as rows
    horizon_days: int = Field(default=62, ge=7)
    tick_seconds: float = Field(default=5.0, gt=0)
    telegram_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("TELEGRAM_TOKEN", "DUTYBOT_TELEGRAM_TOKEN")
    )
    telegram_base_url: str = "https://api.telegram.org/bot"
    evidence_dir: str | None = None

    # ---- Telegram frontend (bot.adapters.telegram_app) ----
    # polling needs nothing public; webhook needs telegram_webhook_url reachable by Telegram
    telegram_mode: Literal["polling", "webhook"] = "polling"
    # self-hosted Bot API servers serve files beside the API (default: derived from base URL)
    telegram_base_file_url: str | None = None
    # a self-hosted Bot API server started with --local (files are read from its disk)
    telegram_local_mode: bool = False
    telegram_connect_timeout: float = Field(default=5.0, gt=0)
    telegram_read_timeout: float = Field(default=10.0, gt=0)
    telegram_write_timeout: float = Field(default=10.0, gt=0)
    telegram_pool_timeout: float = Field(default=2.0, gt=0)
    telegram_poll_timeout: float = Field(default=30.0, ge=0)  # long-poll wait (getUpdates)
    telegram_poll_interval: float = Field(default=0.0, ge=0)
    # the public HTTPS URL Telegram posts updates to, e.g. https://bot.example.cn/telegram
    telegram_webhook_url: str | None = None
    telegram_webhook_listen: str = "127.0.0.1"  # usually behind a reverse proxy
    telegram_webhook_port: int = Field(default=8443, ge=0, le=65535)
    # sent back by Telegram in X-Telegram-Bot-Api-Secret-Token; derived from the token if unset
    telegram_webhook_secret: SecretStr | None = None
    # for invite links; asked of getMe when unset
    telegram_bot_username: str | None = None
    # signs callback_data (HMAC); derived from the bot token when unset
    callback_secret: SecretStr | None = None
    invite_ttl_hours: float = Field(default=72.0, gt=0)
    # how long a half-finished chat flow (done → evidence, extension → date) waits
    conversation_ttl_hours: float = Field(default=24.0, gt=0)
    evidence_max_bytes: int = Field(default=20 * 1024 * 1024, gt=0)  # Bot API download limit

    # ---- WeCom / 企业微信 self-built app (bot.adapters.wecom); secrets are never logged ----
    wecom_corp_id: str | None = None  # 企业ID (我的企业 → 企业信息)
    wecom_agent_id: int | None = None  # the app's AgentId
    wecom_secret: SecretStr | None = None  # the app's Secret
    wecom_token: SecretStr | None = None  # 接收消息 → 设置API接收: Token
    wecom_aes_key: SecretStr | None = None  # 接收消息 → 设置API接收: EncodingAESKey (43 chars)
    # 政务微信 and private deployments serve the same API from their own host
    wecom_api_base: str = "https://qyapi.weixin.qq.com"
    wecom_callback_path: str = "/wecom/callback"
    # host:port where dutybot run serves the callback URL itself (behind a reverse proxy);
    # unset when the web app (bot.web) mounts it
    wecom_listen: str | None = None
    # the corp's 账号上限数: the app may send to at most 200 × this many people a day
    wecom_account_limit: int = Field(default=200, gt=0)
    wecom_timeout: float = Field(default=10.0, gt=0)  # seconds per API request
    # callbacks whose timestamp is further than this from now are refused (replays)
    wecom_replay_window_seconds: int = Field(default=300, ge=30)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
