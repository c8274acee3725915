"""One settings class: everything configurable comes from the environment (or a .env file)."""

from __future__ import annotations

from functools import lru_cache

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


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
