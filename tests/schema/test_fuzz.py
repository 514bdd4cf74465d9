"""Fuzzing the GraphQL endpoint: requests drawn from the schema itself (`tests.support.fuzz`),
sent over HTTP as a signed-in user who owns data of every kind, anonymously, or with a bad token.

For every request:

* the HTTP status is below 500;
* every error carries an ``extensions.code`` from SPEC §4's set, and none is ``INTERNAL`` (an
  unexpected error; the traceback the app logged is shown with the failing request);
* nothing is written unless a mutation may have succeeded: a query, a document that does not run,
  or a mutation whose every field was refused leaves ``users``, ``videos``, ``voice_profiles``,
  ``generation_jobs`` and ``audit_events`` exactly as they were (a digest of every row).

A mutation "may have succeeded" when its field has data, or an error sits below the field
(reading the payload failed after the write committed, e.g. ``video { jobs(first: -1) }``).

How many examples: `FUZZ_EXAMPLES` per test by default, with a fixed seed (``derandomize``), so
every run (CI included) tries the same requests and a red build means a change, not luck; with
``STUDIO_FUZZ_EXAMPLES=N`` that many, randomly, each run new ones (Hypothesis prints the seed and
a ``@reproduce_failure`` blob for a failure).

Each example runs in a savepoint that is rolled back, so every example starts from the same rows.

Failures found here have a focused regression test each ("found by fuzzing", below). One found
and not fixed yet would be pinned by a strict xfail, and its inputs set aside (`KNOWN_FAILURES`)
so that the fuzz tests go on finding new ones; there is none today.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from graphql import FieldNode, GraphQLError, OperationDefinitionNode, parse
from hypothesis import HealthCheck, event, given, reject, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from app.errors import SPEC_CODES
from db.models import JobStatus, VideoInputType, VideoStatus
from schema import create_schema
from schema.relay import to_global_id
from tests.factories import make_job, make_user, make_video, make_voice_profile
from tests.support.fuzz import FuzzRequest, RawRequest, graphql_requests, raw_requests
from tests.support.fuzz_values import Seeds
from tests.support.graphql import GraphQLClient

FUZZ_EXAMPLES = 500
_ON_DEMAND = os.environ.get("STUDIO_FUZZ_EXAMPLES")

settings.register_profile(
    "studio-fuzz",
    max_examples=int(_ON_DEMAND) if _ON_DEMAND else FUZZ_EXAMPLES,
    derandomize=not _ON_DEMAND,
    deadline=None,
    database=None,
    print_blob=True,
    # One app, one transaction serve every example (each isolates itself in a savepoint).
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
FUZZ_SETTINGS = settings.get_profile("studio-fuzz")

SCHEMA = create_schema()._schema
TABLES = ("users", "videos", "voice_profiles", "generation_jobs", "audit_events")
# Each table's row count and a digest of all its rows.
_DIGEST = "md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), ''))"
FINGERPRINT = text(
    " UNION ALL ".join(
        f"SELECT '{table}', count(*), {_DIGEST} FROM {table} AS t"  # noqa: S608 (constants)
        for table in TABLES
    )
)

# Known failures, by their xfail test: an example whose every INTERNAL error logged a traceback
# with these lines is set aside. When the xfail turns red, delete its entry here.
KNOWN_FAILURES: dict[str, tuple[str, ...]] = {}

UPDATE_TITLE = """
mutation($input: UpdateVideoInput!) { updateVideo(input: $input) { video { id } } }
"""
CURSORS = """
query($order: VideoOrder) {
  videos(first: 2, orderBy: $order) {
    edges { cursor node { jobs(first: 1) { edges { cursor } } } }
  }
  voiceProfiles(first: 1) { edges { cursor } }
  viewer { auditEvents(first: 1) { edges { cursor } } }
}
"""


class TrackingSessionmaker(async_sessionmaker[AsyncSession]):
    """A sessionmaker that keeps every session it makes (see `_exchange`)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.made: list[AsyncSession] = []

    def __call__(self, **local_kw: Any) -> AsyncSession:
        session = super().__call__(**local_kw)
        self.made.append(session)
        return session


