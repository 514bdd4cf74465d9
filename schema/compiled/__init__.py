"""The compiled read path: a query operation answered by one SQL statement.

A validated HTTP query whose every selected field has a translation (`plan`, `connections`,
`sql`) is answered by one statement that builds the response's ``data`` as JSON text in
PostgreSQL; the text goes to the client unparsed (`json_text`). Everything else (and every
request whose resolver answer would carry an error) is resolved field by field, as before: the
resolvers stay the reference, and the tests compare both paths byte for byte.
``STUDIO_COMPILED_READS=false`` turns the compiled path off.
"""

from __future__ import annotations

from collections.abc import Callable

from strawberry.extensions import SchemaExtension

from schema.compiled.cache import PlanCache
from schema.compiled.extension import COMPILED, RESOLVER, CompiledReads
from schema.compiled.known import KnownReads

__all__ = [
    "COMPILED",
    "RESOLVER",
    "CompiledReads",
    "KnownReads",
    "PlanCache",
    "compiled_reads_extension",
]


def compiled_reads_extension(known: KnownReads) -> Callable[[], SchemaExtension]:
    """A factory of per-operation extensions sharing ``known``'s plan cache, teaching it the
    operations they answer."""
    return lambda: CompiledReads(known.plans, known)
