"""The studio behind a real PgBouncer in transaction mode, as hosted PostgreSQL's pooled URLs put
it (README "Hosted PostgreSQL"): ``DATABASE_URL`` through the pooler, ``DATABASE_DIRECT_URL``
straight to the server. PgBouncer keeps its defaults (it refuses unknown startup parameters).

Covered with real processes: migrations, ``studio token``, the read API under 60 parallel
requests, every mutation, a generation run watched to SUCCEEDED over a subscription, two API
processes, and ``/readyz`` not ready (naming the cause) when only the pooled URL is given.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from gql import Client, GraphQLRequest
from gql.transport.websockets import WebsocketsTransport

from db.events import connect_kwargs
from db.url import DatabaseURL
from tests.app.test_audio import wav_bytes
from tests.support.live_states import assert_job_states
from tests.support.oidc_issuer import running_issuer
from tests.support.pgbouncer import PgBouncer
from tests.support.processes import (
    StudioProcess,
    clean_env,
    free_port,
    run_studio,
    running_studio,
    running_studios,
    start_studio,
    stop,
)
from tests.support.websocket import TRANSPORT_WS, websocket_url
from tests.support.workers import Workers

CSRF = {"X-Studio-CSRF": "1"}
VIDEOS = "query($n: Int!) { viewer { videos(first: $n) { totalCount edges { node { id title status voiceProfile { name } latestJob { status } jobs(first: 3) { totalCount } } } } } }"  # noqa: E501
PROGRESS = "subscription($id: ID!) { jobProgress(jobId: $id) { status stage progress } }"


@pytest.fixture
def pooled_env(pgbouncer: PgBouncer, migrated_database: DatabaseURL) -> dict[str, str]:
    """A deployment's two URLs: the pooled one, and the direct one beside it."""
    return clean_env(
        DATABASE_URL=pgbouncer.pooled(migrated_database).render(hide_password=False),
        DATABASE_DIRECT_URL=migrated_database.render(hide_password=False),
    )


@pytest.fixture
def studio(pooled_env: dict[str, str], tmp_path: Path) -> Iterator[StudioProcess]:
    """``studio serve`` with its in-process worker, on the pooled and direct URLs."""
    env = pooled_env | {"STUDIO_INPROCESS_WORKER": "true"}
    with running_studio(env, tmp_path, email="pooled@example.com") as studio:
        yield studio


def test_migrations_take_the_direct_url_and_nothing_refused_reaches_pgbouncer(
    pgbouncer: PgBouncer, empty_database: DatabaseURL, tmp_path: Path
) -> None:
    env = clean_env(
        DATABASE_URL=pgbouncer.pooled(empty_database).render(hide_password=False),
        DATABASE_DIRECT_URL=empty_database.render(hide_password=False),
    )
    upgraded = run_studio("migrate", "upgrade", env=env)
    assert upgraded.returncode == 0, upgraded.stderr
    current = run_studio("migrate", "current", env=env)
    assert current.returncode == 0, current.stderr
    assert "(head)" in current.stdout + current.stderr
    # The statement timeout is no startup parameter behind a pooler: PgBouncer refuses those.
    log = pgbouncer.log.read_text()
    assert "unsupported startup parameter" not in log, log


def test_studio_token_works_through_pgbouncer(pooled_env: dict[str, str]) -> None:
    for _ in range(3):  # again and again: no prepared statement clashes on reused server sessions
        issued = run_studio("token", "--email", "token.pooled@example.com", env=pooled_env)
        assert issued.returncode == 0, issued.stderr
        assert issued.stdout.strip().splitlines()[-1].count(".") == 2


async def test_the_read_api_answers_60_parallel_requests_through_pgbouncer(
    studio: StudioProcess,
) -> None:
    async with httpx.AsyncClient(base_url=studio.url, headers=studio.headers | CSRF) as http:
        for index in range(12):
            await mutate(http, CREATE_VIDEO, {"input": video_input(f"Pooled {index}")})
        answers = await asyncio.gather(
            *(
                http.post("/graphql", json={"query": VIDEOS, "variables": {"n": 10}}, timeout=60)
                for _ in range(60)
            )
        )
    bodies = [answer.json() for answer in answers]
    assert [answer.status_code for answer in answers] == [200] * 60
    assert [body.get("errors") for body in bodies] == [None] * 60
    assert all(body == bodies[0] for body in bodies)
    assert bodies[0]["data"]["viewer"]["videos"]["totalCount"] == 12


