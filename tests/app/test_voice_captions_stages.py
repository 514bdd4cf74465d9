"""SCRIPT → VOICE → CAPTIONS → RENDER on real speech: files under the media folder, timed to
the audio, and an attempt that failed, was stopped or is retried leaves nothing of itself in
use."""

from __future__ import annotations

import asyncio
import time
import uuid
import wave
from collections.abc import Callable
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import media
from app.pipeline import render_stage
from app.pipeline.captions import TimedCaptions, timed_cues, webvtt
from app.pipeline.render import RenderError
from app.pipeline.render_stage import FfmpegRender
from app.pipeline.run_media import RunFolder
from app.pipeline.storyboard import END_CARD_MS
from app.pipeline.voice import MIN_SEGMENT_MS, PAUSE_MS, EspeakVoice
from app.settings import Settings, load_settings
from app.worker.pipeline import JobStopped, ProgressMeter, StageContext, StageError, VideoInput
from app.worker.stages import ScriptFromDescription, video_artefacts
from db.models import JobStage, VideoInputType
from tests.factories import make_user, make_voice_profile

DESCRIPTION = (
    "Sunlight is made of photons. When they strike a solar cell, they knock electrons loose, "
    "and the loose electrons flow through the cell's wires as an electric current.\n\n"
    "An inverter turns that current into the kind of power a household uses. Whatever the "
    "house does not use flows back into the grid."
)


class RecordingMeter(ProgressMeter):
    def __init__(self) -> None:
        super().__init__([1.0])
        self.offers: list[float] = []

    def offer(self, stage_index: int, fraction: float) -> None:
        self.offers.append(fraction)
        super().offer(stage_index, fraction)


@pytest.fixture
def media_settings(tmp_path: Path) -> Settings:
    return load_settings(media_dir=tmp_path / "media")


def _video(**overrides: Any) -> VideoInput:
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "title": "How solar panels work",
        "description": DESCRIPTION,
        "input_type": VideoInputType.DESCRIPTION,
        "source_url": None,
        "voice_profile_id": None,
        "audio_settings": {"speed": 1.0, "pitch": 1.0, "volume": 1.0, "language": "en"},
    } | overrides
    return VideoInput(**values)


def _context(
    job_id: uuid.UUID, attempt: int = 1, meter: ProgressMeter | None = None
) -> StageContext:
    return StageContext(
        job_id=job_id,
        attempt=attempt,
        stage_index=0,
        meter=meter or ProgressMeter([1.0]),
        stopped=lambda: None,
    )


async def _run(
    settings: Settings,
    video: VideoInput,
    job_id: uuid.UUID,
    attempt: int = 1,
    *,
    sessionmaker: async_sessionmaker[AsyncSession] | None = None,
    meters: dict[JobStage, ProgressMeter] | None = None,
) -> dict[JobStage, dict[str, Any]]:
    results: dict[JobStage, dict[str, Any]] = {}
    stages = (ScriptFromDescription(), EspeakVoice(settings, sessionmaker), TimedCaptions(settings))
    for stage in stages:
        meter = (meters or {}).get(stage.name)
        results[stage.name] = await stage.run(_context(job_id, attempt, meter), video, results)
    return results


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def _wav_ms(path: Path) -> float:
    with wave.open(str(path), "rb") as file:
        return file.getnframes() * 1000 / file.getframerate()


