"""The audio half of the render's filter graph: the narration on its timeline, and an optional
quiet music bed ducked under the voice.

**Narration** — each segment's WAV laid on the timeline at its ``start_ms``, padded with
silence (or cut) to the next segment's start, the last one to its end, then silence under the
end card: ``adelay``, ``apad``, ``atrim``, ``concat``. It leaves ``[n]``, which
`app.pipeline.loudness` measures and brings to -16 LUFS.

**Music bed** (``STUDIO_RENDER_MUSIC``) — a soft pad generated here, nothing downloaded: four
chords (I, V, vi, IV) of sine partials in two layers half a bar apart, each swelling in and out
over its bar so that the sum stays level and no chord change ever clicks, in a key and tempo
taken from the video's theme. It is made once, into a WAV file the later passes read (its
expression is the costliest part of the audio), and brought to `MUSIC_LUFS` on its own (measured
like the narration), ducked under the voice with ``sidechaincompress`` keyed by the normalised
narration (about 15 dB quieter while someone speaks, back up in the pauses and on the end card),
and mixed in. The mix is then measured and normalised once more, so the final track is at -16
LUFS with true peaks under -1 dBTP with or without music.
"""

from __future__ import annotations

from collections.abc import Sequence

from app.pipeline.theme import Theme

#: The music bed's own loudness before ducking, far under the voice's -16 LUFS.
MUSIC_LUFS = -34.0
MUSIC_RATE = 16000  # the pad has nothing above ~2 kHz; it is resampled to 48 kHz to be mixed
#: What the bed (made at `MUSIC_RATE`) goes through to be mixed with the narration.
MUSIC_FORMAT = "aresample=48000,aformat=sample_fmts=fltp:channel_layouts=mono"
#: Semitones above the key of each chord's root, and whether it is minor: I, V, vi, IV.
_CHORDS = ((0, False), (7, False), (9, True), (5, False))


def narration_graph(starts: Sequence[int], bounds: Sequence[int], total_ms: int) -> str:
    """Inputs ``0`` to ``len(starts) - 1`` (one WAV a segment) on the timeline, into ``[n]``.
    ``bounds`` are 0, each later segment's start and the last one's end, in ms."""
    parts = []
    count = len(starts)
    for index in range(count):
        span = _seconds(bounds[index + 1] - bounds[index])
        delay = starts[0] if index == 0 else 0
        parts.append(
            f"[{index}:a]aresample=48000,aformat=sample_fmts=fltp:channel_layouts=mono,"
            f"adelay=delays={delay}:all=1,apad=whole_dur={span},atrim=duration={span}[a{index}]"
        )
    labels = "".join(f"[a{index}]" for index in range(count))
    ending = f"apad=whole_dur={_seconds(total_ms)}"  # silence under the end card
    return ";".join([*parts, f"{labels}concat=n={count}:v=0:a=1,{ending}[n]"])


def music_graph(theme: Theme, total_ms: int, label: str = "m") -> str:
    """The music bed for ``total_ms`` at `MUSIC_RATE`, fading in and out, into ``[label]`` (not
    yet at its loudness, nor in the narration's format, `MUSIC_FORMAT`: see the module
    docstring)."""
    draw = theme.draw("music")
    key = 110 * 2 ** (draw.choice(12) / 12)  # A2 and the eleven semitones above it
    bar = draw.between(3.2, 4.8)  # seconds a chord lasts
    seconds = total_ms / 1000
    # Two layers half a bar apart, each swelling in and out over its bar (sin² and cos²: the
    # sum stays level) and changing chord only when it is silent, so nothing ever clicks.
    layers = [_layer(key, bar, shift) for shift in (0.0, 0.5)]
    fade_out = max(0.0, seconds - 2.0)
    return (
        f"aevalsrc='0.2*({layers[0]}+{layers[1]})':s={MUSIC_RATE}:d={seconds:.3f},"
        f"lowpass=f=1800,afade=t=in:d=1.5,afade=t=out:st={fade_out:.3f}:d=2[{label}]"
    )


def _layer(key: float, bar: float, shift: float) -> str:
    """One chord a bar, its bars starting ``shift`` of a bar late."""
    position = f"(t/{bar:.3f}+{shift})"
    chord = f"mod(floor{position},{len(_CHORDS)})"
    voices = []
    for interval, weight in ((0, 0.5), (None, 0.35), (7, 0.3), (12, 0.25), (19, 0.1)):
        steps = "+".join(
            f"eq({chord},{n})*{root + (interval if interval is not None else (3 if minor else 4))}"
            for n, (root, minor) in enumerate(_CHORDS)
        )
        voices.append(f"{weight}*sin(2*PI*{key:.3f}*pow(2,({steps})/12)*t)")
    swell = f"pow(sin(PI*({position}-floor{position})),2)"
    return f"{swell}*({'+'.join(voices)})"


def ducked_mix(voice: str, music: str, label: str = "mix") -> str:
    """``[voice]`` over ``[music]`` ducked by it, into ``[label]``."""
    return (
        f"[{voice}]asplit=2[voice][key];"
        f"[{music}][key]sidechaincompress=threshold=0.01:ratio=20:attack=30:release=500[bed];"
        f"[voice][bed]amix=inputs=2:normalize=0:duration=first[{label}]"
    )


def _seconds(milliseconds: int) -> str:
    return f"{milliseconds / 1000:.3f}"
