"""All configuration, read once from the environment (SPEC §2).

Every field maps to one environment variable: ``STUDIO_<FIELD>`` except ``DATABASE_URL``.
`load_settings` turns pydantic's validation errors into a `SettingsError` that names the
variable, so that a typo in a deployment is reported as ``STUDIO_ENV: …`` and not as a trace.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import replace
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Self
from urllib.parse import urlsplit

import platformdirs
from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from db.url import DatabaseURL, parse_database_url

ENV_PREFIX = "STUDIO_"

#: Signs development tokens when no key is configured. Production refuses to start with it.
DEVELOPMENT_SECRET_KEY = "studio-development-secret-key-change-me"  # noqa: S105 (refused in production)


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


class DbPooler(StrEnum):
    """What sits between the studio and PostgreSQL on ``DATABASE_URL``."""

    #: A transaction pooler when the URL says so (``pgbouncer=true``, a provider's pooler host)
    #: or when ``DATABASE_DIRECT_URL`` names another server or port.
    AUTO = "auto"
    #: PgBouncer (or a hosted pooler) in ``pool_mode = transaction``.
    TRANSACTION = "transaction"
    #: A direct connection, or a pooler in session mode.
    NONE = "none"


class LogFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


class LogLevel(StrEnum):
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"


class SettingsError(ValueError):
    """A configuration value is missing or wrong; the message names the variable."""


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("studio-api", appauthor=False))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        case_sensitive=False,
        extra="ignore",
        frozen=True,
    )

    # --- database ---------------------------------------------------------------------------
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "database_url")
    )
    #: The unpooled URL, for what holds session state (LISTEN, migrations): hosts hand it out
    #: next to the pooled one. Default: ``DATABASE_URL``.
    database_direct_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_DIRECT_URL", "database_direct_url")
    )
    db_pooler: DbPooler = DbPooler.AUTO
    #: A fixed-size pool by default: SQLAlchemy closes an overflow connection as soon as it is
    #: given back while the pool is full, so under load past the pool's size every request
    #: opened (and closed) a connection of its own. Past 20 statements at once, requests wait
    #: for a connection (``db_pool_timeout``) instead.
    db_pool_size: int = Field(default=20, ge=1, le=200)
    db_max_overflow: int = Field(default=0, ge=0, le=200)
    db_pool_timeout: float = Field(default=30.0, gt=0)
    db_pool_recycle: int = Field(default=1800, ge=-1)
    #: Test a pooled connection before use when it sat idle longer than
    #: ``db_pool_ping_after_idle_seconds`` (0: before every use). A connection in steady use is
    #: not pinged: a dead one is found by its statement failing (`schema.loaders.SessionGate`).
    db_pool_pre_ping: bool = True
    db_pool_ping_after_idle_seconds: float = Field(default=10.0, ge=0)
    db_statement_timeout_ms: int = Field(default=30_000, ge=0)
    sql_echo: bool = False

    # --- process ----------------------------------------------------------------------------
    env: Environment = Environment.DEVELOPMENT
    secret_key: str = DEVELOPMENT_SECRET_KEY
    data_dir: Path = Field(default_factory=default_data_dir)
    media_dir: Path | None = None
    inprocess_worker: bool | None = None
    migrate_on_start: bool | None = None

    # --- job queue and workers (see app/worker/) --------------------------------------------
    worker_lease_seconds: float = Field(default=30, ge=1, le=3600)
    worker_poll_seconds: float = Field(default=5, gt=0, le=300)
    job_max_attempts: int = Field(default=3, ge=1, le=100)
    job_retry_backoff_seconds: float = Field(default=2, ge=0, le=3600)
    #: Test-only: extra time each stage after SCRIPT (VOICE, CAPTIONS, RENDER) takes, so that
    #: tests can interrupt a job mid-stage. 0 in every real deployment.
    pipeline_stage_delay_ms: int = Field(default=0, ge=0, le=600_000)
    #: A Piper voice (``en_US-joe-medium``, from the ``neural`` extra) that narrates the
    #: languages it speaks when a profile names no voice; unset, eSpeak NG narrates
    #: (app/pipeline/narrator.py). Setting it accepts the voice's dataset terms (README).
    neural_voice: str | None = None
    #: Also list the word-highlight WebVTT track (one cue per caption, a timestamp before each
    #: word) among a video's caption tracks; the file is written either way.
    word_captions: bool = False

    # --- auth -------------------------------------------------------------------------------
    token_ttl_seconds: int = Field(default=3600, ge=60, le=7 * 24 * 3600)
    token_issuer: str = "studio-api"  # noqa: S105 (a name, not a secret)
    token_audience: str = "studio-api"  # noqa: S105 (a name, not a secret)

    #: OpenID Connect providers for `signIn`, as JSON: {"google": {"issuer": …, "audience": …,
    #: "jwks_url": …}, …}; see `app.oidc`.
    oauth_providers: Annotated[dict[str, dict[str, Any]], NoDecode] = Field(default_factory=dict)

    # --- media ------------------------------------------------------------------------------
    max_upload_bytes: int = Field(default=10_000_000, ge=1024)
    media_url_ttl_seconds: int = Field(default=3600, ge=60, le=7 * 24 * 3600)
    #: Where clients reach this studio (``https://studio.example.com``, maybe with a path
    #: prefix): the media URLs the API returns are absolute under it. Unset, they are paths.
    public_url: str | None = None

    # --- fetching web pages for URL input (see app/pipeline/fetch.py) -----------------------
    #: Host names or IP addresses (as written in URLs) that may be fetched although they resolve
    #: to refused addresses (loopback, private networks …). Comma-separated; empty by default.
    fetch_allowed_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    fetch_timeout_seconds: float = Field(default=10, gt=0, le=300)
    fetch_max_bytes: int = Field(default=2_000_000, ge=1024)

    # --- a hosted language model as SCRIPT (see app/pipeline/hosted_script.py) --------------
    #: An OpenAI-compatible chat-completions endpoint (``…/v1/chat/completions``); set, it
    #: writes the scripts, and the built-in summariser takes over when it fails.
    script_model_url: str | None = None
    #: Sent as ``Authorization: Bearer …``; only ever read from the environment, never logged.
    script_model_api_key: SecretStr | None = None
    script_model_name: str | None = Field(default=None, max_length=200)
    script_model_timeout_seconds: float = Field(default=60, gt=0, le=600)
    #: How much of the source (page article or description) goes into the request, and the
    #: largest answer read; past it, the answer is refused.
    script_model_max_input_chars: int = Field(default=24_000, ge=1000, le=400_000)
    script_model_max_response_bytes: int = Field(default=262_144, ge=4096, le=16 * 1024 * 1024)

    # --- rendering (see app/pipeline/render.py) ---------------------------------------------
    render_width: int = Field(default=1280, ge=16, le=3840, multiple_of=2)
    render_height: int = Field(default=720, ge=16, le=2160, multiple_of=2)
    render_fps: int = Field(default=25, ge=1, le=60)
    #: A TrueType/OpenType font for the text drawn on the video; fontconfig's "Sans" when unset.
    render_font_file: Path | None = None
    #: Lay a quiet music bed, generated from the video's theme, under the narration.
    render_music: bool = False
    #: Most pictures a URL video takes from its page, and the largest one read (after which
    #: scenes get generated backgrounds).
    render_max_pictures: int = Field(default=6, ge=0, le=20)
    render_picture_max_bytes: int = Field(default=5_000_000, ge=1024, le=50_000_000)

    # --- HTTP and GraphQL limits ------------------------------------------------------------
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    max_body_bytes: int = Field(default=1_000_000, ge=1024)
    #: Largest request head (request line and header fields) `studio serve` reads; 431 beyond.
    max_header_bytes: int = Field(default=16 * 1024, ge=1024, le=1024 * 1024)
    #: Deepest nesting of arrays and objects in any JSON a client sends (`schema.client_json`).
    max_json_depth: int = Field(default=64, ge=2, le=200)
    max_query_depth: int = Field(default=12, ge=2, le=100)
    max_aliases: int = Field(default=30, ge=1, le=1000)
    max_tokens: int = Field(default=5000, ge=100, le=100_000)
    #: Longest document, in characters; a longer one is refused before it is read.
    max_characters: int = Field(default=20_000, ge=1000, le=1_000_000)
    #: Directives per document, a fragment's counted each time it is spread.
    max_directives: int = Field(default=50, ge=1, le=1000)
    #: Highest cost of an operation (README "Limits": 1 a field, connections multiply).
    max_cost: int = Field(default=10_000, ge=100, le=10_000_000)
    graphiql: bool | None = None
    #: ``__schema``/``__type`` (and "Did you mean" hints): unset means on in development only.
    introspection: bool | None = None
    #: Answer a query whose fields all compile with one SQL statement (`schema.compiled`);
    #: false resolves every operation field by field.
    compiled_reads: bool = True
    #: Move what start-up made out of the cyclic garbage collector's passes (`gc.freeze`).
    #: `studio serve` turns it on; an application made many times in one process (tests)
    #: would keep every earlier one's cycles.
    gc_freeze: bool = False
    #: With `gc_freeze`: how many more objects may be alive than at the collector's last pass
    #: before its next youngest pass (Python's default is 700). A 100-video page holds some
    #: 10,000 at once, freed by reference counting when it is sent; at 700 the collector walked
    #: them some 15 times a request, at 10,000 about once, at 50,000 once in a hundred.
    gc_threshold: int = Field(default=50_000, ge=100, le=1_000_000)

    # --- websockets (subscriptions) ---------------------------------------------------------
    max_subscriptions_per_connection: int = Field(default=20, ge=1, le=1000)
    #: Subscribers of the same operation, variables and viewer share one run of it (its
    #: re-reads and its encoded results: `schema.transport.feeds`); false runs each alone.
    shared_subscriptions: bool = True
    #: How long an account seen to exist is believed to, when a token names it
    #: (`app.live_accounts`): its end is announced to every process at once, and this bounds
    #: what a lost announcement (the listener disconnected) lets a deleted account do. 0 looks
    #: the account up for every operation.
    account_check_cache_seconds: float = Field(default=5, ge=0, le=300)
    #: How long a shared subscription's re-read waits for others, so that the rows changed
    #: within it are read again in one statement per type (`schema.change_reads`); 0 batches
    #: only the re-reads that start in the same event-loop turn.
    subscription_reread_window_ms: float = Field(default=2, ge=0, le=1000)
    #: Counted per API process: N processes let a user hold up to N times this many.
    max_connections_per_user: int = Field(default=10, ge=1, le=1000)
    #: A socket that has not sent ``connection_init`` this long after opening is closed (4408).
    ws_connection_init_timeout_seconds: float = Field(default=10, gt=0, le=600)
    #: How often an acknowledged connection is sent a keep-alive message (``ping`` over
    #: graphql-transport-ws, ``ka`` over graphql-ws); 0 sends none.
    ws_keep_alive_seconds: float = Field(default=15, ge=0, le=3600)
    #: Largest message a client may send; a larger one closes the socket (1009). `studio serve`
    #: also gives it to uvicorn, which then refuses such a frame before reading it whole.
    ws_max_message_bytes: int = Field(default=262_144, ge=1024, le=16 * 1024 * 1024)

    # --- rate limits (see app/rate_limit.py) ------------------------------------------------
    #: Per-user and per-client-address buckets, counted in PostgreSQL across every API process.
    rate_limit_enabled: bool = True
    #: Operations of one signed-in user: sustained rate and how many may come at once.
    rate_limit_operations_per_minute: float = Field(default=300, gt=0, le=1_000_000)
    rate_limit_operations_burst: int = Field(default=60, ge=1, le=100_000)
    #: Operations from one client address (an IPv6 client's /64), signed in or not.
    rate_limit_ip_operations_per_minute: float = Field(default=1200, gt=0, le=1_000_000)
    rate_limit_ip_operations_burst: int = Field(default=240, ge=1, le=100_000)
    #: `signIn` fields, per client address and (when signed in) per user.
    rate_limit_sign_in_per_minute: float = Field(default=10, gt=0, le=1_000_000)
    rate_limit_sign_in_burst: int = Field(default=5, ge=1, le=100_000)
    #: `startGeneration` fields per user.
    rate_limit_start_generation_per_minute: float = Field(default=10, gt=0, le=1_000_000)
    rate_limit_start_generation_burst: int = Field(default=5, ge=1, le=100_000)

    # --- metrics (see app/observability/) ----------------------------------------------------
    #: ``GET /metrics``: unset means on in development, and in production only with a token.
    metrics_enabled: bool | None = None
    #: When set, ``/metrics`` (and a worker's metrics port) want ``Authorization: Bearer <it>``.
    metrics_token: str | None = Field(default=None, min_length=16)
    #: Distinct operation names kept as label values per process; later ones count as "other".
    metrics_max_operation_names: int = Field(default=200, ge=0, le=10_000)
    #: ``studio worker`` serves its metrics (job and stage durations) on this port when set.
    worker_metrics_port: int | None = Field(default=None, ge=0, le=65535)
    worker_metrics_host: str = "127.0.0.1"

    # --- logging ----------------------------------------------------------------------------
    log_level: LogLevel = LogLevel.INFO
    log_format: LogFormat = LogFormat.TEXT

    @field_validator("cors_origins", "fetch_allowed_hosts", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @field_validator("oauth_providers", mode="before")
    @classmethod
    def _parse_providers(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return json.loads(value) if value.strip() else {}
            except json.JSONDecodeError as exc:
                raise ValueError(f"is not valid JSON ({exc.msg})") from None
        return value

    @field_validator(
        "metrics_token",
        "worker_metrics_port",
        "script_model_url",
        "script_model_api_key",
        "script_model_name",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("public_url")
    @classmethod
    def _check_public_url(cls, value: str | None) -> str | None:
        return normalise_public_url(value)

    @field_validator("database_url", "database_direct_url")
    @classmethod
    def _check_database_url(cls, value: str | None) -> str | None:
        if value is not None and value.strip():
            parse_database_url(value)  # raises ValueError with a readable reason
            return value.strip()
        return None

    @field_validator("script_model_url")
    @classmethod
    def _check_script_model_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"must be an http:// or https:// URL: {value!r}")
        if parts.username or parts.password:
            raise ValueError("must not carry credentials (set STUDIO_SCRIPT_MODEL_API_KEY)")
        return value.strip()

    @model_validator(mode="after")
    def _script_model_needs_a_name(self) -> Settings:
        if self.script_model_url is not None and not self.script_model_name:
            raise ValueError(
                "STUDIO_SCRIPT_MODEL_URL is set but STUDIO_SCRIPT_MODEL_NAME is not; name the "
                "model the endpoint should run"
            )
        return self

    @model_validator(mode="after")
    def _direct_url_needs_a_database_url(self) -> Settings:
        if self.database_direct_url is not None and self.database_url is None:
            raise ValueError(
                "DATABASE_DIRECT_URL is set but DATABASE_URL is not; set both (the pooled URL "
                "as DATABASE_URL) or neither"
            )
        return self

    @model_validator(mode="after")
    def _production_needs_a_real_secret(self) -> Settings:
        if self.env is Environment.PRODUCTION and (
            self.secret_key == DEVELOPMENT_SECRET_KEY or len(self.secret_key) < 32
        ):
            raise ValueError(
                "STUDIO_SECRET_KEY must be set to a random value of at least 32 characters "
                f"in production (for example: {secrets.token_urlsafe(32)})"
            )
        return self

    # --- derived values -------------------------------------------------------------------

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy whose derived values (the ``cached_property`` ones) are derived again: pydantic
        copies them with the fields, so a copy with another URL would keep the old one's."""
        copied = super().model_copy(update=update, deep=deep)
        for name in _DERIVED:
            copied.__dict__.pop(name, None)
        return copied

    @property
    def uses_embedded_database(self) -> bool:
        return self.database_url is None

    @cached_property
    def database(self) -> DatabaseURL:
        """The parsed ``DATABASE_URL`` (queries, every transaction); only valid when one is
        configured. It knows whether a transaction pooler is in front (``STUDIO_DB_POOLER``)."""
        if self.database_url is None:
            raise SettingsError("DATABASE_URL is not set (the embedded database is in use)")
        parsed = parse_database_url(self.database_url)
        return replace(parsed, transaction_pooler=self._behind_transaction_pooler(parsed))

    @cached_property
    def direct_database(self) -> DatabaseURL:
        """The URL for connections that hold session state: the ``LISTEN`` connection and
        migrations with their advisory lock. ``DATABASE_DIRECT_URL``, else ``DATABASE_URL``."""
        if self.database_direct_url is None:
            return self.database
        return parse_database_url(self.database_direct_url)

    def _behind_transaction_pooler(self, parsed: DatabaseURL) -> bool:
        if self.db_pooler is not DbPooler.AUTO:
            return self.db_pooler is DbPooler.TRANSACTION
        if parsed.looks_pooled:
            return True
        if self.database_direct_url is None:
            return False
        direct = parse_database_url(self.database_direct_url).url
        return (direct.host, direct.port) != (parsed.url.host, parsed.url.port)

    def public_link(self, url: str) -> str:
        """A URL the API gives clients: a path on this studio (``/media/…``) becomes absolute
        under ``STUDIO_PUBLIC_URL`` when it is set; anything else is returned as it is."""
        if self.public_url is None or not url.startswith("/") or url.startswith("//"):
            return url
        return self.public_url + url

    @property
    def embedded_pgdata(self) -> Path:
        return self.data_dir / "pgdata"

    @property
    def resolved_media_dir(self) -> Path:
        return self.media_dir if self.media_dir is not None else self.data_dir / "media"

    @property
    def run_inprocess_worker(self) -> bool:
        if self.inprocess_worker is not None:
            return self.inprocess_worker
        return self.uses_embedded_database

    @property
    def graphiql_enabled(self) -> bool:
        if self.graphiql is not None:
            return self.graphiql
        return self.env is Environment.DEVELOPMENT

    @property
    def introspection_enabled(self) -> bool:
        if self.introspection is not None:
            return self.introspection
        return self.env is Environment.DEVELOPMENT

    @property
    def metrics_served(self) -> bool:
        if self.metrics_enabled is not None:
            return self.metrics_enabled
        return self.env is Environment.DEVELOPMENT or self.metrics_token is not None

    @property
    def run_migrations_on_start(self) -> bool:
        if self.migrate_on_start is not None:
            return self.migrate_on_start
        return self.uses_embedded_database