@pytest.fixture
def sessionmaker(connection: AsyncConnection) -> TrackingSessionmaker:
    """conftest's sessionmaker (the app and the test share it), keeping its sessions."""
    return TrackingSessionmaker(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )


class World:
    """The viewer's client and the seeds; a plain class, so that a failing example prints as
    one line rather than every setting."""

    def __init__(self, owner: GraphQLClient, seeds: Seeds) -> None:
        self.owner = owner
        self.seeds = seeds

    def __repr__(self) -> str:
        return f"World({len(self.seeds.every_id())} ids, {len(self.seeds.cursors)} cursors)"


@pytest.fixture
async def world(session: AsyncSession, graphql: GraphQLClient) -> World:
    """A viewer with videos in several states, jobs, voice profiles and an audit trail; a
    stranger with some of each; the global ids of all of them, and real cursors."""
    now = datetime.now(UTC)
    owner, stranger = await make_user(session), await make_user(session)
    profile = await make_voice_profile(session, owner)
    gone_profile = await make_voice_profile(session, owner, name="Gone", deleted_at=now)
    draft = await make_video(session, owner, voice_profile_id=profile.id)
    ready = await make_video(
        session,
        owner,
        title="Ready",
        status=VideoStatus.READY,
        script={"segments": [{"index": 0, "text": "Hello.", "startMs": 0, "endMs": 500}]},
        caption_tracks=[{"language": "en", "format": "vtt", "path": "videos/x/en.vtt"}],
        published_to=[{"target": "local", "url": None, "publishedAt": now.isoformat()}],
    )
    running = await make_video(
        session,
        owner,
        title="From a page",
        input_type=VideoInputType.URL,
        description=None,
        source_url="https://example.com/solar",
        status=VideoStatus.PROCESSING,
    )
    gone_video = await make_video(session, owner, title="Gone", deleted_at=now)
    jobs = [
        await make_job(session, running, status=JobStatus.RUNNING, attempt=1, lease_owner="w"),
        await make_job(session, ready, status=JobStatus.SUCCEEDED, attempt=1, progress=100),
        await make_job(session, draft, status=JobStatus.FAILED, attempt=3, error="No voice."),
        await make_job(session, draft, status=JobStatus.CANCELLED),
    ]
    their_profile = await make_voice_profile(session, stranger)
    their_video = await make_video(session, stranger, status=VideoStatus.READY)
    their_job = await make_job(session, their_video)
    await session.commit()

    client = graphql.as_user(owner.id)
    # An audit trail, written the way every audit event is.
    draft_id = to_global_id("Video", draft.id)
    (await client.execute(UPDATE_TITLE, {"input": {"id": draft_id, "title": "Draft"}})).ok()

    rows: list[tuple[str, Any]] = [
        ("User", owner),
        ("User", stranger),
        ("VoiceProfile", profile),
        ("VoiceProfile", gone_profile),
        ("VoiceProfile", their_profile),
        *(("Video", video) for video in (draft, ready, running, gone_video, their_video)),
        *(("GenerationJob", job) for job in (*jobs, their_job)),
    ]
    ids: dict[str, list[str]] = {}
    for type_name, row in rows:
        ids.setdefault(type_name, []).append(to_global_id(type_name, row.id))
    cursors: list[str] = []
    for field in ("CREATED_AT", "UPDATED_AT", "TITLE"):
        for direction in ("ASC", "DESC"):
            order = {"field": field, "direction": direction}
            data = (await client.execute(CURSORS, {"order": order})).ok()
            cursors += _values_of(data, "cursor")
    events = (await client.execute("{ viewer { auditEvents { edges { node { id } } } } }")).ok()
    ids["AuditEvent"] = _values_of(events, "id")
    seeds = Seeds(
        ids={type_name: tuple(values) for type_name, values in ids.items()},
        cursors=tuple(dict.fromkeys(cursors)),  # in the order read: the same every run
    )
    return World(owner=client, seeds=seeds)


