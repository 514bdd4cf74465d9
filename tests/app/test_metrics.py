"""``GET /metrics`` (SPEC §5 Operations): operations by name and outcome, latency, errors by
code, HTTP requests by route, websockets and subscriptions, the job queue read from PostgreSQL,
job and stage durations from the worker, the database pool; and who may read them."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker
from starlette.applications import Starlette

from app.main import create_app
from app.observability import WorkerProcessMetrics
from app.settings import Environment, Settings, load_settings
from app.state import AppState
from app.worker import Worker
from app.worker.pipeline import Results, StageContext, StageError, VideoInput
from db.engine import create_engine
from db.models import GenerationJob, JobStage, JobStatus
from db.url import DatabaseURL
from tests.factories import make_job, make_user, make_video
from tests.support.browser import serve
from tests.support.graphql import GraphQLClient, count_statements
from tests.support.jobs import committing_sessions, load_job, start_jobs, wait_for
from tests.support.live_jobs import JOB_PROGRESS, create_live_job, writer_engine
from tests.support.websocket import bearer, open_websocket

METRICS_TOKEN = "metrics-token-0123456789abcdef"


class Scrape:
    """One scrape, parsed: ``scrape.value("name", label=value, …)`` (0 for a missing series)."""

    def __init__(self, body: str) -> None:
        self.families = {family.name for family in text_string_to_metric_families(body)}
        self._samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
        for family in text_string_to_metric_families(body):
            for sample in family.samples:
                self._samples[(sample.name, frozenset(sample.labels.items()))] = sample.value

    def value(self, name: str, **labels: str) -> float:
        return self._samples.get((name, frozenset(labels.items())), 0.0)

    def labels_of(self, name: str, label: str) -> set[str]:
        return {dict(labels)[label] for (sample, labels) in self._samples if sample == name}


async def scrape(http: httpx.AsyncClient, **headers: str) -> Scrape:
    response = await http.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    return Scrape(response.text)


@pytest.fixture
async def limited_app(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> AsyncIterator[httpx.AsyncClient]:
    """An app that labels at most 2 distinct operation names."""
    app = create_app(
        settings.model_copy(update={"metrics_max_operation_names": 2}), sessionmaker=sessionmaker
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://studio.test") as client:
            yield client


# --- the format and the route -----------------------------------------------------------------


async def test_metrics_are_served_in_the_prometheus_text_format(http: httpx.AsyncClient) -> None:
    response = await http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    families = Scrape(response.text).families
    assert {
        "studio_graphql_operations",
        "studio_graphql_operation_duration_seconds",
        "studio_graphql_errors",
        "studio_graphql_subscriptions_active",
        "studio_http_requests",
        "studio_http_request_duration_seconds",
        "studio_websocket_connections",
        "studio_job_queue_depth",
        "studio_job_queue_read_ok",
        "studio_job_stage_duration_seconds",
        "studio_job_attempt_duration_seconds",
        "studio_db_pool_connections_in_use",
        "process_resident_memory_bytes",
    } <= families


async def test_a_scraper_asking_for_openmetrics_gets_it(http: httpx.AsyncClient) -> None:
    response = await http.get(
        "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.rstrip().endswith("# EOF")


# --- GraphQL operations -----------------------------------------------------------------------


async def test_operations_are_counted_by_type_name_and_outcome(
    http: httpx.AsyncClient, graphql: GraphQLClient, session: AsyncSession
) -> None:
    user = await make_user(session)
    signed_in = graphql.as_user(user.id)
    for _ in range(2):
        (await signed_in.execute("query ViewerEmail { viewer { email } }")).ok()
    missing = await signed_in.execute(
        'query OneVideo { video(id: "VmlkZW86bm90LWEtdXVpZA==") { id } }'
    )
    assert missing.errors
    invalid = await signed_in.execute("query Invalid { noSuchField }")
    assert invalid.codes == ["BAD_USER_INPUT"]
    await signed_in.execute("query {")  # does not parse

    metrics = await scrape(http)
    ok = {"operation_type": "query", "outcome": "ok"}
    assert metrics.value("studio_graphql_operations_total", operation_name="ViewerEmail", **ok) == 2
    assert (
        metrics.value(
            "studio_graphql_operation_duration_seconds_count",
            operation_type="query",
            operation_name="ViewerEmail",
        )
        == 2
    )
    assert (
        metrics.value(
            "studio_graphql_operations_total",
            operation_type="query",
            operation_name="OneVideo",
            outcome="error",
        )
        == 1
    )
    # Rejected documents never lend their name to a label.
    rejected = {"operation_name": "invalid", "outcome": "rejected"}
    assert metrics.value("studio_graphql_operations_total", operation_type="query", **rejected) == 1
    assert (
        metrics.value("studio_graphql_operations_total", operation_type="unknown", **rejected) == 1
    )
    assert "Invalid" not in metrics.labels_of("studio_graphql_operations_total", "operation_name")
    codes = [*missing.codes, "BAD_USER_INPUT", "BAD_USER_INPUT"]
    for code in set(codes):
        assert metrics.value("studio_graphql_errors_total", code=str(code)) == codes.count(code)


async def test_operation_name_labels_are_bounded(limited_app: httpx.AsyncClient) -> None:
    for name in ("First", "Second", "Third", "Fourth", "First"):
        response = await limited_app.post(
            "/graphql", json={"query": f"query {name} {{ __typename }}"}
        )
        assert response.status_code == 200
    await limited_app.post("/graphql", json={"query": "{ __typename }"})

    metrics = await scrape(limited_app)
    names = metrics.labels_of("studio_graphql_operations_total", "operation_name")
    assert names == {"First", "Second", "other", "anonymous"}
    ok = {"operation_type": "query", "outcome": "ok"}
    assert metrics.value("studio_graphql_operations_total", operation_name="First", **ok) == 2
    assert metrics.value("studio_graphql_operations_total", operation_name="other", **ok) == 2


async def test_a_failed_mutation_counts_its_error_code(
    http: httpx.AsyncClient, graphql: GraphQLClient
) -> None:
    response = await graphql.execute(
        "mutation Start($id: ID!) { startGeneration(videoId: $id) { job { id } } }",
        {"id": "VmlkZW86MDAwMDAwMDAtMDAwMC0wMDAwLTAwMDAtMDAwMDAwMDAwMDAw"},
    )
    assert response.codes == ["UNAUTHENTICATED"]
    metrics = await scrape(http)
    assert (
        metrics.value(
            "studio_graphql_operations_total",
            operation_type="mutation",
            operation_name="Start",
            outcome="error",
        )
        == 1
    )
    assert metrics.value("studio_graphql_errors_total", code="UNAUTHENTICATED") == 1


async def test_a_rate_limited_operation_is_rejected_under_its_own_name(
    app_with: AppWith, settings: Settings
) -> None:
    async with app_with(
        rate_limit_enabled=True, rate_limit_operations_burst=1, rate_limit_operations_per_minute=1
    ) as http:
        client = GraphQLClient(http, settings).as_user(uuid.uuid4())
        (await client.execute("query Ping { __typename }")).ok()
        assert (await client.execute("query Ping { __typename }")).codes == ["RATE_LIMITED"]
        metrics = await scrape(http)
    ping = {"operation_type": "query", "operation_name": "Ping"}
    assert metrics.value("studio_graphql_operations_total", outcome="ok", **ping) == 1
    assert metrics.value("studio_graphql_operations_total", outcome="rejected", **ping) == 1
    assert metrics.value("studio_graphql_errors_total", code="RATE_LIMITED") == 1


# --- HTTP -------------------------------------------------------------------------------------


async def test_http_requests_are_counted_by_route_template(http: httpx.AsyncClient) -> None:
    assert (await http.get("/healthz")).status_code == 200
    assert (await http.get("/media/voice-samples/x.wav?expires=1&sig=x")).status_code == 403
    for path in ("/no-such-page", "/another/missing/page"):
        assert (await http.get(path)).status_code == 404

    metrics = await scrape(http)
    routes = metrics.labels_of("studio_http_requests_total", "route")
    assert "/no-such-page" not in routes
    assert (
        metrics.value("studio_http_requests_total", method="GET", route="/healthz", status="200")
        == 1
    )
    assert (
        metrics.value("studio_http_requests_total", method="GET", route="unmatched", status="404")
        == 2
    )
    media = [route for route in routes if route.startswith("/media/")]
    assert media, routes
    assert all("{" in route for route in media)  # the template, not the path asked for
    assert (
        metrics.value("studio_http_request_duration_seconds_count", method="GET", route="/healthz")
        == 1
    )


# --- the job queue and the pool ---------------------------------------------------------------


async def test_queue_depth_comes_from_the_database(
    http: httpx.AsyncClient, session: AsyncSession
) -> None:
    before = await scrape(http)
    assert before.value("studio_job_queue_read_ok") == 1
    user = await make_user(session)
    videos = [await make_video(session, user) for _ in range(4)]
    await make_job(session, videos[0])
    await make_job(session, videos[1], available_at=func.now() + timedelta(minutes=5))
    await make_job(
        session,
        videos[2],
        status=JobStatus.RUNNING,
        attempt=1,
        lease_owner="elsewhere",
        lease_expires_at=func.now() - timedelta(seconds=1),
    )
    # Claimable for a minute already (the transaction's clock: now() is its start).
    waiting = await make_job(session, videos[3])
    await session.execute(
        update(GenerationJob)
        .where(GenerationJob.id == waiting.id)
        .values(available_at=func.now() - timedelta(seconds=60))
    )
    await session.flush()

    after = await scrape(http)
    grown = [
        after.value(name, **labels) - before.value(name, **labels)
        for name, labels in [
            ("studio_job_queue_depth", {"status": "queued"}),
            ("studio_job_queue_depth", {"status": "running"}),
            ("studio_job_queue_claimable", {}),
            ("studio_job_queue_expired_leases", {}),
        ]
    ]
    assert grown == [3, 1, 2, 1]
    assert after.value("studio_job_queue_oldest_claimable_seconds") >= 60


async def test_queue_read_is_one_statement_with_a_local_timeout(
    http: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    with count_statements(connection) as counter:
        await scrape(http)
    assert len(counter.statements) == 2, counter.statements
    assert "set_config('statement_timeout'" in counter.statements[0]
    assert "generation_jobs" in counter.statements[1]


async def test_pool_connections_in_use_are_reported(
    app: Starlette, http: httpx.AsyncClient
) -> None:
    state: AppState = app.state.studio
    engine = state.engine
    before = (await scrape(http)).value("studio_db_pool_connections_in_use")
    async with engine.connect() as held:
        await held.execute(text("SELECT 1"))
        during = await scrape(http)
    after = (await scrape(http)).value("studio_db_pool_connections_in_use")
    assert during.value("studio_db_pool_connections_in_use") == before + 1
    assert after == before
    assert during.value("studio_db_pool_connections_max") == (
        state.settings.db_pool_size + state.settings.db_max_overflow
    )


# --- who may read them ------------------------------------------------------------------------


AppWith = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def app_with(settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]) -> AppWith:
    """``async with app_with(**settings) as http``: a client of an app with those settings."""

    @asynccontextmanager
    async def client(**overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
        app = create_app(settings.model_copy(update=overrides), sessionmaker=sessionmaker)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://s.test") as http:
                yield http

    return client


async def test_a_configured_token_is_required(app_with: AppWith) -> None:
    async with app_with(metrics_token=METRICS_TOKEN) as http:
        assert (await http.get("/metrics")).status_code == 401
        wrong = await http.get("/metrics", headers={"Authorization": "Bearer not-the-token"})
        assert wrong.status_code == 401
        assert wrong.headers["www-authenticate"].startswith("Bearer")
        right = await http.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
        assert right.status_code == 200
        assert "studio_graphql_operations" in right.text


async def test_metrics_can_be_turned_off(app_with: AppWith) -> None:
    async with app_with(metrics_enabled=False) as http:
        assert (await http.get("/metrics")).status_code == 404


def test_production_serves_metrics_only_with_a_token_unless_enabled(settings: Settings) -> None:
    production = settings.model_copy(update={"env": Environment.PRODUCTION})
    assert not production.metrics_served
    assert production.model_copy(update={"metrics_token": METRICS_TOKEN}).metrics_served
    assert production.model_copy(update={"metrics_enabled": True}).metrics_served
    assert settings.metrics_served  # development


def test_an_empty_token_means_none(settings: Settings) -> None:
    loaded = load_settings(database_url=settings.database_url, metrics_token=" ")
    assert loaded.metrics_token is None


# --- websockets and subscriptions (a real server) ---------------------------------------------


async def test_open_websockets_and_subscriptions_are_reported(
    migrated_database: DatabaseURL,
) -> None:
    settings = load_settings(database_url=migrated_database.render(hide_password=False))
    writer = writer_engine(migrated_database)
    try:
        job = await create_live_job(writer, settings)
        with serve(create_app(settings)) as base_url:
            async with httpx.AsyncClient(base_url=base_url) as http:

                async def gauges() -> tuple[float, float]:
                    metrics = await scrape(http)
                    return (
                        metrics.value("studio_websocket_connections"),
                        metrics.value("studio_graphql_subscriptions_active", field="jobProgress"),
                    )

                assert await gauges() == (0, 0)
                async with open_websocket(base_url) as ws:
                    assert (await ws.init(bearer(job.token)))["type"] == "connection_ack"
                    await ws.subscribe("1", JOB_PROGRESS, {"id": job.job_gid})
                    await ws.next_data("1")  # the current state: the subscription runs
                    assert await gauges() == (1, 1)
                    await ws.stop("1")
                    await wait_for(
                        lambda: _subscriptions_are(http, 0), within=5, what="the end of it"
                    )
                    # A subscription still running when the socket closes ends with it.
                    await ws.subscribe("2", JOB_PROGRESS, {"id": job.job_gid})
                    await ws.next_data("2")
                    assert await gauges() == (1, 1)
                await wait_for(lambda: _websockets_are(http, 0), within=5, what="the close")
                assert await gauges() == (0, 0)
                metrics = await scrape(http)
                assert (
                    metrics.value(
                        "studio_graphql_operations_total",
                        operation_type="subscription",
                        operation_name="Progress",
                        outcome="ok",
                    )
                    == 2
                )
    finally:
        await writer.dispose()


async def _subscriptions_are(http: httpx.AsyncClient, count: int) -> bool:
    metrics = await scrape(http)
    return metrics.value("studio_graphql_subscriptions_active", field="jobProgress") == count


async def _websockets_are(http: httpx.AsyncClient, count: int) -> bool:
    return (await scrape(http)).value("studio_websocket_connections") == count


# --- worker durations -------------------------------------------------------------------------


class QuickScript:
    name = JobStage.SCRIPT
    weight = 1.0

    async def run(
        self, context: StageContext, video: VideoInput, results: Results
    ) -> dict[str, Any]:
        return {"segments": []}


class RefusingVoice:
    name = JobStage.VOICE
    weight = 1.0

    async def run(
        self, context: StageContext, video: VideoInput, results: Results
    ) -> dict[str, Any]:
        raise StageError("No voice for this language.")


async def test_worker_times_each_stage_and_attempt(migrated_database: DatabaseURL) -> None:
    settings = load_settings(
        database_url=migrated_database.render(hide_password=False), inprocess_worker=False
    )
    engine = create_engine(settings)
    process_metrics = WorkerProcessMetrics(
        settings.model_copy(update={"worker_metrics_port": 0, "metrics_token": METRICS_TOKEN}),
        engine,
    )
    try:
        async with committing_sessions(migrated_database) as sessions:
            (job,) = await start_jobs(sessions)
            worker = Worker(
                settings,
                sessions,
                stages=[QuickScript(), RefusingVoice()],
                metrics=process_metrics.worker,
            )
            task = asyncio.create_task(worker.run())

            async def failed() -> bool:
                return (await load_job(sessions, job.id)).status is JobStatus.FAILED

            await wait_for(failed, within=10, what="the job to fail")
            worker.stop()
            await asyncio.wait_for(task, 10)

        # Served by the worker process itself, behind the same token.
        url = f"http://127.0.0.1:{process_metrics.port}/metrics"
        async with httpx.AsyncClient() as http:
            assert (await http.get(url)).status_code == 401
            response = await http.get(url, headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
        assert response.status_code == 200
        metrics = Scrape(response.text)
        stage = "studio_job_stage_duration_seconds_count"
        assert metrics.value(stage, stage="script", outcome="succeeded") == 1
        assert metrics.value(stage, stage="voice", outcome="failed") == 1
        assert metrics.value("studio_job_attempt_duration_seconds_count", outcome="failed") == 1
        assert "studio_db_pool_connections_in_use" in metrics.families
    finally:
        process_metrics.close()
        await engine.dispose()


def test_no_worker_metrics_port_unless_configured(settings: Settings, engine: AsyncEngine) -> None:
    metrics = WorkerProcessMetrics(settings, engine)
    assert metrics.port is None
    metrics.close()
