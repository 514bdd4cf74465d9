"""``studio purge --older-than AGE``: remove for good what was deleted, or replaced, long ago.

1. Videos and voice profiles deleted more than AGE ago lose their rows (a video's generation
   jobs go with it), and the job and video state histories what they recorded more than AGE ago
   — in one transaction, committed before any file is touched.
2. Then the media folder is swept. A file goes when nothing refers to it any more and it is
   older than AGE:

   - ``videos/<video>/<job>.<attempt>/`` — a run folder that is not the one the video's media
     and captions are in, and not its queued or running job's (the runs a newer run replaced,
     failed runs' leftovers), and every folder of a video that has no row;
   - ``voice-samples/<profile>/`` and ``voice-previews/<profile>/`` of profiles that have no row.

Files are judged by their own age, so a run that starts while the sweep goes on is never
touched. A purge that stops half way (a crash, a full disk) leaves only files that nothing
refers to, and the next purge removes them. A purged video or profile cannot be restored.
"""

from __future__ import annotations

import logging
import re
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import media
from app.pipeline.preview import PREVIEWS
from app.pipeline.run_media import VIDEOS
from app.settings import Settings
from db.queries import purge as queries

logger = logging.getLogger(__name__)

_AGE = re.compile(r"\s*(\d+)\s*([smhdw])\s*")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_BATCH = 500


def parse_age(text: str) -> timedelta:
    """``30d``, ``12h``, ``90m``, ``45s`` or ``2w``; `ValueError` for anything else."""
    match = _AGE.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not an age such as 30d, 12h, 90m, 45s or 2w")
    return timedelta(**{_UNITS[match[2]]: int(match[1])})


@dataclass
class PurgeReport:
    videos: list[uuid.UUID] = field(default_factory=list)
    voice_profiles: list[uuid.UUID] = field(default_factory=list)
    folders: list[str] = field(default_factory=list)  # relative to the media folder
    bytes: int = 0
    state_changes: int = 0


async def purge(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    older_than: timedelta,
    *,
    dry_run: bool = False,
    now: datetime | None = None,
) -> PurgeReport:
    """Purge what was deleted (or replaced) before ``now - older_than``; with ``dry_run``, only
    report what would go."""
    cutoff = (now or datetime.now(UTC)) - older_than
    report = PurgeReport()
    async with sessionmaker.begin() as session:
        rows = await queries.purge_deleted(session, cutoff, dry_run=dry_run)
    report.videos, report.voice_profiles = rows.videos, rows.voice_profiles
    report.state_changes = rows.state_changes
    gone_videos, gone_profiles = set(rows.videos), set(rows.voice_profiles)
    root = media.media_root(settings)
    for folder in await _unused_run_folders(root, sessionmaker, cutoff.timestamp(), gone_videos):
        _remove(root, folder, report, dry_run)
    for kind in (media.VOICE_SAMPLES, PREVIEWS):
        for folder in await _unused_profile_folders(
            root / kind, sessionmaker, cutoff.timestamp(), gone_profiles
        ):
            _remove(root, folder, report, dry_run)
    return report


async def _unused_run_folders(
    root: Path,
    sessionmaker: async_sessionmaker[AsyncSession],
    cutoff: float,
    purged: set[uuid.UUID],
) -> list[Path]:
    unused: list[Path] = []
    for batch in _batches(_id_folders(root / VIDEOS)):
        async with sessionmaker() as session:
            in_use = await queries.files_in_use(session, [video_id for video_id, _ in batch])
        for video_id, folder in batch:
            kept = in_use.get(video_id) if video_id not in purged else None
            for run in _subfolders(folder):
                if (kept is None or run.name not in kept.runs_in_use) and _older(run, cutoff):
                    unused.append(run)
    return unused


async def _unused_profile_folders(
    parent: Path,
    sessionmaker: async_sessionmaker[AsyncSession],
    cutoff: float,
    purged: set[uuid.UUID],
) -> list[Path]:
    unused: list[Path] = []
    for batch in _batches(_id_folders(parent)):
        async with sessionmaker() as session:
            existing = await queries.existing_profiles(session, [pid for pid, _ in batch])
        for profile_id, folder in batch:
            gone = profile_id in purged or profile_id not in existing
            if gone and _older(folder, cutoff):
                unused.append(folder)
    return unused


def _id_folders(parent: Path) -> Iterator[tuple[uuid.UUID, Path]]:
    """The folders in ``parent`` named by an id (anything else there is left alone)."""
    for folder in _subfolders(parent):
        try:
            yield uuid.UUID(folder.name), folder
        except ValueError:
            logger.warning("purge: leaving %s alone (not named by an id)", folder)


def _subfolders(parent: Path) -> list[Path]:
    if not parent.is_dir():
        return []
    return sorted(p for p in parent.iterdir() if p.is_dir() and not p.is_symlink())


def _batches(
    items: Iterator[tuple[uuid.UUID, Path]],
) -> Iterator[list[tuple[uuid.UUID, Path]]]:
    batch: list[tuple[uuid.UUID, Path]] = []
    for item in items:
        batch.append(item)
        if len(batch) == _BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _older(folder: Path, cutoff: float) -> bool:
    """Whether nothing in ``folder`` (the folder included) changed after ``cutoff``."""
    return all(
        path.lstat().st_mtime < cutoff for path in [folder, *folder.rglob("*")] if path.exists()
    )


def _remove(root: Path, folder: Path, report: PurgeReport, dry_run: bool) -> None:
    size = sum(p.lstat().st_size for p in folder.rglob("*") if p.is_file())
    report.folders.append(folder.relative_to(root).as_posix())
    report.bytes += size
    if not dry_run:
        shutil.rmtree(folder, ignore_errors=True)
        parent = folder.parent
        if parent.parent == root / VIDEOS and not any(parent.iterdir()):
            parent.rmdir()  # the video's folder, now empty