@FUZZ_SETTINGS
@given(data=st.data())
async def test_schema_requests_never_fail_the_server(
    data: st.DataObject,
    world: World,
    session: AsyncSession,
    sessionmaker: TrackingSessionmaker,
    http: httpx.AsyncClient,
) -> None:
    # Drawn here: the seeds (real ids and cursors) exist once the fixture has run.
    request = data.draw(graphql_requests(SCHEMA, world.seeds), label="request")
    token = data.draw(st.sampled_from(("viewer", "viewer", "anonymous", "bad token")), "caller")
    headers = {"Authorization": f"Bearer {world.owner.token}"} if token == "viewer" else {}
    if token == "bad token":
        headers = {"Authorization": "Bearer not-a-token"}
    async with _rolled_back(session):
        before = await _fingerprint(session)
        response, logged = await _exchange(sessionmaker, _send_graphql(http, request, headers))
        body = _json_body(response)
        context = f"{request}\n{response.status_code} {body}\n{''.join(logged)}"
        _set_aside_known_failures(body, logged)
        _assert_no_server_error(response, body, context)
        _record_outcome(token, request, response, body)
        if not (request.is_mutation and _may_have_written(request, body)):
            assert await _fingerprint(session) == before, f"rejected request wrote:\n{context}"


@FUZZ_SETTINGS
@given(request=raw_requests())
async def test_malformed_http_requests_never_fail_the_server(
    request: RawRequest,
    world: World,
    session: AsyncSession,
    sessionmaker: TrackingSessionmaker,
    http: httpx.AsyncClient,
) -> None:
    headers = {"Authorization": f"Bearer {world.owner.token}"} | dict(request.headers)
    async with _rolled_back(session):
        response, logged = await _exchange(
            sessionmaker,
            http.request(
                request.method,
                "/graphql",
                headers=headers,
                content=request.content,
                params=request.params,
                files=request.files,
                data=request.data,
            ),
        )
        body = _json_body(response)
        context = f"{request}\n{response.status_code} {body}\n{''.join(logged)}"
        _set_aside_known_failures(body, logged)
        _assert_no_server_error(response, body, context)


# --- found by fuzzing -----------------------------------------------------------------------


async def test_spread_of_an_undefined_fragment_is_bad_user_input(world: World) -> None:
    """Was INTERNAL: the depth limit's rule looked the fragment up before validation refused it."""
    response = await world.owner.execute("{ viewer { ...Missing } }")
    assert response.codes == ["BAD_USER_INPUT"]


@pytest.mark.parametrize("body", [b"null", b"1", b'"query"', b"true"])
async def test_json_body_that_is_not_an_object_is_refused(
    body: bytes, http: httpx.AsyncClient
) -> None:
    """Was a 500: the view read the body's fields without checking it was an object."""
    response = await http.post(
        "/graphql", content=body, headers={"Content-Type": "application/json"}
    )
    assert 400 <= response.status_code < 500


@pytest.mark.parametrize("url", ["http://[::1", "https://[", "http://]/", "http://host:99999/"])
async def test_unbalanced_bracket_in_source_url_is_bad_user_input(url: str, world: World) -> None:
    """Was INTERNAL: urlsplit raises ValueError for an unbalanced bracket in the host (and for
    a port out of range)."""
    create = "mutation($input: CreateVideoInput!) { createVideo(input: $input) { video { id } } }"
    response = await world.owner.execute(
        create, {"input": {"title": "Solar", "inputType": "URL", "sourceUrl": url}}
    )
    assert response.codes == ["BAD_USER_INPUT"]
    assert response.errors[0]["extensions"]["field"] == "sourceUrl"


async def test_a_refused_field_does_not_cancel_a_load_another_field_shares(
    world: World, sessionmaker: TrackingSessionmaker
) -> None:
    """Was a 500: fields asking for the same page shared one dataloader future, and when a
    refused sibling made graphql-core cancel one of them, the other's CancelledError escaped."""
    video = world.seeds.ids["Video"][0]
    query = (
        "query { viewer { auditEvents(first: -1) { totalCount } videos { totalCount } }"
        f' nodes(ids: ["{video}"]) {{ ... on Video {{ owner {{ videos {{ totalCount }} }} }} }} }}'
    )
    tasks_before = asyncio.all_tasks()
    try:
        response = await world.owner.execute(query)
    except asyncio.CancelledError:
        pytest.fail("CancelledError escaped the app")
    finally:
        leftovers = [t for t in asyncio.all_tasks() - tasks_before if _is_loader_batch(t)]
        await _settle(sessionmaker, leftovers, sessions_before=0)
    assert response.codes == ["BAD_USER_INPUT"]
    assert response.data == {"viewer": None, "nodes": [{"owner": {"videos": {"totalCount": 3}}}]}


