"""Settings for the annotation service (env prefix ``ANNOTATION_``)."""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import SettingsConfigDict

from fashionrec_common.settings import ServiceSettings


class AnnotationSettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="ANNOTATION_", env_nested_delimiter="__", extra="ignore", validate_default=True
    )

    database_url: str = Field(
        default="sqlite:///var/annotation.db",
        validation_alias=AliasChoices("ANNOTATION_DATABASE_URL", "DATABASE_URL", "database_url"),
    )
    # Shared with the gateway (GATEWAY_VOTE_TOKEN_SECRET). Required to serve; the
    # add-annotator CLI does not need it, so the check happens in create_app.
    vote_token_secret: SecretStr | None = None
    vote_token_max_age_s: int = Field(default=24 * 3600, gt=0)
    admin_key: SecretStr | None = None
    gateway_public_url: str = "http://127.0.0.1:8080"
    port: int = Field(default=8090, ge=0, le=65535)
    migrate_on_start: bool = True
