"""The studio's own GraphiQL, in a real Chromium with no internet: sign in through the page's
URL fragment (as `studio token` prints it), run `{ viewer { email } }`, and create a voice
profile with a sample chosen in the page's upload bar (SPEC §5)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from db.url import DatabaseURL
from tests.app.test_audio import wav_bytes
from tests.support.browser import browser_tools, run_graphiql_smoke
from tests.support.processes import clean_env, running_studio


def test_graphiql_answers_the_viewer_query_offline(
    migrated_database: DatabaseURL, tmp_path: Path
) -> None:
    browser_tools()  # skips (or, in CI, fails) before any server starts when it cannot run
    env = clean_env(DATABASE_URL=migrated_database.render(hide_password=False))
    with running_studio(env, tmp_path, email="graphiql.viewer@example.com") as studio:
        report = run_graphiql_smoke(
            f"{studio.url}/graphql#token={studio.token}",
            "{ viewer { email } }",
            expect="graphiql.viewer@example.com",
        )
    assert report.external == []
    assert report.page_errors == []
    # The fragment never leaves the browser: the token is in no request the server logged.
    assert studio.token not in studio.log.read_text()


CREATE_WITH_SAMPLE = (
    "mutation($input: CreateVoiceProfileInput!) "
    "{ createVoiceProfile(input: $input) { voiceProfile { name sampleUrl } } }"
)


def test_graphiql_uploads_a_voice_sample_chosen_in_the_page(
    migrated_database: DatabaseURL, tmp_path: Path
) -> None:
    browser_tools()
    env = clean_env(
        DATABASE_URL=migrated_database.render(hide_password=False),
        STUDIO_MEDIA_DIR=str(tmp_path / "media"),
    )
    sample = tmp_path / "sample.wav"
    sample.write_bytes(wav_bytes())
    with running_studio(env, tmp_path, email="graphiql.uploader@example.com") as studio:
        report = run_graphiql_smoke(
            f"{studio.url}/graphql#token={studio.token}",
            CREATE_WITH_SAMPLE,
            expect="From GraphiQL",
            variables={"input": {"name": "From GraphiQL"}},
            upload=sample,
        )
        assert report.response is not None
        profile = json.loads(report.response)["data"]["createVoiceProfile"]["voiceProfile"]
        assert profile["name"] == "From GraphiQL"
        assert str(profile["sampleUrl"]).startswith("/media/voice-samples/"), report.response
        served = httpx.get(f"{studio.url}{profile['sampleUrl']}", timeout=10)
    assert served.status_code == 200
    assert served.content == sample.read_bytes()
    assert report.external == []
    assert report.page_errors == []
    assert studio.token not in studio.log.read_text()