async def test_every_mutation_and_a_watched_run_work_through_pgbouncer(
    pgbouncer: PgBouncer, migrated_database: DatabaseURL, tmp_path: Path
) -> None:
    with running_issuer() as issuer:
        env = clean_env(
            DATABASE_URL=pgbouncer.pooled(migrated_database).render(hide_password=False),
            DATABASE_DIRECT_URL=migrated_database.render(hide_password=False),
            STUDIO_INPROCESS_WORKER="true",
            STUDIO_OAUTH_PROVIDERS=json.dumps({"local": issuer.provider_config()}),
        )
        with running_studio(env, tmp_path) as studio:
            async with httpx.AsyncClient(base_url=studio.url, headers=CSRF, timeout=60) as http:
                signed_in = await mutate(
                    http,
                    "mutation($input: SignInInput!) { signIn(input: $input) { accessToken } }",
                    {"input": {"provider": "local", "idToken": issuer.token()}},
                )
                token = signed_in["signIn"]["accessToken"]
                http.headers["Authorization"] = f"Bearer {token}"
                await every_other_mutation(http, studio)


async def every_other_mutation(http: httpx.AsyncClient, studio: StudioProcess) -> None:
    profile = await upload_profile(http)
    await mutate(
        http,
        "mutation($input: UpdateVoiceProfileInput!) { updateVoiceProfile(input: $input) "
        "{ voiceProfile { name } } }",
        {"input": {"id": profile, "name": "Narrator, renamed"}},
    )
    video = (await mutate(http, CREATE_VIDEO, {"input": video_input("Through the pooler")}))[
        "createVideo"
    ]["video"]["id"]
    await mutate(
        http,
        "mutation($input: UpdateVideoInput!) { updateVideo(input: $input) { video { id } } }",
        {"input": {"id": video, "voiceProfileId": profile}},
    )
    job = await start(http, video)
    states = await watch(studio, http.headers["Authorization"], job)
    assert_job_states(states)
    assert states[-1] == {"status": "SUCCEEDED", "stage": "RENDER", "progress": 100}, states
    published = await mutate(
        http,
        "mutation($input: PublishVideoInput!) { publishVideo(input: $input) { video { status } } }",
        {"input": {"videoId": video}},
    )
    assert published["publishVideo"]["video"]["status"] == "PUBLISHED"
    cancelled = await mutate(
        http,
        "mutation($id: ID!) { cancelGeneration(jobId: $id) { job { status } } }",
        {"id": await start(http, video)},
    )
    assert cancelled["cancelGeneration"]["job"]["status"] == "CANCELLED"
    await mutate(http, "mutation($id: ID!) { deleteVideo(id: $id) { deletedId } }", {"id": video})
    restored = await mutate(
        http, "mutation($id: ID!) { restoreVideo(id: $id) { video { id } } }", {"id": video}
    )
    assert restored["restoreVideo"]["video"]["id"] == video
    await mutate(
        http, "mutation($id: ID!) { deleteVoiceProfile(id: $id) { deletedId } }", {"id": profile}
    )


async def test_two_api_processes_and_a_worker_share_the_pooled_database(
    pgbouncer: PgBouncer, migrated_database: DatabaseURL, tmp_path: Path
) -> None:
    """A run started through one API process is run by a `studio worker` and watched to the end
    through the other API process: all three on the pooled URL, with their listeners on the
    direct one."""
    direct = migrated_database.render(hide_password=False)
    env = clean_env(
        DATABASE_URL=pgbouncer.pooled(migrated_database).render(hide_password=False),
        DATABASE_DIRECT_URL=direct,
        STUDIO_INPROCESS_WORKER="false",
    )
    token = run_studio("token", "--email", "two.pooled@example.com", env=env)
    assert token.returncode == 0, token.stderr
    bearer = f"Bearer {token.stdout.strip().splitlines()[-1]}"
    workers = Workers(pgbouncer.pooled(migrated_database), tmp_path)
    try:
        worker = workers.start(DATABASE_DIRECT_URL=direct)
        with running_studios(env, tmp_path, 2) as (first, second):
            async with httpx.AsyncClient(
                base_url=first.url, headers=CSRF | {"Authorization": bearer}, timeout=60
            ) as http:
                video = (await mutate(http, CREATE_VIDEO, {"input": video_input("Two APIs")}))[
                    "createVideo"
                ]["video"]["id"]
                job = await start(http, video)
            states = await watch(second, bearer, job)
    finally:
        workers.close()
    assert_job_states(states)
    messages = [entry.get("message", "") for entry in workers.entries(worker)]
    assert not [m for m in messages if "notifications will not arrive" in m], messages
    assert any("(transaction pooler:" in m for m in messages), messages