async def test_no_loader_batch_outlives_its_request(
    world: World, sessionmaker: TrackingSessionmaker, http: httpx.AsyncClient
) -> None:
    profile, job = world.seeds.ids["VoiceProfile"][0], world.seeds.ids["GenerationJob"][0]
    query = (
        f'query {{ node(id: "{profile}") {{ id ... on AuditEvent {{ action }} }}'
        f' videos(last: -1) {{ totalCount }} generationJob(id: "{job}") {{ attempt }} }}'
    )
    tasks_before = asyncio.all_tasks()
    response = await world.owner.execute(query)
    leftovers = [task for task in asyncio.all_tasks() - tasks_before if _is_loader_batch(task)]
    await _settle(sessionmaker, leftovers, sessions_before=0)  # leave the connection clean
    assert response.codes == ["BAD_USER_INPUT"]
    assert leftovers == []


# --- helpers ------------------------------------------------------------------------------


async def _exchange(
    sessionmaker: TrackingSessionmaker, sending: Awaitable[httpx.Response]
) -> tuple[httpx.Response, list[str]]:
    """The response, and the errors the app logged meanwhile (what an INTERNAL hides).

    No dataloader batch may still be running once the response is out (it would run on the
    request's closed session: `test_no_loader_batch_outlives_its_request`), and no
    CancelledError may escape the app (`test_a_refused_field_does_not_cancel_a_load_another_…`).
    A leftover batch is let finish and the request's sessions closed again before the example
    fails, so that the test's connection is left as the request found it.
    """
    tasks_before, sessions_before = asyncio.all_tasks(), len(sessionmaker.made)
    with _logged_errors() as logged:
        try:
            response: httpx.Response | None = await sending
        except asyncio.CancelledError:
            if _cancelling():
                raise  # the test itself is being cancelled
            response = None  # it escaped the app, where nothing cancelled it
        leftovers = [task for task in asyncio.all_tasks() - tasks_before if _is_loader_batch(task)]
        if leftovers:
            logged += await _settle(sessionmaker, leftovers, sessions_before=sessions_before)
    del sessionmaker.made[sessions_before:]
    assert response is not None, "a CancelledError escaped the app"
    assert not leftovers, f"a loader batch outlived its request: {logged}"
    return response, logged


async def _settle(
    sessionmaker: TrackingSessionmaker, leftovers: list[asyncio.Task[Any]], *, sessions_before: int
) -> list[str]:
    """Let ``leftovers`` finish, then close the sessions made since ``sessions_before`` (again);
    what the leftovers raised, as log lines."""
    outcomes = await asyncio.gather(*leftovers, return_exceptions=True)
    for request_session in sessionmaker.made[sessions_before:]:
        await request_session.close()
    return [f"leftover loader batch: {o!r}\n" for o in outcomes if isinstance(o, BaseException)]


def _set_aside_known_failures(body: dict[str, Any] | None, logged: list[str]) -> None:
    """`reject` the example if its INTERNAL errors are all `KNOWN_FAILURES`."""
    internal = [e for e in (body or {}).get("errors") or [] if _code(e) == "INTERNAL"]
    if not internal or len(logged) != len(internal):
        return
    for name, signature in KNOWN_FAILURES.items():
        if all(all(part in record for part in signature) for record in logged):
            event(f"set aside: {name}")
            reject()


def _code(error: dict[str, Any]) -> str | None:
    code = (error.get("extensions") or {}).get("code")
    return code if isinstance(code, str) else None


def _cancelling() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def _is_loader_batch(task: asyncio.Task[Any]) -> bool:
    return getattr(task.get_coro(), "__qualname__", "") == "dispatch_queue_batch"


