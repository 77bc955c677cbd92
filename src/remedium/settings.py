"""The one settings class. Every knob is an environment variable ``REMEDIUM_*``."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """remedium's configuration, read from the environment (prefix ``REMEDIUM_``)."""

    model_config = SettingsConfigDict(env_prefix="REMEDIUM_", extra="ignore")

    database_url: str = Field(
        default_factory=lambda: f"sqlite:///{Path.cwd() / 'remedium.db'}",
        description="SQLAlchemy URL; default is a SQLite file in the working folder.",
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8000, validation_alias="PORT")
    secret_key: str = Field(
        default="",
        description="Signs session cookies. Generated and stored beside the database when empty.",
    )
    inactive_after_days: int = 30
    completed_activity_retention_days: int = 180
    exception_expiry_warning_days: int = 10
    exceptions_require_approval: bool = Field(
        default=False,
        description="A second user with the exceptions right must approve an exception first.",
    )
    exception_resurface_impact_margin: float = Field(
        default=0.2,
        description="Relative growth of exposure impact (0.2 = +20%) that voids an exception.",
    )
    max_devices_per_ticket: int = 10_000
    import_parser_process_mb: float = Field(
        default=16.0,
        description="Reports of at least this many MB are parsed in a second process, beside "
        "the one writing them (two cores); smaller ones in the importing process.",
    )
    secure_cookies: bool = False
    log_sql: bool = False
    public_url: str = Field(
        default="",
        description="The address people open remedium at (e.g. https://remedium.example.org); "
        "ticket texts link to it. Empty: http://HOST:PORT.",
    )

    @field_validator("database_url")
    @classmethod
    def _normalise_postgres(cls, value: str) -> str:
        # Users paste libpq-style URLs; psycopg 3 is the only PostgreSQL driver we ship.
        if value.startswith("postgres://"):
            value = "postgresql://" + value.removeprefix("postgres://")
        if value.startswith("postgresql://"):
            value = "postgresql+psycopg://" + value.removeprefix("postgresql://")
        return value

    @property
    def base_url(self) -> str:
        """The absolute address of remedium, without a trailing slash (links in tickets)."""
        return self.public_url.rstrip("/") or f"http://{self.host}:{self.port}"

    @property
    def database_kind(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return "postgresql" if self.database_url.startswith("postgresql") else "sqlite"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