def normalise_public_url(value: str | None) -> str | None:
    """``STUDIO_PUBLIC_URL`` checked and written one way: ``scheme://host[:port][/prefix]``, the
    scheme and host in lower case, no trailing slash; empty is unset. `ValueError` says why not."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if any(c.isspace() or not c.isprintable() for c in text):
        raise ValueError("must not contain spaces or control characters")
    parts = urlsplit(text)
    if parts.scheme.lower() not in ("http", "https"):
        raise ValueError(f"must start with http:// or https://, not {text!r}")
    if "?" in text or "#" in text:
        raise ValueError("must have no query (?…) or fragment (#…): media URLs add their own")
    if "@" in parts.netloc:
        raise ValueError("must not contain a user name or password")
    if not parts.hostname:
        raise ValueError(f"has no host name: {text!r}")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"has an invalid port: {text!r}") from None
    segments = parts.path.rstrip("/").split("/")[1:]
    if any(segment in ("", ".", "..") for segment in segments):
        raise ValueError(f"has an empty, '.' or '..' path segment: {text!r}")
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    origin = f"{parts.scheme.lower()}://{host}" + ("" if port is None else f":{port}")
    return origin + "".join(f"/{segment}" for segment in segments)


def env_name(field: str) -> str:
    """The environment variable that sets a `Settings` field."""
    if field.lower() in ("database_url", "database_direct_url"):
        return field.upper()
    return f"{ENV_PREFIX}{field.upper()}"


def load_settings(**overrides: Any) -> Settings:
    """Read settings from the environment; keyword overrides win (tests, CLI options)."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else ""
            message = error["msg"].removeprefix("Value error, ")
            problems.append(f"{env_name(field)}: {message}" if field else message)
        raise SettingsError("invalid configuration: " + "; ".join(problems)) from None


#: The `Settings` values computed once from the fields (and dropped by `Settings.model_copy`).
_DERIVED = tuple(
    name for name, value in vars(Settings).items() if isinstance(value, cached_property)
)
