"""A voice profile's eSpeak NG settings through GraphQL: set on create, merged on update, checked
field by field, audited, heard in the preview and the narration, and private to the owner."""

from __future__ import annotations

import io
import wave
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import media
from app.pipeline import preview, speech
from app.pipeline.voice import EspeakVoice
from app.settings import Settings
from app.worker.pipeline import VideoInput
from app.worker.stages import ScriptFromDescription
from db import models
from db.models import AuditEvent, JobStage, VoiceProfile
from schema.relay import from_global_id, to_global_id
from tests.factories import make_user, make_voice_profile
from tests.support.graphql import GraphQLClient, GraphQLResponse
from tests.support.stages import stage_context

SETTINGS = "engineSettings { voice variant rate pitch volume }"
CREATE = f"""
mutation Create($input: CreateVoiceProfileInput!) {{
  createVoiceProfile(input: $input) {{ voiceProfile {{ id previewUrl {SETTINGS} }} }}
}}
"""
UPDATE = f"""
mutation Update($input: UpdateVoiceProfileInput!) {{
  updateVoiceProfile(input: $input) {{ voiceProfile {{ id previewUrl {SETTINGS} }} }}
}}
"""
READ = f"query($id: ID!) {{ node(id: $id) {{ ... on VoiceProfile {{ {SETTINGS} }} }} }}"
NONE = {"voice": None, "variant": None, "rate": None, "pitch": None, "volume": None}


@pytest.fixture
def app_settings(media_settings: Settings) -> Settings:
    return media_settings


@pytest.fixture
def client(graphql: GraphQLClient, owner: models.User) -> GraphQLClient:
    return graphql.as_user(owner.id)


@dataclass(frozen=True)
class Snapshot:
    profiles: list[tuple[str, dict[str, Any]]]
    events: int
    files: list[str]


async def _snapshot(session: AsyncSession, media_settings: Settings) -> Snapshot:
    session.expire_all()
    rows = (await session.execute(select(VoiceProfile.name, VoiceProfile.engine_settings))).all()
    events = await session.scalar(select(func.count()).select_from(AuditEvent))
    root = media_settings.resolved_media_dir
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    return Snapshot(sorted((name, dict(stored)) for name, stored in rows), int(events or 0), files)


async def _create(client: GraphQLClient, **fields: Any) -> dict[str, Any]:
    response = await client.execute(CREATE, {"input": {"name": "Narrator"} | fields})
    profile: dict[str, Any] = response.ok()["createVoiceProfile"]["voiceProfile"]
    return profile


async def _update(client: GraphQLClient, profile_id: str, **fields: Any) -> GraphQLResponse:
    return await client.execute(UPDATE, {"input": {"id": profile_id} | fields})


async def _stored(session: AsyncSession, profile_id: str) -> dict[str, Any]:
    session.expire_all()
    row = await session.get(VoiceProfile, from_global_id(profile_id)[1])
    assert row is not None
    return dict(row.engine_settings)


def _path(url: str) -> str:
    return url.removeprefix(media.URL_PREFIX).split("?", 1)[0]


def _seconds(response: httpx.Response) -> float:
    assert response.status_code == 200
    with wave.open(io.BytesIO(response.content), "rb") as file:
        return file.getnframes() / file.getframerate()


# --- create and read ------------------------------------------------------------------------------


async def test_settings_given_on_create_are_stored_and_read_back(
    session: AsyncSession, client: GraphQLClient
) -> None:
    """Names are stored as eSpeak spells them (``EN-US`` → ``en-us``, ``alex`` → ``Alex``)."""
    given = {"voice": " EN-US ", "variant": "alex", "rate": 220, "pitch": 60, "volume": 150}
    profile = await _create(client, engineSettings=given)
    expected = {"voice": "en-us", "variant": "Alex", "rate": 220, "pitch": 60, "volume": 150}
    assert profile["engineSettings"] == expected
    read = await client.execute(READ, {"id": profile["id"]})
    assert read.ok()["node"]["engineSettings"] == expected
    assert await _stored(session, profile["id"]) == expected
    event = await session.scalar(
        select(AuditEvent).where(AuditEvent.action == "voice_profile.create")
    )
    assert event is not None
    assert event.diff["engine_settings"] == expected


