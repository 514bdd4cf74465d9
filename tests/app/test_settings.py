"""Configuration comes from the environment, and a wrong value names its variable."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from app.settings import DEVELOPMENT_SECRET_KEY, Environment, SettingsError, load_settings
from db.engine import create_engine


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("STUDIO_") or name in ("DATABASE_URL", "TEST_DATABASE_URL"):
            monkeypatch.delenv(name)


def test_defaults_describe_a_laptop_install() -> None:
    settings = load_settings()
    assert settings.env is Environment.DEVELOPMENT
    assert settings.uses_embedded_database
    assert settings.run_inprocess_worker
    assert settings.run_migrations_on_start
    assert settings.embedded_pgdata == settings.data_dir / "pgdata"
    assert settings.resolved_media_dir == settings.data_dir / "media"


def test_database_url_turns_off_embedded_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgres://u:p@db.example.com/studio?sslmode=require")
    settings = load_settings()
    assert not settings.uses_embedded_database
    assert not settings.run_inprocess_worker
    assert not settings.run_migrations_on_start
    assert settings.database.connect_args() == {"ssl": "require"}


def test_inprocess_worker_can_be_forced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://db/studio")
    monkeypatch.setenv("STUDIO_INPROCESS_WORKER", "true")
    assert load_settings().run_inprocess_worker


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("STUDIO_ENV", "staging"),
        ("STUDIO_DB_POOL_SIZE", "0"),
        ("STUDIO_DB_POOL_TIMEOUT", "soon"),
        ("STUDIO_LOG_FORMAT", "xml"),
        ("STUDIO_DB_MAX_OVERFLOW", "-1"),
        ("DATABASE_URL", "mysql://root@localhost/studio"),
        ("STUDIO_INPROCESS_WORKER", "perhaps"),
    ],
)
def test_wrong_value_names_its_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=f"{variable}: "):
        load_settings()


@pytest.mark.parametrize(
    ("value", "normalised"),
    [
        ("https://studio.example.com", "https://studio.example.com"),
        ("https://studio.example.com/", "https://studio.example.com"),
        ("HTTPS://Studio.Example.COM:8443/api/v1//", "https://studio.example.com:8443/api/v1"),
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
        ("http://[::1]:8000/", "http://[::1]:8000"),
        ("", None),
    ],
)
def test_public_url_is_an_origin_with_an_optional_prefix(
    monkeypatch: pytest.MonkeyPatch, value: str, normalised: str | None
) -> None:
    monkeypatch.setenv("STUDIO_PUBLIC_URL", value)
    assert load_settings().public_url == normalised


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("studio.example.com", "must start with http:// or https://"),
        ("ftp://studio.example.com", "must start with http:// or https://"),
        ("https://studio.example.com/?v=1", "no query"),
        ("https://studio.example.com/#top", "no query"),
        ("https://user:secret@studio.example.com", "user name or password"),
        ("https:///media", "no host name"),
        ("https://studio.example.com:99999", "invalid port"),
        ("https://studio.example.com/a/../b", "path segment"),
        ("https://studio.example.com/a b", "spaces"),
    ],
)
def test_a_wrong_public_url_is_refused_with_the_reason(
    monkeypatch: pytest.MonkeyPatch, value: str, reason: str
) -> None:
    monkeypatch.setenv("STUDIO_PUBLIC_URL", value)
    with pytest.raises(SettingsError, match=f"STUDIO_PUBLIC_URL: .*{re.escape(reason)}"):
        load_settings()


def test_public_links_are_absolute_only_when_a_public_url_is_set() -> None:
    assert load_settings().public_link("/media/a.wav?sig=x") == "/media/a.wav?sig=x"
    settings = load_settings(public_url="https://studio.example.com/base/")
    assert settings.public_link("/media/a.wav?sig=x") == (
        "https://studio.example.com/base/media/a.wav?sig=x"
    )
    assert settings.public_link("https://youtu.be/x") == "https://youtu.be/x"


def test_production_refuses_the_development_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STUDIO_ENV", "production")
    with pytest.raises(SettingsError, match="STUDIO_SECRET_KEY"):
        load_settings()
    monkeypatch.setenv("STUDIO_SECRET_KEY", "too-short")
    with pytest.raises(SettingsError, match="STUDIO_SECRET_KEY"):
        load_settings()
    monkeypatch.setenv("STUDIO_SECRET_KEY", "x" * 40)
    assert load_settings().secret_key != DEVELOPMENT_SECRET_KEY


def test_lists_and_paths(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("STUDIO_CORS_ORIGINS", "https://app.example.com, http://localhost:5173")
    monkeypatch.setenv("STUDIO_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("STUDIO_MEDIA_DIR", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("STUDIO_LOG_LEVEL", "debug")
    settings = load_settings()
    assert settings.cors_origins == ["https://app.example.com", "http://localhost:5173"]
    assert settings.embedded_pgdata == tmp_path / "pgdata"
    assert settings.resolved_media_dir == tmp_path / "elsewhere"
    assert settings.log_level.value == "DEBUG"


async def test_pool_settings_reach_the_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://db.example.com/studio")
    monkeypatch.setenv("STUDIO_DB_POOL_SIZE", "7")
    monkeypatch.setenv("STUDIO_DB_MAX_OVERFLOW", "3")
    monkeypatch.setenv("STUDIO_DB_POOL_TIMEOUT", "4.5")
    monkeypatch.setenv("STUDIO_DB_POOL_RECYCLE", "600")
    monkeypatch.setenv("STUDIO_DB_POOL_PRE_PING", "false")
    engine = create_engine(load_settings())
    try:
        pool = engine.pool
        assert pool.size() == 7  # type: ignore[attr-defined]
        assert pool._max_overflow == 3  # type: ignore[attr-defined]
        assert pool._timeout == 4.5  # type: ignore[attr-defined]
        assert pool._recycle == 600
        assert pool._pre_ping is False
    finally:
        await engine.dispose()


def test_a_copy_with_another_url_derives_its_databases_again() -> None:
    settings = load_settings(database_url="postgresql://first.example.com/studio")
    assert settings.database.url.host == settings.direct_database.url.host == "first.example.com"
    copied = settings.model_copy(update={"database_url": "postgresql://second.example.com/studio"})
    assert copied.database.url.host == "second.example.com"
    assert copied.direct_database.url.host == "second.example.com"
