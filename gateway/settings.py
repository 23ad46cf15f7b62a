"""Gateway settings, read from the environment (prefix ``GATEWAY_``) by pydantic-settings."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SQLITE_PATH = Path("var") / "gateway.sqlite3"


class SettingsError(Exception):
    """Raised when the environment holds a setting the gateway cannot start with."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore", frozen=True)

    env: Literal["development", "production"] = "development"
    database_url: str = f"sqlite:///{DEFAULT_SQLITE_PATH}"
    database_pool_size: int = Field(10, ge=1, le=200)
    public_url: str | None = None
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["auto", "json", "console"] = "auto"

    max_candidates: int = Field(100, ge=1, le=10_000)
    max_notes_length: int = Field(2000, ge=0, le=1_000_000)
    max_body_bytes: int = Field(64 * 1024, ge=1024)

    key_cache_seconds: float = Field(5.0, ge=0)
    key_last_used_interval_seconds: float = Field(60.0, ge=0)

    idempotency_ttl_hours: float = Field(24.0, gt=0)

    rate_limit_per_hour: int = Field(1000, ge=0)
    rate_limit_burst: int = Field(50, ge=1)
    rate_limit_fail_closed: bool = False
    redis_url: str | None = None
    redis_namespace: str = Field("gateway", pattern=r"^[A-Za-z0-9_.:-]{1,64}$")

    graphql_introspection: bool | None = None
    graphiql: bool | None = None
    graphiql_assets: Literal["auto", "self-hosted", "cdn"] = "auto"
    graphiql_assets_dir: Path = Path("var") / "graphiql"
    graphql_max_depth: int = Field(6, ge=1)
    graphql_max_tokens: int = Field(2000, ge=10)
    graphql_max_aliases: int = Field(15, ge=1)
    graphql_cache_size: int = Field(256, ge=1)

    cors_origins: list[str] = Field(default_factory=list)
    metrics_token: str | None = None

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, url: str) -> str:
        if not url.startswith(("sqlite", "postgresql", "postgres")):
            raise ValueError("must be a sqlite:/// or postgresql:// SQLAlchemy URL")
        return url

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def introspection_enabled(self) -> bool:
        return (
            self.graphql_introspection
            if self.graphql_introspection is not None
            else (not self.is_production)
        )

    @property
    def graphiql_enabled(self) -> bool:
        return self.graphiql if self.graphiql is not None else not self.is_production

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment, turning validation errors into one clear message."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = "GATEWAY_" + "_".join(str(part) for part in error["loc"]).upper()
            problems.append(f"{name}: {error['msg']}")
        raise SettingsError("invalid settings: " + "; ".join(problems)) from None
