"""Where each GraphQL field's value comes from, declared once, on the field itself.

Object types declare their fields with these helpers instead of hand-written resolvers:

* ``column(models.Video.title)``: one column of the type's ORM row;
* ``computed(models.Video.audio_settings, AudioSettings.from_json)``: a value built in Python
  from one column (the JSON-backed types);
* ``global_id(models.Video.id, "Video")``: the Relay id made from the primary key;
* ``relation(...)`` / ``connection(...)``: metadata for a resolver that goes through a
  dataloader (the resolver stays hand-written; the metadata says which keys it joins on);
* ``signed_media(models.Video.media_path)``: metadata for a resolver that signs the stored
  file at one column's path (`app.media.signed_url`).

`mapping_of` reads the declarations back. The resolvers run from them, the tests check that
every field is declared, and a compiled read path (one SQL statement per query) can translate a
selection set into SQL from the same declarations, so the two paths cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import strawberry
from sqlalchemy.orm import InstrumentedAttribute
from strawberry.types.private import is_private

from schema.plain_fields import CONTEXT_ONLY, Resolve, plain_field
from schema.relay import to_global_id

SOURCE_KEY = "studio.source"


@dataclass(frozen=True)
class Column:
    """The field is the value of one column."""

    attribute: InstrumentedAttribute[Any]


@dataclass(frozen=True)
class Computed:
    """The field is computed in Python from one column."""

    attribute: InstrumentedAttribute[Any]
    convert: Callable[[Any], Any]


@dataclass(frozen=True)
class GlobalId:
    """The field is the Relay global id of the row."""

    attribute: InstrumentedAttribute[Any]
    type_name: str


@dataclass(frozen=True)
class Relation:
    """The field is the one row of ``target`` whose ``remote`` equals this row's ``local``."""

    local: InstrumentedAttribute[Any]
    remote: InstrumentedAttribute[Any]
    loader: str


@dataclass(frozen=True)
class ConnectionOf:
    """The field is a paged list of the rows whose ``foreign_key`` equals this row's ``local``."""

    local: InstrumentedAttribute[Any]
    foreign_key: InstrumentedAttribute[Any]
    loader: str
    count_loader: str


@dataclass(frozen=True)
class SignedMedia:
    """The field is a signed URL of the media file at the path in one column (null for none)."""

    attribute: InstrumentedAttribute[Any]


Source = Column | Computed | GlobalId | Relation | ConnectionOf | SignedMedia


def column(attribute: InstrumentedAttribute[Any], *, description: str | None = None) -> Any:
    key = attribute.key

    def resolve(root: Any, info: object) -> Any:
        return _column_value(root.row, key)

    return _field(resolve, Column(attribute), description)


def computed(
    attribute: InstrumentedAttribute[Any],
    convert: Callable[[Any], Any],
    *,
    description: str | None = None,
) -> Any:
    key = attribute.key

    def resolve(root: Any, info: object) -> Any:
        return convert(_column_value(root.row, key))

    return _field(resolve, Computed(attribute, convert), description)


def global_id(attribute: InstrumentedAttribute[Any], type_name: str) -> Any:
    key = attribute.key

    def resolve(root: Any, info: object) -> strawberry.ID:
        return to_global_id(type_name, _column_value(root.row, key))

    return _field(resolve, GlobalId(attribute, type_name), None)


def relation(
    local: InstrumentedAttribute[Any], remote: InstrumentedAttribute[Any], *, loader: str
) -> dict[str, Source]:
    """``metadata=`` for a resolver field that follows a foreign key through ``loader``. The
    resolver reads nothing of ``info`` but ``info.context`` (`schema.plain_fields`)."""
    return {SOURCE_KEY: Relation(local, remote, loader), **CONTEXT_ONLY}


def connection(
    local: InstrumentedAttribute[Any],
    foreign_key: InstrumentedAttribute[Any],
    *,
    loader: str,
    count_loader: str,
) -> dict[str, Source]:
    """``metadata=`` for a resolver field that pages the rows pointing at this one. The
    resolver reads nothing of ``info`` but ``info.context`` (`schema.plain_fields`)."""
    return {SOURCE_KEY: ConnectionOf(local, foreign_key, loader, count_loader), **CONTEXT_ONLY}


def signed_media(attribute: InstrumentedAttribute[Any]) -> dict[str, Source]:
    """``metadata=`` for a resolver field that signs the file at ``attribute``'s path."""
    return {SOURCE_KEY: SignedMedia(attribute)}


def mapping_of(graphql_type: type) -> Mapping[str, Source | None]:
    """GraphQL field name -> where it comes from (``None``: not declared)."""
    definition = graphql_type.__strawberry_definition__  # type: ignore[attr-defined]
    return {
        field.graphql_name or _camel(field.python_name): field.metadata.get(SOURCE_KEY)
        for field in definition.fields
        if not is_private(field.type)
    }


def _column_value(row: Any, key: str) -> Any:
    # What the ORM attribute's descriptor answers for a loaded column, read where it keeps it
    # (``InstrumentedAttribute.__get__`` looks in the instance's ``__dict__`` first): a large
    # page reads thousands of columns. An attribute not loaded there takes the descriptor.
    try:
        return row.__dict__[key]
    except (AttributeError, KeyError):
        return getattr(row, key)


def _field(resolve: Resolve, source: Source, description: str | None) -> Any:
    # A plain field: graphql-core calls ``resolve`` without Strawberry's wrapper.
    return plain_field(resolve, description=description, metadata={SOURCE_KEY: source})


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)