async def _send_graphql(
    http: httpx.AsyncClient, request: FuzzRequest, headers: dict[str, str]
) -> httpx.Response:
    if request.method == "GET":
        return await http.get("/graphql", params=request.query_params(), headers=headers)
    return await http.post(
        "/graphql",
        content=request.json_body().encode(),
        headers={"Content-Type": "application/json"} | headers,
    )


def _assert_no_server_error(
    response: httpx.Response, body: dict[str, Any] | None, context: str
) -> None:
    assert response.status_code < 500, context
    errors = (body or {}).get("errors") or []
    codes = [(error.get("extensions") or {}).get("code") for error in errors]
    assert "INTERNAL" not in codes, context
    assert set(codes) <= SPEC_CODES, context


def _record_outcome(
    caller: str, request: FuzzRequest, response: httpx.Response, body: dict[str, Any] | None
) -> None:
    """What the examples reached (``pytest --hypothesis-show-statistics`` lists it)."""
    errors = (body or {}).get("errors") or []
    codes = sorted({(error.get("extensions") or {}).get("code") or "-" for error in errors})
    has_data = any(value is not None for value in ((body or {}).get("data") or {}).values())
    kind = "mutation" if request.is_mutation else "other"
    event(f"{caller}, {kind}: {response.status_code} {'data' if has_data else 'no data'} {codes}")


def _may_have_written(request: FuzzRequest, body: dict[str, Any] | None) -> bool:
    """Whether a mutation field may have committed. Fields run one after another, each in its
    own transaction, and a refused field (all are non-null) nulls ``data`` and stops the rest:
    so nothing was written only if no field has data, no error sits below a field (which
    shows it returned, and its payload was being read), and the refused field was the first.
    """
    if body is None:
        return True  # no GraphQL answer to judge by
    data = body.get("data") or {}
    if any(value is not None for value in data.values()):
        return True
    paths = [error.get("path") or [] for error in body.get("errors") or []]
    if any(len(path) > 1 for path in paths):
        return True
    refused = [path[0] for path in paths if path]
    if not refused:
        return False  # refused before anything ran (parsing, validation, variables)
    fields = _root_fields(request.query, request.operation_name)
    return not fields or refused[0] != fields[0]


def _root_fields(document: str, operation_name: str | None) -> list[str]:
    """The response keys of the operation's top-level fields, in order ([] if unknown)."""
    try:
        parsed = parse(document)
    except (GraphQLError, RecursionError):
        return []
    operations = [d for d in parsed.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        operations = [o for o in operations if o.name and o.name.value == operation_name]
    if len(operations) != 1:
        return []
    selections = operations[0].selection_set.selections
    if not all(isinstance(selection, FieldNode) for selection in selections):
        return []
    return [(s.alias or s.name).value for s in selections if isinstance(s, FieldNode)]


def _json_body(response: httpx.Response) -> dict[str, Any] | None:
    """The GraphQL response, if the body is one (a refused request may answer in plain text)."""
    if "json" not in response.headers.get("content-type", ""):
        return None
    body = response.json()
    return body if isinstance(body, dict) else None


async def _fingerprint(session: AsyncSession) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in await session.execute(FINGERPRINT)]


@asynccontextmanager
async def _rolled_back(session: AsyncSession) -> AsyncIterator[None]:
    savepoint = await session.begin_nested()
    try:
        yield
    finally:
        await savepoint.rollback()


@contextmanager
def _logged_errors() -> Iterator[list[str]]:
    """Error records (with tracebacks) logged while the block runs: what an INTERNAL hides."""
    records: list[str] = []
    handler = _ListHandler(records)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield records
    finally:
        root.removeHandler(handler)


class _ListHandler(logging.Handler):
    def __init__(self, records: list[str]) -> None:
        super().__init__(logging.ERROR)
        self.records = records
        self.setFormatter(logging.Formatter("%(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(self.format(record) + "\n")


def _values_of(data: Any, key: str) -> list[Any]:
    """Every value under ``key`` anywhere in ``data``."""
    if isinstance(data, dict):
        found = [data[key]] if key in data else []
        return found + [value for item in data.values() for value in _values_of(item, key)]
    if isinstance(data, list):
        return [value for item in data for value in _values_of(item, key)]
    return []