async def test_a_description_becomes_narration_and_captions_under_the_media_folder(
    media_settings: Settings,
) -> None:
    root = media_settings.resolved_media_dir
    video, job_id = _video(), uuid.uuid4()
    voice_meter = RecordingMeter()
    results = await _run(media_settings, video, job_id, meters={JobStage.VOICE: voice_meter})

    run = RunFolder(video.id, job_id, 1)
    segments = results[JobStage.SCRIPT]["segments"]
    voice = results[JobStage.VOICE]
    assert len(segments) == 3  # the title and two paragraphs
    expected = [f"{run.relative}/voice/{s['index']}.wav" for s in segments]
    expected += [f"{run.relative}/voice/narration.wav"]
    expected += [f"{run.relative}/captions/en.{name}" for name in ("srt", "vtt", "words.vtt")]
    assert _files(root) == sorted(expected)

    # Each segment's timing is its WAV's exact length; segments follow with a pause between.
    timings = voice["timings"]
    assert [t["index"] for t in timings] == [s["index"] for s in segments]
    assert timings[0]["startMs"] == 0
    for timing in timings:
        length = _wav_ms(root / timing["audioPath"])
        assert length >= MIN_SEGMENT_MS
        assert abs((timing["endMs"] - timing["startMs"]) - length) <= 1
    for before, after in pairwise(timings):
        assert abs(after["startMs"] - before["endMs"] - PAUSE_MS) <= 1
    assert voice["durationMs"] == timings[-1]["endMs"]
    assert abs(_wav_ms(root / voice["audioPath"]) - voice["durationMs"]) <= 1
    assert voice["audioPath"] == f"{run.relative}/voice/narration.wav"

    # Progress moved once per segment, forwards, to the end.
    assert len(voice_meter.offers) >= len(segments)
    assert voice_meter.offers == sorted(voice_meter.offers)
    assert voice_meter.offers[-1] == 1.0

    # The captions are the narration's cues, written as files; the tracks name them by path.
    tracks = results[JobStage.CAPTIONS]["tracks"]
    assert tracks == [
        {"language": "en", "format": "vtt", "path": f"{run.relative}/captions/en.vtt"},
        {"language": "en", "format": "srt", "path": f"{run.relative}/captions/en.srt"},
    ]
    texts = {s["index"]: s["text"] for s in segments}
    cues = timed_cues(timings, texts)
    assert (root / tracks[0]["path"]).read_text() == webvtt(cues)
    assert cues[-1].end_ms == voice["durationMs"]
    assert (root / tracks[1]["path"]).read_text().count(" --> ") == len(cues)

    artefacts = video_artefacts(results)
    script, stored_tracks = artefacts["script"], artefacts["caption_tracks"]
    assert [s["startMs"] for s in script["segments"]] == [t["startMs"] for t in timings]
    assert all(
        set(segment) == {"index", "text", "startMs", "endMs"} for segment in script["segments"]
    )
    assert stored_tracks == tracks


async def test_the_video_speed_shortens_the_narration(media_settings: Settings) -> None:
    normal = await _run(media_settings, _video(), uuid.uuid4())
    fast = _video(audio_settings={"speed": 2.0, "language": "en"})
    quick = await _run(media_settings, fast, uuid.uuid4())
    assert quick[JobStage.VOICE]["durationMs"] < 0.7 * normal[JobStage.VOICE]["durationMs"]


async def test_a_retried_attempt_starts_clean(media_settings: Settings) -> None:
    root = media_settings.resolved_media_dir
    video = _video()
    earlier_job, job = uuid.uuid4(), uuid.uuid4()
    await _run(media_settings, video, earlier_job)  # the video's last good run
    first = await _run(media_settings, video, job, attempt=1)
    second = await _run(media_settings, video, job, attempt=2)

    folders = sorted(p.name for p in (root / "videos" / str(video.id)).iterdir())
    assert folders == sorted([f"{earlier_job}.1", f"{job}.2"])
    paths = [t["path"] for t in second[JobStage.CAPTIONS]["tracks"]]
    paths += [t["audioPath"] for t in second[JobStage.VOICE]["timings"]]
    assert all(path.startswith(f"videos/{video.id}/{job}.2/") for path in paths)
    assert all((root / path).is_file() for path in paths)
    assert not any((root / t["path"]).exists() for t in first[JobStage.CAPTIONS]["tracks"])


async def test_a_failed_voice_stage_leaves_no_files(media_settings: Settings) -> None:
    root = media_settings.resolved_media_dir
    video, job = _video(audio_settings={"language": "tlh"}), uuid.uuid4()
    results: dict[JobStage, dict[str, Any]] = {}
    results[JobStage.SCRIPT] = await ScriptFromDescription().run(_context(job), video, results)
    with pytest.raises(StageError, match="The voice 'tlh' is not available"):
        await EspeakVoice(media_settings).run(_context(job), video, results)
    assert _files(root) == []


