"""The one settings class. Every knob is an environment variable ``REMEDIUM_*``.

Read as pydantic-settings' ``BaseSettings`` read it (names matched ignoring case, a field with a
``validation_alias`` read from that variable alone, values validated as pydantic validates
text, defaults validated too), by :meth:`Settings.from_environment`: importing pydantic-settings
(its every source: dotenv, cloud secret stores, command-line parsing) cost each command about
0.04 s of CPU at start-up, for a dozen scalars (docs/imports.md, "Start-up").
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

ENV_PREFIX = "REMEDIUM_"


class _SettingsConfig(ConfigDict, total=False):
    env_prefix: str  # where the variables' names start (read by tests/docs as well)


class Settings(BaseModel):
    """remedium's configuration, read from the environment (prefix ``REMEDIUM_``)."""

    model_config = _SettingsConfig(env_prefix=ENV_PREFIX, extra="ignore", validate_default=True)

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
    secure_cookies: bool = Field(
        default=False,
        description="The site is served over HTTPS: every cookie gets the Secure attribute.",
    )
    trusted_proxies: str = Field(
        default="",
        description="Comma-separated addresses (or networks) of reverse proxies whose "
        "X-Forwarded-For/-Proto are believed; empty (the default) trusts none, so the client "
        "address is always the TCP peer.",
    )
    max_upload_mb: float = Field(
        default=512.0, gt=0, description="Largest uploaded report (API and import page), in MB."
    )
    max_decompressed_mb: float = Field(
        default=2048.0,
        gt=0,
        description="Largest decompressed size of a zip or gzip report, in MB.",
    )
    max_compression_ratio: float = Field(
        default=200.0,
        gt=1,
        description="Largest ratio of decompressed to compressed size of a report (zip bombs).",
    )
    max_field_mb: float = Field(
        default=8.0,
        gt=0,
        description="Largest single text field (XML element or attribute, JSON string, CSV "
        "cell) while a report is parsed, in MB.",
    )
    # --- background work and scale-out (docs/deployment.md) ---
    database_read_url: str = Field(
        default="",
        description="Optional PostgreSQL streaming standby: page and API reads (GET) go there, "
        "writes and the next reads of whoever just wrote go to database_url.",
    )
    read_your_writes_seconds: float = Field(
        default=10.0,
        gt=0,
        le=3600,
        description="After a write, that client reads from the primary this long (longer than "
        "the standby's replication lag).",
    )
    max_concurrent_reads: int = Field(
        default=1,
        ge=0,
        le=1000,
        description="Page and API reads (GET) run at once per server process; the others wait "
        "their turn (0: no limit). Writes are not counted (api/read_limit.py).",
    )
    outbox_every_seconds: float = Field(default=5.0, gt=0, le=3600)
    outbox_lease_seconds: float = Field(
        default=120.0,
        gt=0,
        le=86400,
        description="How long a worker holds a ticket it delivers; longer than the connector's "
        "calls can take, shorter than you are willing to wait after a worker is killed.",
    )
    outbox_backoff_seconds: float = Field(
        default=30.0, gt=0, le=3600, description="First retry delay; it doubles, capped at 1 h."
    )
    jobs_every_seconds: float = Field(default=3600.0, gt=0, le=7 * 86400)
    job_lease_seconds: float = Field(default=900.0, gt=0, le=86400)
    defender_rate_limit_per_minute: int = Field(
        default=0,
        ge=0,
        le=1_000_000,
        description="Requests per minute each token (or user) may make to the Defender-"
        "compatible API (/api/...), counted in the database across processes; 0 = no limit.",
    )
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

    @field_validator("database_read_url")
    @classmethod
    def _normalise_read_url(cls, value: str) -> str:
        return cls._normalise_postgres(value) if value else value

    @property
    def trusted_proxy_list(self) -> list[str]:
        """:attr:`trusted_proxies` as a list (empty: trust no proxy)."""
        return [item.strip() for item in self.trusted_proxies.split(",") if item.strip()]

    @property
    def base_url(self) -> str:
        """The absolute address of remedium, without a trailing slash (links in tickets)."""
        return self.public_url.rstrip("/") or f"http://{self.host}:{self.port}"

    @property
    def database_kind(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return "postgresql" if self.database_url.startswith("postgresql") else "sqlite"

    @classmethod
    def from_environment(cls) -> Settings:
        """The settings the environment gives (``REMEDIUM_*``, ``PORT``), defaults elsewhere."""
        environ = {key.lower(): value for key, value in os.environ.items()}
        given: dict[str, Any] = {}
        for name, field in cls.model_fields.items():
            key = field.validation_alias if isinstance(field.validation_alias, str) else name
            variable = key if isinstance(field.validation_alias, str) else ENV_PREFIX + name
            if variable.lower() in environ:
                given[key] = environ[variable.lower()]
        return cls.model_validate(given)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings.from_environment()
