"""VOICE: the script spoken by eSpeak NG or a neural voice, one WAV per segment, timed to the
sample, with where each word is.

Each segment is synthesized on its own (`app.pipeline.speech`) and stored as
``voice/<index>.wav`` in the attempt's folder (`app.pipeline.run_media`); the segments joined with
a pause between them are ``voice/narration.wav``, the track a render lays under the video. The
timings come from the audio itself: a segment starts where the previous one ended plus the pause,
and lasts exactly as long as its samples, so captions and narration cannot drift apart.

The voice is the video's voice profile (its ``language`` and ``engine_settings``) combined with
the video's audio settings, as `app.pipeline.speech.voice_for` describes, spoken by the engine
`app.pipeline.narrator.voice_for` chooses. A profile that was deleted since is not used; the
video's own language picks the voice then.

Results (read by CAPTIONS, RENDER and `app.worker.stages.video_artefacts`)::

    {"timings": [{"index", "startMs", "endMs", "audioPath",
                  "words": [{"text", "startMs", "endMs"}]}],
     "durationMs", "audioPath", "sampleRate", "language", "runFolder", "engine", "voice"}

``audioPath`` values are relative to the media folder; word times, like segment times, are
from the start of the narration, as the synthesizer aligned them (`app.pipeline.alignment`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import media
from app.pipeline import narrator, pace, speech
from app.pipeline.run_media import RunFolder, attempt_work, run_blocking, start_clean
from app.pipeline.voice_profile import profile_settings
from app.settings import Settings
from app.worker.pipeline import Results, StageContext, StageError, VideoInput
from db.models import JobStage

#: The silence between two segments (`app.pipeline.pace` estimates scripts with it), and the
#: shortest a segment is made to last (a segment of punctuation alone says nothing, but its
#: caption still needs a moment on screen).
PAUSE_MS = pace.PAUSE_MS
MIN_SEGMENT_MS = 200


class SynthesizedVoice:
    """Narration synthesized by eSpeak NG or a Piper voice. ``sessionmaker`` reads the video's
    voice profile; without one (stage-level tests) the video's audio settings alone choose."""

    name = JobStage.VOICE
    weight = 2.0

    def __init__(
        self,
        settings: Settings,
        sessionmaker: async_sessionmaker[AsyncSession] | None = None,
        *,
        delay_seconds: float = 0.0,
    ) -> None:
        self.settings = settings
        self.sessionmaker = sessionmaker
        #: Test-only (``STUDIO_PIPELINE_STAGE_DELAY_MS``): extra time the stage takes once its
        #: files are written, so that tests can stop a job mid-stage.
        self.delay_seconds = delay_seconds

    async def run(
        self, context: StageContext, video: VideoInput, results: Results
    ) -> dict[str, Any]:
        run = RunFolder.of(context, video)
        await run_blocking(start_clean, self.settings, run)
        async with attempt_work(self.settings, run, test_delay=self.delay_seconds):
            return await self._narrate(context, video, results, run)

    async def _narrate(
        self, context: StageContext, video: VideoInput, results: Results, run: RunFolder
    ) -> dict[str, Any]:
        engine_settings, profile_language = await profile_settings(
            self.sessionmaker, video.voice_profile_id
        )
        voice = narrator.voice_for(
            engine_settings=engine_settings,
            profile_language=profile_language,
            audio_settings=video.audio_settings,
            neural_voice=self.settings.neural_voice,
        )
        segments = list(results[JobStage.SCRIPT]["segments"])
        total_chars = sum(len(str(segment["text"])) for segment in segments) or 1
        rate = await run_blocking(narrator.sample_rate, voice)
        pause = speech.silence(PAUSE_MS, rate)
        parts: list[speech.Speech] = []
        timings: list[dict[str, Any]] = []
        position = 0  # in samples, so that rounding to milliseconds never accumulates
        spoken_chars = 0
        for number, segment in enumerate(segments):
            text = str(segment["text"])
            said = await self._say(text, voice)
            if said.duration_ms < MIN_SEGMENT_MS:
                padding = speech.silence(MIN_SEGMENT_MS, rate).pcm[len(said.pcm) :]
                said = speech.Speech(said.pcm + padding, rate, said.words)
            path = run.file("voice", f"{int(segment['index'])}.wav")
            await run_blocking(media.write_file, self.settings, path, speech.wav_bytes(said))
            if number:
                parts.append(pause)
                position += pause.samples
            timings.append(
                {
                    "index": segment["index"],
                    "startMs": _ms(position, rate),
                    "endMs": _ms(position + said.samples, rate),
                    "audioPath": path,
                    "words": [
                        {
                            "text": word.text,
                            "startMs": _ms(position + word.start, rate),
                            "endMs": _ms(position + word.end, rate),
                        }
                        for word in said.words
                    ],
                }
            )
            parts.append(said)
            position += said.samples
            spoken_chars += len(text)
            context.report(0.95 * spoken_chars / total_chars)
        narration = speech.concatenate(parts, rate)
        narration_path = run.file("voice", "narration.wav")
        await run_blocking(
            media.write_file, self.settings, narration_path, speech.wav_bytes(narration)
        )
        context.report(1.0)
        return {
            "timings": timings,
            "durationMs": _ms(position, rate),
            "audioPath": narration_path,
            "sampleRate": rate,
            "language": profile_language or str(video.audio_settings.get("language") or "en"),
            "runFolder": run.relative,
            "engine": voice.engine,
            "voice": voice.name,
        }

    async def _say(self, text: str, voice: speech.Voice) -> speech.Speech:
        try:
            return await narrator.synthesize(text, voice)
        except speech.VoiceNotFound as exc:
            raise StageError(str(exc)) from exc
        except speech.SpeechError as exc:
            raise StageError(f"The narration could not be synthesized: {exc}") from exc


#: The stage's name before the neural voice came (bench/ and older tests use it).
EspeakVoice = SynthesizedVoice


def _ms(samples: int, rate: int) -> int:
    return round(samples * 1000 / rate)