@pytest.mark.parametrize("given", [None, {}, {"rate": None, "voice": None}])
async def test_without_settings_every_field_is_null(
    session: AsyncSession, client: GraphQLClient, given: dict[str, Any] | None
) -> None:
    profile = await _create(client, engineSettings=given)
    assert profile["engineSettings"] == NONE
    assert await _stored(session, profile["id"]) == {}


async def test_stored_settings_are_read_as_synthesis_reads_them(
    session: AsyncSession, owner: models.User, client: GraphQLClient
) -> None:
    """Settings written before the API checked them: what synthesis would ignore reads null."""
    stored = {"voice": "en-gb+f3", "rate": "fast", "pitch": 55.6, "volume": 2**40, "x": 1}
    profile = await make_voice_profile(session, owner, engine_settings=stored)
    await session.commit()
    read = await client.execute(READ, {"id": to_global_id("VoiceProfile", profile.id)})
    assert read.ok()["node"]["engineSettings"] == NONE | {"voice": "en-gb+f3", "pitch": 56}


# --- invalid values change nothing ----------------------------------------------------------------

INVALID = [
    ({"rate": 79}, "rate", "between 80 and 450"),
    ({"rate": 451}, "rate", "between 80 and 450"),
    ({"pitch": -1}, "pitch", "between 0 and 100"),
    ({"pitch": 101}, "pitch", "between 0 and 100"),
    ({"volume": -1}, "volume", "between 0 and 200"),
    ({"volume": 201}, "volume", "between 0 and 200"),
    ({"voice": "xx"}, "voice", "'xx' is not one"),
    ({"voice": "en-gb"}, "voice", "('en' is)"),
    ({"voice": "fo"}, "voice", "not one"),  # listed by eSpeak, but its dictionary is not shipped
    ({"voice": "en-us+f3"}, "voice", "set `engineSettings.variant`"),
    ({"voice": "  "}, "voice", "must not be blank"),
    ({"voice": "../../etc/passwd"}, "voice", "not one"),
    ({"variant": "f9"}, "variant", "'f9' is not one"),
    ({"variant": ""}, "variant", "must not be blank"),
    ({"rate": 200, "pitch": 500}, "pitch", "between 0 and 100"),
]


@pytest.mark.parametrize(("given", "key", "message"), INVALID)
async def test_an_invalid_setting_on_create_is_named_and_nothing_is_written(
    session: AsyncSession,
    client: GraphQLClient,
    media_settings: Settings,
    given: dict[str, Any],
    key: str,
    message: str,
) -> None:
    before = await _snapshot(session, media_settings)
    response = await client.execute(
        CREATE, {"input": {"name": "Narrator", "engineSettings": given}}
    )
    assert response.codes == ["BAD_USER_INPUT"]
    assert response.errors[0]["extensions"]["field"] == f"engineSettings.{key}"
    assert message in response.errors[0]["message"]
    assert await _snapshot(session, media_settings) == before


@pytest.mark.parametrize(("given", "key", "message"), INVALID)
async def test_an_invalid_setting_on_update_is_named_and_nothing_is_written(
    session: AsyncSession,
    client: GraphQLClient,
    media_settings: Settings,
    given: dict[str, Any],
    key: str,
    message: str,
) -> None:
    profile = await _create(client, engineSettings={"voice": "de", "rate": 150})
    before = await _snapshot(session, media_settings)
    response = await _update(client, profile["id"], name="Renamed", engineSettings=given)
    assert response.codes == ["BAD_USER_INPUT"]
    assert response.errors[0]["extensions"]["field"] == f"engineSettings.{key}"
    assert message in response.errors[0]["message"]
    assert await _snapshot(session, media_settings) == before


async def test_engine_settings_null_on_update_is_refused(
    session: AsyncSession, client: GraphQLClient, media_settings: Settings
) -> None:
    """Null could mean "keep" or "clear all": the client says which, a key at a time."""
    profile = await _create(client, engineSettings={"rate": 150})
    before = await _snapshot(session, media_settings)
    response = await _update(client, profile["id"], engineSettings=None)
    assert response.codes == ["BAD_USER_INPUT"]
    assert response.errors[0]["extensions"]["field"] == "engineSettings"
    assert await _snapshot(session, media_settings) == before


# --- update merges ------------------------------------------------------------------------------


