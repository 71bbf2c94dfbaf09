"""Base settings every service extends with its own env prefix."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """Fields every service has. Subclasses set ``env_prefix`` (e.g. ``GATEWAY_``).

    Instances are built only in ``__main__`` (or by tests), never at import time.
    """

    model_config = SettingsConfigDict(
        env_nested_delimiter="__", extra="ignore", validate_default=True
    )

    log_level: str = Field(default="INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR|CRITICAL)$")
    log_json: bool = True
    host: str = "127.0.0.1"