@pytest.mark.parametrize("statement_timeout_ms", ["0", "30000"])
async def test_two_api_processes_count_one_users_reads_together_through_pgbouncer(
    pooled_env: dict[str, str], tmp_path: Path, statement_timeout_ms: str
) -> None:
    """Rate limits behind the pooler, on two processes: a known read charges inside its one
    statement when it needs no transaction (no statement timeout), else with the limiter's own
    statement before it (the timeout is a ``SET LOCAL``); either way the user's burst of 4 is
    spent once across both, and the fifth read is refused with its ``Retry-After``."""
    env = pooled_env | {
        "STUDIO_INPROCESS_WORKER": "false",
        "STUDIO_LOG_LEVEL": "INFO",  # a compiled statement that fails is logged at INFO
        "STUDIO_DB_STATEMENT_TIMEOUT_MS": statement_timeout_ms,
        "STUDIO_RATE_LIMIT_ENABLED": "true",
        "STUDIO_RATE_LIMIT_OPERATIONS_PER_MINUTE": "0.0001",
        "STUDIO_RATE_LIMIT_OPERATIONS_BURST": "4",
    }
    token = run_studio("token", "--email", "limited.pooled@example.com", env=env)
    assert token.returncode == 0, token.stderr
    headers = CSRF | {"Authorization": f"Bearer {token.stdout.strip().splitlines()[-1]}"}
    read = {"query": "query Mine { viewer { id displayName } }"}
    with running_studios(env, tmp_path, 2) as studios:
        async with httpx.AsyncClient(headers=headers, timeout=60) as http:
            for studio in (*studios, *studios):  # the last two on the known path
                body = (await http.post(f"{studio.url}/graphql", json=read)).json()
                assert body.get("errors") is None, body
            for studio in studios:
                response = await http.post(f"{studio.url}/graphql", json=read)
                [error] = response.json()["errors"]
                assert error["extensions"]["code"] == "RATE_LIMITED", error
                assert response.headers["Retry-After"] == str(error["extensions"]["retryAfter"])
        logs = [studio.log.read_text() for studio in studios]
    assert not [log for log in logs if "compiled statement failed" in log], logs


def test_readyz_is_not_ready_with_only_the_pooled_url_and_says_why(
    pgbouncer: PgBouncer, migrated_database: DatabaseURL, tmp_path: Path
) -> None:
    """The pooler lets the listener connect and LISTEN, and then delivers nothing: `/readyz`
    finds out with a notification of its own, and names the fix."""
    pooled = pgbouncer.pooled(migrated_database).render(hide_password=False)
    env = clean_env(DATABASE_URL=f"{pooled}?pgbouncer=true")
    port, log = free_port(), tmp_path / "serve.log"
    process = start_studio("serve", "--port", str(port), env=env, log=log)
    try:
        answer = wait_for_readyz(port, process, log)
    finally:
        assert stop(process) == 0, log.read_text()
    assert answer.status_code == 503, answer.text
    checks = answer.json()["checks"]
    assert checks["database"] == {"ok": True}
    assert checks["migrations"]["ok"] is True
    assert checks["listener"]["ok"] is False
    assert "set DATABASE_DIRECT_URL" in checks["listener"]["error"]
    text = log.read_text()
    assert "notifications will not arrive" in text, text
    assert "set DATABASE_DIRECT_URL" in text, text


def test_serve_logs_which_url_each_part_uses_with_passwords_masked(
    pgbouncer: PgBouncer, migrated_database: DatabaseURL, tmp_path: Path
) -> None:
    with_password = migrated_database.url.set(password="s3cret-pw")
    direct = DatabaseURL(url=with_password)
    env = clean_env(
        DATABASE_URL=pgbouncer.pooled(direct).render(hide_password=False),
        DATABASE_DIRECT_URL=direct.render(hide_password=False),
    )
    with running_studio(env, tmp_path) as studio:
        pass
    text = studio.log.read_text()
    assert "s3cret-pw" not in text
    pooled = pgbouncer.pooled(direct).redacted()
    assert ":***@" in pooled
    assert f"queries and transactions via {pooled}?pgbouncer=true (transaction pooler:" in text
    assert (
        f"LISTEN (live progress, job wake-ups) and migrations via {direct.redacted()} (direct)"
        in text
    )


