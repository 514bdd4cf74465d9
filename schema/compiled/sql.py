"""SQL fragments that render values exactly as the resolver path serialises them.

Every fragment here is an expression over a row alias (``t3.created_at``) and server-side
constants (table, column and type names, cursor orderings); client values only ever arrive as
bound parameters. The JSON is built with ``json_build_object``/``json_agg`` (``json``, not
``jsonb``: it keeps the keys in the order the query asked for them).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType
from typing import Any

from sqlalchemy import DateTime, Enum
from sqlalchemy.orm import InstrumentedAttribute

from app import media
from app.settings import Settings
from db import models

#: What a GraphQL name may be: the parser allows nothing else, and the SQL relies on it.
_NAME = re.compile(r"^[_A-Za-z][_0-9A-Za-z]*$")

#: The parameters every compiled statement binds from the request (not from the document).
VIEWER = "CAST(:viewer AS uuid)"
_INNER_KEY = "CAST(:hmac_inner AS bytea)"
_OUTER_KEY = "CAST(:hmac_outer AS bytea)"


class Fallback(Exception):
    """The operation (or this request's variables) is outside what compiles: resolve it."""


def key_literal(name: str) -> str:
    """A response key (alias or field name) as an SQL string literal; GraphQL names only."""
    if not _NAME.match(name):
        raise Fallback(f"not a GraphQL name: {name!r}")
    return f"'{name}'"


def text_literal(value: str) -> str:
    """A server constant (type name, ordering) as a text literal."""
    if not re.match(r"^[_0-9A-Za-z:]+$", value):
        raise Fallback(f"unexpected constant {value!r}")
    return f"'{value}'::text"


def iso_datetime(expression: str) -> str:
    """``datetime.isoformat()`` of a timestamptz as asyncpg returns it (UTC): microseconds only
    when they are not zero, and ``+00:00``. NULL stays NULL."""
    utc = f"({expression} AT TIME ZONE 'UTC')"
    return (
        f"(to_char({utc}, 'YYYY-MM-DD\"T\"HH24:MI:SS') || "
        f"CASE WHEN to_char({utc}, 'US') = '000000' THEN '' ELSE to_char({utc}, '.US') END"
        " || '+00:00')"
    )


def base64url(bytes_expression: str) -> str:
    """``urlsafe_b64encode(...).rstrip("=")``; PostgreSQL's base64 breaks lines every 76
    characters, so the newlines go too."""
    return f"rtrim(translate(encode({bytes_expression}, 'base64'), '+/' || chr(10), '-_'), '=')"


def global_id(type_name: str, id_expression: str) -> str:
    """`schema.relay.to_global_id` in SQL."""
    prefix = text_literal(f"{type_name}:")
    return base64url(f"convert_to({prefix} || {id_expression}::text, 'UTF8')")


def json_ascii(expression: str) -> str:
    """The inside of ``json.dumps(value)``'s string (``ensure_ascii``, Python's default): printable
    ASCII as it is but for ``"`` and ``\\``, the five short escapes, and ``\\u`` with four
    lower-case hex digits for the rest (a surrogate pair past U+FFFF). Text that needs no escape
    (most titles) is taken as it is; the rest is rebuilt character by character."""
    plain = f"{expression} ~ '^[\\x20\\x21\\x23-\\x5b\\x5d-\\x7e]*$'"
    escaped = (
        "(SELECT string_agg(CASE"
        " WHEN c BETWEEN 32 AND 126 AND c NOT IN (34, 92) THEN chr(c)"
        " WHEN c = 34 THEN '\\\"' WHEN c = 92 THEN '\\\\'"
        " WHEN c = 8 THEN '\\b' WHEN c = 12 THEN '\\f' WHEN c = 10 THEN '\\n'"
        " WHEN c = 13 THEN '\\r' WHEN c = 9 THEN '\\t'"
        " WHEN c < 65536 THEN '\\u' || lpad(to_hex(c), 4, '0')"
        " ELSE '\\u' || to_hex(55296 + ((c - 65536) >> 10))"
        " || '\\u' || to_hex(56320 + ((c - 65536) & 1023)) END, '' ORDER BY i)"
        f" FROM (SELECT i, ascii(substr({expression}, i, 1)) AS c"
        f" FROM generate_series(1, length({expression})) AS i) AS chars)"
    )
    return f"(CASE WHEN {plain} THEN {expression} ELSE {escaped} END)"


def cursor(ordering: str, value_text: str, id_expression: str) -> str:
    """`CursorCodec.encode` in SQL: ``base64url(mac + body)``, ``mac`` the first 12 bytes of
    HMAC-SHA256 over the body. The HMAC's two padded keys are bound (`hmac_parameters`), so
    PostgreSQL's ``sha256`` is all it needs. ``value_text`` is the value as it stands inside
    ``json.dumps``'s quotes (`json_ascii` of free text; a timestamp as it is), so the body is
    byte-identical to ``json.dumps``'s."""
    body = (
        f"convert_to('[\"' || {text_literal(ordering)} || '\",\"' || {value_text} || "
        f"'\",\"' || {id_expression}::text || '\"]', 'UTF8')"
    )
    mac = f"substring(sha256({_OUTER_KEY} || sha256({_INNER_KEY} || {body})) FROM 1 FOR 12)"
    return base64url(f"{mac} || {body}")


@lru_cache(maxsize=8)  # one key per secret: made once, read (never changed) by every plan
def hmac_parameters(key: bytes, prefix: str = "hmac") -> Mapping[str, bytes]:
    """The HMAC-SHA256 pads of ``key`` (RFC 2104), as ``<prefix>_inner`` and ``_outer``."""
    padded = key.ljust(64, b"\0")  # the keys are 32 bytes: never longer than a block
    return MappingProxyType(
        {
            f"{prefix}_inner": bytes(byte ^ 0x36 for byte in padded),
            f"{prefix}_outer": bytes(byte ^ 0x5C for byte in padded),
        }
    )


def url_path(expression: str) -> str:
    """``urllib.parse.quote(path, safe="/")``: each UTF-8 byte outside letters, digits and
    ``_.-~/`` as ``%XX``. Stored paths are the server's own names, which need none."""
    plain = f"{expression} ~ '^[A-Za-z0-9_.~/-]*$'"
    escaped = (
        "(SELECT string_agg(CASE WHEN b BETWEEN 48 AND 57 OR b BETWEEN 65 AND 90"
        " OR b BETWEEN 97 AND 122 OR b IN (45, 46, 47, 95, 126) THEN chr(b)"
        " ELSE '%' || upper(lpad(to_hex(b), 2, '0')) END, '' ORDER BY i)"
        f" FROM (SELECT i, get_byte(convert_to({expression}, 'UTF8'), i) AS b"
        f" FROM generate_series(0, octet_length({expression}) - 1) AS i) AS bytes)"
    )
    return f"(CASE WHEN {plain} THEN {expression} ELSE {escaped} END)"


#: The parameters a statement that signs media URLs or makes links absolute binds
#: (`media_parameters`; `Plan` binds them when its statement names any of them).
MEDIA_PARAMETERS = frozenset({"media_base", "media_expires", "media_inner", "media_outer"})
_MEDIA_BASE = "CAST(:media_base AS text)"
_MEDIA_EXPIRES = "CAST(:media_expires AS text)"


def public_link(text_expression: str) -> str:
    """`Settings.public_link` in SQL: a path on this studio under ``STUDIO_PUBLIC_URL``."""
    on_studio = (
        f"{_MEDIA_BASE} <> '' AND left({text_expression}, 1) = '/'"
        f" AND left({text_expression}, 2) <> '//'"
    )
    return (
        f"(CASE WHEN {on_studio} THEN {_MEDIA_BASE} || {text_expression}"
        f" ELSE {text_expression} END)"
    )


def media_url(path_expression: str) -> str:
    """`schema.context.Context.media_url` in SQL: ``/media/<quoted path>?expires=…&sig=…``
    under ``STUDIO_PUBLIC_URL`` (bound, with the expiry, by `media_parameters`), the
    signature HMAC-SHA256 over ``path + "\\n" + expires`` with the media key's bound pads.
    NULL for no file."""
    message = f"convert_to({path_expression} || chr(10) || {_MEDIA_EXPIRES}, 'UTF8')"
    inner, outer = "CAST(:media_inner AS bytea)", "CAST(:media_outer AS bytea)"
    signature = base64url(f"sha256({outer} || sha256({inner} || {message}))")
    return (
        f"({_MEDIA_BASE} || '/media/' || {url_path(path_expression)} || '?expires=' ||"
        f" {_MEDIA_EXPIRES} || '&sig=' || {signature})"
    )


def media_parameters(settings: Settings, *, now: float | None = None) -> dict[str, Any]:
    """What `media_url` binds for one request: the key's pads, the base URL and the expiry
    (`app.media.expiry`, as every URL the request's resolvers sign)."""
    return {
        **hmac_parameters(media.media_key(settings.secret_key), "media"),
        "media_base": settings.public_url or "",
        "media_expires": str(media.expiry(settings, now=now)),
    }


@dataclass(frozen=True)
class Table:
    """The table behind a GraphQL object type."""

    name: str
    model: type[Any]


TABLES: dict[str, Table] = {
    "User": Table("users", models.User),
    "Video": Table("videos", models.Video),
    "GenerationJob": Table("generation_jobs", models.GenerationJob),
    "VoiceProfile": Table("voice_profiles", models.VoiceProfile),
}


_OWNER = f"{{c}}.id = {{p}}.user_id AND {{c}}.id = {VIEWER} AND {{c}}.deleted_at IS NULL"

#: (type, field) -> (child type, join condition on the child alias ``{c}`` and the
#: parent alias ``{p}``, ORDER BY and LIMIT). Each is the resolver's loader, ownership included.
RELATIONS: dict[tuple[str, str], tuple[str, str, str]] = {
    # `users.users_by_ids`: the viewer only, while active.
    ("Video", "owner"): ("User", _OWNER, ""),
    ("VoiceProfile", "owner"): ("User", _OWNER, ""),
    ("Video", "voiceProfile"): (
        "VoiceProfile",
        f"{{c}}.id = {{p}}.voice_profile_id AND {{c}}.user_id = {VIEWER}"
        " AND {c}.deleted_at IS NULL",
        "",
    ),
    # `jobs.latest_for_videos`: the most recently queued (ties: the greatest id).
    ("Video", "latestJob"): (
        "GenerationJob",
        "{c}.video_id = {p}.id",
        " ORDER BY {c}.queued_at DESC, {c}.id DESC LIMIT 1",
    ),
    ("GenerationJob", "video"): (
        "Video",
        f"{{c}}.id = {{p}}.video_id AND {{c}}.user_id = {VIEWER} AND {{c}}.deleted_at IS NULL",
        "",
    ),
}

#: Each type's visibility to the viewer on alias ``{c}``, as its by-id loader filters.
VISIBLE: dict[str, str] = {
    "User": f"{{c}}.id = {VIEWER} AND {{c}}.deleted_at IS NULL",
    "Video": f"{{c}}.user_id = {VIEWER} AND {{c}}.deleted_at IS NULL",
    "GenerationJob": (
        "EXISTS (SELECT 1 FROM videos jv WHERE jv.id = {c}.video_id"
        f" AND jv.user_id = {VIEWER} AND jv.deleted_at IS NULL)"
    ),
    "VoiceProfile": f"{{c}}.user_id = {VIEWER} AND {{c}}.deleted_at IS NULL",
}

#: Query's by-id roots -> the type their id must name (None: any type of `VISIBLE`).
BY_ID: dict[str, str | None] = {"video": "Video", "generationJob": "GenerationJob", "node": None}


def column_value(attribute: InstrumentedAttribute[Any], alias: str) -> str:
    """A column as the resolver path serialises it: enums by name, timestamps in ISO form."""
    column = attribute.property.columns[0]
    reference = f"{alias}.{column.name}"
    if isinstance(column.type, Enum):
        return f"{reference}::text"
    if isinstance(column.type, DateTime):
        return iso_datetime(reference)
    return reference
