"""`studio token --email E` (SPEC §2): a development access token for a user, created if new,
printed as the last line of output; never in production."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from app.auth import read_access_token
from app.main import create_app
from app.settings import Settings, load_settings
from db.models import User
from db.url import DatabaseURL
from tests.support.processes import clean_env, run_studio, studio_token
from tests.support.server import PgServer

VIEWER = "{ viewer { email } }"

CLI_SECRET = "cli-test-secret-" + "k" * 24  # 40 characters, as production requires


@pytest.fixture(scope="module")
def token_database(pg_server: PgServer) -> Iterator[DatabaseURL]:
    with pg_server.temporary_database(prefix="studio_token") as database:
        yield database


def _cli_settings(database: DatabaseURL) -> Settings:
    return load_settings(database_url=database.render(hide_password=False), secret_key=CLI_SECRET)


def _studio_token(database: DatabaseURL, email: str) -> str:
    env = clean_env(DATABASE_URL=database.render(hide_password=False), STUDIO_SECRET_KEY=CLI_SECRET)
    return studio_token(env, email)


def _subject(database: DatabaseURL, token: str) -> uuid.UUID:
    return read_access_token(_cli_settings(database), token).user_id


def test_studio_token_prints_a_valid_token_as_the_last_line(token_database: DatabaseURL) -> None:
    email = f"ada-{uuid.uuid4().hex[:8]}@example.com"
    token = _studio_token(token_database, email)
    user_id = _subject(token_database, token)
    assert asyncio.run(_emails_of(token_database, user_id)) == [email]


def test_studio_token_twice_gives_the_same_user(token_database: DatabaseURL) -> None:
    email = f"grace-{uuid.uuid4().hex[:8]}@example.com"
    first = _subject(token_database, _studio_token(token_database, email))
    second = _subject(token_database, _studio_token(token_database, email))
    assert first == second


def test_studio_token_matches_the_email_in_any_case(token_database: DatabaseURL) -> None:
    email = f"Linus-{uuid.uuid4().hex[:8]}@Example.COM"
    first = _subject(token_database, _studio_token(token_database, email))
    second = _subject(token_database, _studio_token(token_database, email.lower()))
    assert first == second
    assert asyncio.run(_emails_of(token_database, first)) == [email]


async def test_studio_token_works_against_the_app(token_database: DatabaseURL) -> None:
    email = f"alan-{uuid.uuid4().hex[:8]}@example.com"
    token = await asyncio.to_thread(_studio_token, token_database, email)
    app = create_app(_cli_settings(token_database))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://studio.test") as client:
            response = await client.post(
                "/graphql", json={"query": VIEWER}, headers={"Authorization": f"Bearer {token}"}
            )
    assert response.json() == {"data": {"viewer": {"email": email}}}


def test_studio_tokens_graphiql_link_is_under_the_public_url(token_database: DatabaseURL) -> None:
    database = token_database.render(hide_password=False)
    email = f"linked-{uuid.uuid4().hex[:8]}@example.com"
    public_env = clean_env(DATABASE_URL=database, STUDIO_PUBLIC_URL="https://studio.example.com/s/")

    default = run_studio("token", "--email", email, env=clean_env(DATABASE_URL=database))
    public = run_studio("token", "--email", email, env=public_env)

    assert f" http://127.0.0.1:8000/graphql#token={default.stdout.strip()}\n" in default.stderr
    assert f" https://studio.example.com/s/graphql#token={public.stdout.strip()}\n" in public.stderr


def test_studio_token_is_refused_in_production(token_database: DatabaseURL) -> None:
    email = f"prod-{uuid.uuid4().hex[:8]}@example.com"
    result = run_studio(
        "token",
        "--email",
        email,
        env=clean_env(
            DATABASE_URL=token_database.render(hide_password=False),
            STUDIO_ENV="production",
            STUDIO_SECRET_KEY=CLI_SECRET,
        ),
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert "development" in result.stderr
    assert "Traceback" not in result.stderr
    assert asyncio.run(_users_with_email(token_database, email)) == 0


async def _emails_of(database: DatabaseURL, user_id: uuid.UUID) -> list[str]:
    engine = create_async_engine(
        database.url, connect_args=database.connect_args(), poolclass=NullPool
    )
    try:
        async with engine.connect() as connection:
            return list(
                (await connection.scalars(select(User.email).where(User.id == user_id))).all()
            )
    finally:
        await engine.dispose()


async def _users_with_email(database: DatabaseURL, email: str) -> int:
    engine = create_async_engine(
        database.url, connect_args=database.connect_args(), poolclass=NullPool
    )
    try:
        async with engine.connect() as connection:
            count = await connection.scalar(
                select(func.count())
                .select_from(User)
                .where(func.lower(User.email) == email.lower())
            )
            return int(count or 0)
    finally:
        await engine.dispose()