async def test_update_replaces_given_keys_clears_null_ones_and_keeps_the_rest(
    session: AsyncSession, client: GraphQLClient
) -> None:
    profile = await _create(client, engineSettings={"voice": "en-us", "rate": 200, "pitch": 40})
    gid = profile["id"]
    start = {"voice": "en-us", "rate": 200, "pitch": 40}

    changed = await _update(client, gid, engineSettings={"pitch": 70, "volume": 150})
    merged = {"voice": "en-us", "rate": 200, "pitch": 70, "volume": 150}
    assert changed.ok()["updateVoiceProfile"]["voiceProfile"]["engineSettings"] == NONE | merged
    assert await _stored(session, gid) == merged

    cleared = await _update(client, gid, engineSettings={"rate": None, "variant": "m2"})
    final = {"voice": "en-us", "variant": "m2", "pitch": 70, "volume": 150}
    assert cleared.ok()["updateVoiceProfile"]["voiceProfile"]["engineSettings"] == NONE | final
    # Neither leaving engineSettings out nor giving it empty changes it.
    (await _update(client, gid, name="Renamed")).ok()
    (await _update(client, gid, engineSettings={})).ok()
    assert await _stored(session, gid) == final

    events = (
        await session.scalars(
            select(AuditEvent)
            .where(AuditEvent.action == "voice_profile.update")
            .order_by(AuditEvent.created_at)
        )
    ).all()
    assert [event.diff.get("engine_settings") for event in events] == [
        [start, merged],
        [merged, final],
        None,  # the rename
        None,  # nothing changed
    ]


async def test_update_keeps_stored_keys_the_api_does_not_name(
    session: AsyncSession, owner: models.User, client: GraphQLClient
) -> None:
    profile = await make_voice_profile(session, owner, engine_settings={"language": "de"})
    await session.commit()
    gid = to_global_id("VoiceProfile", profile.id)
    (await _update(client, gid, engineSettings={"rate": 300})).ok()
    assert await _stored(session, gid) == {"language": "de", "rate": 300}


# --- the settings are heard ---------------------------------------------------------------------


async def test_changing_the_settings_makes_a_new_preview_in_the_new_voice(
    client: GraphQLClient, http: httpx.AsyncClient, media_settings: Settings
) -> None:
    profile = await _create(client, name="Ada", engineSettings={"rate": 100})
    slow_url = profile["previewUrl"]
    slow = _seconds(await http.get(slow_url))

    # The same settings again: the same preview.
    same = await _update(client, profile["id"], engineSettings={"rate": 100})
    assert _path(same.ok()["updateVoiceProfile"]["voiceProfile"]["previewUrl"]) == _path(slow_url)

    faster = await _update(client, profile["id"], engineSettings={"rate": 400})
    fast_url = faster.ok()["updateVoiceProfile"]["voiceProfile"]["previewUrl"]
    assert _path(fast_url) != _path(slow_url)
    assert (await http.get(slow_url)).status_code == 404  # the old voice is not served
    fast = _seconds(await http.get(fast_url))
    assert slow > 2 * fast
    root = media_settings.resolved_media_dir
    previews = sorted(str(p.relative_to(root)) for p in (root / preview.PREVIEWS).rglob("*.wav"))
    assert previews == [_path(fast_url)]  # fetching the current one pruned the old file


async def test_the_settings_reach_the_narration(
    session: AsyncSession,
    client: GraphQLClient,
    media_settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """Two profiles that differ in rate only: the VOICE stage speaks one far slower."""
    durations = {}
    for rate in (100, 350):
        profile = await _create(client, engineSettings={"voice": "en-us", "rate": rate})
        created = await client.execute(
            "mutation($input: CreateVideoInput!) { createVideo(input: $input) { video { id } } }",
            {
                "input": {
                    "title": "Solar power",
                    "inputType": "DESCRIPTION",
                    "description": "Sunlight knocks electrons loose in a solar cell. "
                    "The loose electrons flow through wires as a current.",
                    "voiceProfileId": profile["id"],
                }
            },
        )
        video_id = from_global_id(created.ok()["createVideo"]["video"]["id"])[1]
        video = await session.get(models.Video, video_id)
        assert video is not None
        durations[rate] = await _narration_ms(media_settings, sessionmaker, VideoInput.of(video))
    assert durations[100] > 2 * durations[350]


async def _narration_ms(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], video: VideoInput
) -> int:
    context = stage_context()
    results: dict[JobStage, dict[str, Any]] = {}
    results[JobStage.SCRIPT] = await ScriptFromDescription().run(context, video, results)
    voice = await EspeakVoice(settings, sessionmaker).run(context, video, results)
    return int(voice["durationMs"])