async def test_a_stopped_voice_stage_leaves_no_files(
    media_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cancelled while a segment's file is being written: the write finishes, then the
    attempt's folder goes, so no file lands after the clean-up."""
    root = media_settings.resolved_media_dir
    video, job = _video(), uuid.uuid4()
    writing = asyncio.Event()
    loop = asyncio.get_running_loop()
    write_file: Callable[..., Path] = media.write_file

    def slow_write(settings: Settings, relative: str, data: bytes) -> Path:
        loop.call_soon_threadsafe(writing.set)
        time.sleep(0.2)
        return write_file(settings, relative, data)

    monkeypatch.setattr(media, "write_file", slow_write)
    results: dict[JobStage, dict[str, Any]] = {}
    results[JobStage.SCRIPT] = await ScriptFromDescription().run(_context(job), video, results)
    stage = asyncio.create_task(EspeakVoice(media_settings).run(_context(job), video, results))
    await writing.wait()
    stage.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stage
    await asyncio.sleep(0.3)  # were a write still under way, it would land by now
    assert _files(root) == []


async def test_the_voice_profile_chooses_the_voice(
    media_settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    async with sessionmaker() as session:
        owner = await make_user(session)
        profile = await make_voice_profile(
            session, owner, language="pt-BR", engine_settings={"rate": 120}
        )
        gone = await make_voice_profile(session, owner, language="de", deleted_at=datetime.now(UTC))
        await session.commit()
    root = media_settings.resolved_media_dir

    slow = await _run(
        media_settings, _video(voice_profile_id=profile.id), uuid.uuid4(), sessionmaker=sessionmaker
    )
    assert slow[JobStage.VOICE]["language"] == "pt-BR"
    assert [t["path"].rsplit("/", 1)[1] for t in slow[JobStage.CAPTIONS]["tracks"]] == [
        "pt-BR.vtt",
        "pt-BR.srt",
    ]
    assert (root / slow[JobStage.CAPTIONS]["tracks"][0]["path"]).is_file()

    # A deleted profile is not used: the video's own language speaks.
    plain = await _run(
        media_settings, _video(voice_profile_id=gone.id), uuid.uuid4(), sessionmaker=sessionmaker
    )
    assert plain[JobStage.VOICE]["language"] == "en"
    normal = await _run(media_settings, _video(), uuid.uuid4())
    # 120 words a minute instead of 175: the profile's rate slows the narration down.
    assert slow[JobStage.VOICE]["durationMs"] > 1.2 * normal[JobStage.VOICE]["durationMs"]


# --- RENDER ---------------------------------------------------------------------------------


async def test_render_writes_the_mp4_and_poster_into_the_attempt_folder(
    media_settings: Settings,
) -> None:
    video, job_id = _video(), uuid.uuid4()
    results = await _run(media_settings, video, job_id)
    meter = RecordingMeter()
    rendered = await FfmpegRender(media_settings).run(_context(job_id, 1, meter), video, results)

    run = RunFolder(video.id, job_id, 1)
    assert (rendered["mediaPath"], rendered["posterPath"]) == (
        f"{run.relative}/video.mp4",
        f"{run.relative}/poster.png",
    )
    # The narration, then the end card.
    assert rendered["durationMs"] == results[JobStage.VOICE]["durationMs"] + END_CARD_MS
    assert rendered["pictures"] == []  # a described video: generated backgrounds only
    root = media_settings.resolved_media_dir
    assert (root / rendered["mediaPath"]).stat().st_size == rendered["sizeBytes"] > 0
    assert (root / rendered["posterPath"]).read_bytes()[:4] == b"\x89PNG"
    assert meter.offers == sorted(meter.offers)
    assert meter.offers[-1] == 1.0
    assert not [p for p in (root / run.relative).iterdir() if p.name.startswith(".")]


async def test_a_failed_render_is_readable_and_leaves_no_attempt_folder(
    media_settings: Settings,
) -> None:
    video, job_id = _video(), uuid.uuid4()
    results = await _run(media_settings, video, job_id)
    root = media_settings.resolved_media_dir
    (root / results[JobStage.VOICE]["timings"][1]["audioPath"]).unlink()

    with pytest.raises(StageError) as failed:
        await FfmpegRender(media_settings).run(_context(job_id), video, results)
    assert failed.value.user_message == "The narration audio of part 2 is missing."
    assert not (root / RunFolder(video.id, job_id, 1).relative).exists()


async def test_a_render_that_runs_out_of_space_fails_as_storage_full(
    media_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ffmpeg reports a full disk in its own words (the system's message for ENOSPC); no file
    system here fills up, so the renderer is replaced by one that fails as ffmpeg does."""
    video, job_id = _video(), uuid.uuid4()
    results = await _run(media_settings, video, job_id)

    async def out_of_space(**kwargs: Any) -> None:
        detail = "[out#0/mp4] Error writing trailer: No space left on device"
        raise RenderError("The video could not be rendered.", detail)

    monkeypatch.setattr(render_stage, "render_video", out_of_space)
    with pytest.raises(media.StorageUnavailable) as failed:
        await FfmpegRender(media_settings).run(_context(job_id), video, results)
    assert failed.value.message == "The studio's media storage is full."
    root = media_settings.resolved_media_dir
    assert not (root / RunFolder(video.id, job_id, 1).relative).exists()


async def test_a_stopped_render_leaves_no_attempt_folder(media_settings: Settings) -> None:
    video, job_id = _video(), uuid.uuid4()
    results = await _run(media_settings, video, job_id)
    stopped = StageContext(
        job_id=job_id,
        attempt=1,
        stage_index=0,
        meter=ProgressMeter([1.0]),
        stopped=lambda: "cancelled",
    )
    with pytest.raises(JobStopped):
        await FfmpegRender(media_settings).run(stopped, video, results)
    root = media_settings.resolved_media_dir
    assert not (root / RunFolder(video.id, job_id, 1).relative).exists()
