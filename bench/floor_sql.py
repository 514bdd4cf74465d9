"""The floor's SQL: one statement per query that builds the whole GraphQL response as JSON.

Each statement reads what the studio reads, with the same filters: the viewer's account must be
active (``users.deleted_at IS NULL``, as ``Context.require_viewer``), only the viewer's live
videos and voice profiles are seen (``db.queries.videos`` / ``voice_profiles``), and jobs are
those of the viewer's live videos (``db.queries.jobs.owned_by``). Orders are the studio's:
videos by ``created_at DESC, id DESC`` (``VideoOrder``'s default), jobs and the latest job by
``queued_at DESC, id DESC`` (``JOB_ORDERING``, ``latest_for_videos``). Values are written the
way the studio writes them: Relay ids as ``schema.relay.to_global_id`` (unpadded base64url of
``Type:uuid``) and timestamps as Python's ``datetime.isoformat()`` in UTC (no fraction when it is
zero), so the two answers are equal value for value.

Parameters: ``$1`` the viewer's id; ``$2`` (small) the video's id.
"""

from __future__ import annotations


def global_id(type_name: str, column: str) -> str:
    """``to_global_id``: base64url without padding (``encode`` wraps long lines; none are kept).
    Three ``replace`` calls cost a third of one ``translate``."""
    encoded = f"encode(convert_to('{type_name}:' || {column}::text, 'UTF8'), 'base64')"
    return f"rtrim(replace(replace(replace({encoded}, '+', '-'), '/', '_'), E'\\n', ''), '=')"


def enum(column: str) -> str:
    """An enum column's label (as text, JSON takes it without looking up the enum's output)."""
    return f"{column}::text"


def timestamp(column: str) -> str:
    """``datetime.isoformat()`` of a ``timestamptz`` as asyncpg returns it (UTC)."""
    utc = f"({column} AT TIME ZONE 'UTC')"
    return (
        f"to_char({utc}, 'YYYY-MM-DD\"T\"HH24:MI:SS')"
        f" || CASE WHEN date_trunc('second', {utc}) = {utc} THEN ''"
        f" ELSE to_char({utc}, '.US') END || '+00:00'"
    )


def _jobs(video: str, fields: str, limit: int = 5) -> str:
    """``jobs(first: limit) { edges { node { … } } }`` of one video, newest first."""
    return f"""json_build_object('edges', COALESCE((
        SELECT json_agg(json_build_object('node', json_build_object({fields}))
                        ORDER BY j.queued_at DESC, j.id DESC)
        FROM (SELECT * FROM generation_jobs
              WHERE video_id = {video}.id
              ORDER BY queued_at DESC, id DESC
              LIMIT {limit}) AS j
    ), '[]'::json))"""


def _viewer_videos(node: str, limit: int) -> str:
    """``{ viewer { videos(first: limit) { edges { node { … } } } } }`` as the response."""
    return f"""SELECT json_build_object('data', json_build_object('viewer', (
        SELECT json_build_object('videos', json_build_object('edges', COALESCE((
            SELECT json_agg(json_build_object('node', json_build_object({node}))
                            ORDER BY v.created_at DESC, v.id DESC)
            FROM (SELECT * FROM videos
                  WHERE user_id = u.id AND deleted_at IS NULL
                  ORDER BY created_at DESC, id DESC
                  LIMIT {limit}) AS v
        ), '[]'::json)))
        FROM users AS u
        WHERE u.id = $1 AND u.deleted_at IS NULL
    )))::text"""


PAGE_SQL = _viewer_videos(
    f"""'id', {global_id("Video", "v.id")},
        'title', v.title,
        'description', v.description,
        'status', {enum("v.status")},
        'progress', v.progress,
        'createdAt', {timestamp("v.created_at")},
        'updatedAt', {timestamp("v.updated_at")},
        'voiceProfile', (
            SELECT json_build_object('name', p.name) FROM voice_profiles AS p
            WHERE p.id = v.voice_profile_id AND p.user_id = $1 AND p.deleted_at IS NULL),
        'latestJob', (
            SELECT json_build_object(
                'status', {enum("l.status")}, 'stage', {enum("l.stage")}, 'progress', l.progress)
            FROM generation_jobs AS l
            WHERE l.video_id = v.id
            ORDER BY l.queued_at DESC, l.id DESC
            LIMIT 1)""",
    limit=20,
)

_NESTED_JOB = (
    f"'id', {global_id('GenerationJob', 'j.id')}, 'status', {enum('j.status')}, "
    f"'stage', {enum('j.stage')}, 'progress', j.progress"
)
_SMALL_JOB = (
    f"'id', {global_id('GenerationJob', 'j.id')}, 'status', {enum('j.status')}, "
    "'progress', j.progress"
)

NESTED_SQL = _viewer_videos(
    f"""'id', {global_id("Video", "v.id")},
        'title', v.title,
        'jobs', {_jobs("v", _NESTED_JOB)}""",
    limit=100,
)

SMALL_SQL = f"""SELECT json_build_object('data', json_build_object('video', (
    SELECT json_build_object(
        'id', {global_id("Video", "v.id")},
        'title', v.title,
        'status', {enum("v.status")},
        'jobs', {_jobs("v", _SMALL_JOB)})
    FROM videos AS v
    JOIN users AS u ON u.id = v.user_id AND u.deleted_at IS NULL
    WHERE v.id = $2 AND v.user_id = $1 AND v.deleted_at IS NULL
)))::text"""