def test_the_catalog_lists_voices_synthesis_finds_by_name() -> None:
    catalog = speech.catalog()
    assert {"en", "en-us", "de", "pt-br", "fr"} <= catalog.voices
    assert {"f3", "m2", "klatt", "Alex"} <= catalog.variants
    # Language tags that only a voice's header mentions are not names eSpeak looks up.
    assert not {"en-gb", "zh", "fo"} & catalog.voices
    assert all(name == name.lower() for name in catalog.voices)
    for name in ("en-us", "de", "pt-br"):
        speech.synthesize_blocking("a", voice=f"{name}+f3")


# --- ownership ----------------------------------------------------------------------------------


async def test_another_user_cannot_read_or_change_the_settings(
    session: AsyncSession,
    client: GraphQLClient,
    graphql: GraphQLClient,
    media_settings: Settings,
) -> None:
    profile = await _create(client, engineSettings={"voice": "de", "rate": 150})
    stranger = await make_user(session)
    await session.commit()
    other = graphql.as_user(stranger.id)
    before = await _snapshot(session, media_settings)

    read = await other.execute(READ, {"id": profile["id"]})
    assert read.codes == ["NOT_FOUND"]
    listed = await other.execute(f"{{ voiceProfiles {{ edges {{ node {{ {SETTINGS} }} }} }} }}")
    assert listed.ok() == {"voiceProfiles": {"edges": []}}
    changed = await _update(other, profile["id"], engineSettings={"rate": 400, "voice": None})
    assert changed.codes == ["NOT_FOUND"]
    assert await _snapshot(session, media_settings) == before


async def test_the_voice_catalog_lists_what_the_settings_accept(
    client: GraphQLClient, graphql: GraphQLClient
) -> None:
    catalog = (await client.execute("{ voiceCatalog { voices variants } }")).ok()["voiceCatalog"]
    assert {"en", "en-us", "de"} <= set(catalog["voices"])
    assert {"f3", "m2"} <= set(catalog["variants"])
    assert catalog["voices"] == sorted(catalog["voices"])
    some_voice, some_variant = catalog["voices"][-1], catalog["variants"][0]
    created = await client.execute(
        CREATE,
        {
            "input": {
                "name": "Listed",
                "engineSettings": {"voice": some_voice, "variant": some_variant},
            }
        },
    )
    assert (
        created.ok()["createVoiceProfile"]["voiceProfile"]["engineSettings"]["voice"] == some_voice
    )
    anonymous = await graphql.execute("{ voiceCatalog { voices } }")
    assert anonymous.codes == ["UNAUTHENTICATED"]


async def test_the_voice_catalog_lists_both_engines_and_a_profile_can_pick_the_neural_voice(
    client: GraphQLClient, http: httpx.AsyncClient
) -> None:
    query = "{ voiceCatalog { voices engines { name voices variants languages pitch licence } } }"
    catalog = (await client.execute(query)).ok()["voiceCatalog"]
    espeak, neural = catalog["engines"]
    assert (espeak["name"], espeak["pitch"], neural["name"], neural["pitch"]) == (
        "espeak",
        True,
        "piper",
        False,
    )
    assert "en-us" in espeak["voices"]
    assert "f3" in espeak["variants"]
    assert (neural["voices"], neural["variants"], neural["languages"]) == (
        ["en_US-joe-medium"],
        [],
        ["en-us"],
    )
    assert "GPL" in espeak["licence"]
    assert "lessac" in neural["licence"]
    assert set(catalog["voices"]) == set(espeak["voices"]) | set(neural["voices"])

    profile = await _create(client, engineSettings={"voice": "en_us-JOE-medium", "rate": 200})
    assert profile["engineSettings"] == NONE | {"voice": "en_US-joe-medium", "rate": 200}
    # Its preview is the neural voice speaking "Hello, this is Narrator." at 200 words a minute.
    spoken = _seconds(await http.get(profile["previewUrl"]))
    assert 0.8 < spoken < 3