async def test_a_pooler_connection_keeps_no_named_prepared_statement(
    pgbouncer: PgBouncer, studio: StudioProcess, migrated_database: DatabaseURL
) -> None:
    """Unnamed statements leave nothing on the pooler's server sessions (unique names would pile
    up there, one per statement run)."""
    async with httpx.AsyncClient(base_url=studio.url, headers=studio.headers | CSRF) as http:
        for _ in range(20):
            answer = await http.post("/graphql", json={"query": VIDEOS, "variables": {"n": 5}})
            assert "errors" not in answer.json(), answer.text
    # pg_prepared_statements is per session; what the pooler's sessions hold is only visible to
    # them, so ask one of them through the pooler itself.
    through = await asyncpg.connect(
        **connect_kwargs(pgbouncer.pooled(migrated_database)), statement_cache_size=0
    )
    try:
        leftovers = await through.fetchval("SELECT count(*) FROM pg_prepared_statements")
    finally:
        await through.close()
    assert leftovers == 0


# --- helpers ---------------------------------------------------------------------------------

CREATE_VIDEO = "mutation($input: CreateVideoInput!) { createVideo(input: $input) { video { id } } }"


def video_input(title: str) -> dict[str, str]:
    return {
        "title": title,
        "description": "A sentence to speak. And one more.",
        "inputType": "DESCRIPTION",
    }


async def mutate(http: httpx.AsyncClient, query: str, variables: dict[str, Any]) -> Any:
    answer = await http.post("/graphql", json={"query": query, "variables": variables})
    body = answer.json()
    assert answer.status_code == 200, answer.text
    assert "errors" not in body, answer.text
    return body["data"]


async def start(http: httpx.AsyncClient, video: str) -> str:
    started = await mutate(
        http,
        "mutation($id: ID!) { startGeneration(videoId: $id) { job { id } } }",
        {"id": video},
    )
    return str(started["startGeneration"]["job"]["id"])


async def upload_profile(http: httpx.AsyncClient) -> str:
    operations = {
        "query": "mutation($input: CreateVoiceProfileInput!) { createVoiceProfile(input: $input) "
        "{ voiceProfile { id sampleUrl } } }",
        "variables": {"input": {"name": "Narrator", "sample": None}},
    }
    answer = await http.post(
        "/graphql",
        files={
            "operations": (None, json.dumps(operations)),
            "map": (None, json.dumps({"0": ["variables.input.sample"]})),
            "0": ("sample.wav", wav_bytes(frames=8000), "audio/wav"),
        },
    )
    body = answer.json()
    assert "errors" not in body, answer.text
    profile = body["data"]["createVoiceProfile"]["voiceProfile"]
    assert profile["sampleUrl"]
    return str(profile["id"])


async def watch(studio: StudioProcess, bearer: str, job: str) -> list[dict[str, Any]]:
    """Every ``jobProgress`` state a gql client sees until the server ends the stream."""
    transport = WebsocketsTransport(
        url=websocket_url(studio.url),
        init_payload={"Authorization": bearer},
        subprotocols=[TRANSPORT_WS],
        connect_args={"proxy": None},
    )
    states: list[dict[str, Any]] = []
    async with asyncio.timeout(90), Client(transport=transport) as session:
        request = GraphQLRequest(PROGRESS, variable_values={"id": job})
        async for result in session.subscribe(request):
            states.append(result["jobProgress"])
    return states


def wait_for_readyz(port: int, process: Any, log: Path, *, timeout: float = 30) -> httpx.Response:
    """The first `/readyz` answer once the app has started (its start-up probe logged)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"studio exited with {process.returncode}:\n{log.read_text()}")
        if "Application startup complete" in log.read_text():
            return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=10)
        time.sleep(0.1)  # polling interval, not a wait for work to finish
    raise AssertionError(f"studio did not start within {timeout}s:\n{log.read_text()}")
