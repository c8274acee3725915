"""One settings class: everything configurable comes from the environment (or a .env file)."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.texts import LANGS

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
# errors name the variable; the CLI words them from message_templates/<lang>/cli.j2


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
    # (its path is a route of the web app: `dutybot web` or `dutybot run --web` serves it)
    telegram_webhook_url: str | None = None
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
    log_level: str = "INFO"
    log_format: Literal["auto", "json", "text"] = "auto"  # auto: JSON unless stderr is a terminal

    # ---- DingTalk (bot.adapters.dingtalk): an enterprise internal app with a robot, Stream mode.
    # Every host is configuration: private deployments (专有钉钉, 浙政钉, 渝快政) use their own.
    dingtalk_client_id: str | None = None  # the app's Client ID (AppKey)
    dingtalk_client_secret: SecretStr | None = None  # the app's Client Secret (AppSecret)
    dingtalk_robot_code: str | None = None  # the robot's code; the Client ID when unset
    dingtalk_api_base: str = "https://api.dingtalk.com"  # new-style OpenAPI (v1.0/...)
    dingtalk_oapi_base: str = "https://oapi.dingtalk.com"  # old-style OpenAPI (topapi/...)
    # the Stream gateway's "open connection" endpoint (the SDK's OPEN_CONNECTION_API)
    dingtalk_stream_base: str = "https://api.dingtalk.com"
    dingtalk_timeout: float = Field(default=10.0, gt=0)  # seconds per OpenAPI request

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

    # ---- web console and HTTP endpoints (bot.web) ----
    web_host: str = "127.0.0.1"  # usually behind a reverse proxy
    web_port: int = Field(default=8080, ge=0, le=65535)
    # the public base URL people open (links in chat, sign-in links, calendar feeds)
    web_url: str = "http://127.0.0.1:8080"
    # signs session cookies; derived from the callback secret or bot token when unset
    web_secret: SecretStr | None = None
    web_session_hours: float = Field(default=12.0, gt=0)
    web_signin_minutes: float = Field(default=15.0, gt=0)
    web_max_upload_bytes: int = Field(default=20 * 1024 * 1024, gt=0)

    @field_validator("lang")
    @classmethod
    def _known_lang(cls, value: str) -> str:
        """An unknown language is a mistake to report, not a reason to fall back silently."""
        if value not in LANGS:
            raise PydanticCustomError("unknown_lang", "unknown language", {"expected": LANGS})
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        if value.upper() not in LOG_LEVELS:
            raise PydanticCustomError("log_level", "unknown level", {"expected": LOG_LEVELS})
        return value.upper()

    @field_validator("database_url")
    @classmethod
    def _usable_database(cls, value: str) -> str:
        # SQLAlchemy URLs are ``dialect[+driver]://…``; read the dialect by hand rather than with
        # sqlalchemy's make_url, whose import costs most of a second on every CLI start.
        scheme, sep, _ = value.partition("://")
        backend = scheme.split("+", 1)[0].lower() if sep else None
        if backend not in ("sqlite", "postgresql"):
            raise PydanticCustomError("database_url", "not a usable database URL")
        return value

    @model_validator(mode="after")
    def _webhook_needs_url(self) -> Settings:
        if self.telegram_mode == "webhook":
            url = self.telegram_webhook_url or ""
            if not url:
                raise PydanticCustomError(
                    "webhook_url_missing", "missing", {"var": "DUTYBOT_TELEGRAM_WEBHOOK_URL"}
                )
            if not url.startswith("https://"):
                raise PydanticCustomError(
                    "webhook_url_not_https",
                    "not https",
                    {"var": "DUTYBOT_TELEGRAM_WEBHOOK_URL", "input": url},
                )
        return self


SECRET_FIELDS = (
    "telegram_token",
    "telegram_webhook_secret",
    "callback_secret",
    "dingtalk_client_secret",
    "wecom_secret",
    "wecom_token",
    "wecom_aes_key",
    "web_secret",
)


def env_name(field: str) -> str:
    """The environment variable that sets a field (its first alias, else DUTYBOT_<NAME>)."""
    info = Settings.model_fields.get(field)
    alias = info.validation_alias if info else None
    if isinstance(alias, AliasChoices) and alias.choices:
        return str(alias.choices[0])
    return f"DUTYBOT_{field.upper()}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def field_of(loc: str) -> str:
    """The field an error location names: errors on aliased fields carry the alias."""
    for name, info in Settings.model_fields.items():
        alias = info.validation_alias
        if isinstance(alias, AliasChoices) and loc in alias.choices:
            return name
    return loc
