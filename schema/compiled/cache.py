"""Plans by what shapes their statement, shared by every operation of a process."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Mapping
from enum import Enum
from typing import Any

from graphql.execution.values import VariableValues

from schema.compiled.plan import Plan

#: Plans kept per process (each is a few KB of SQL text).
PLAN_CACHE_SIZE = 256

COMPILED = "compiled"
RESOLVER = "resolver"


class PlanCache:
    """Plans by (document, operation, variables given, the values that shape the statement);
    least recently used first out. A document that does not compile is cached as ``None``."""

    def __init__(self, size: int = PLAN_CACHE_SIZE) -> None:
        self.size = size
        self._plans: OrderedDict[Hashable, Plan | None] = OrderedDict()

    def get(self, key: Hashable) -> tuple[bool, Plan | None]:
        if key not in self._plans:
            return False, None
        self._plans.move_to_end(key)
        return True, self._plans[key]

    def put(self, key: Hashable, plan: Plan | None) -> None:
        self._plans[key] = plan
        self._plans.move_to_end(key)
        while len(self._plans) > self.size:
            self._plans.popitem(last=False)

    def __len__(self) -> int:
        return len(self._plans)


def plan_key(
    query: str, operation_name: str | None, given: Mapping[str, Any], coerced: VariableValues
) -> Hashable:
    """A plan's key: the document, the operation, which variables were given, and the values
    that shape the statement (`_shape`)."""
    return (query, operation_name, frozenset(given), _shape(coerced.coerced))


def _shape(values: dict[str, Any]) -> Hashable:
    """What of the variables' values the statement depends on: booleans (``@include``), enums
    and input objects (``orderBy``) by value, everything else by whether it is null (a null
    ``after`` has no cursor predicate; a given one has)."""

    def one(value: Any) -> Hashable:
        if value is None or isinstance(value, bool | Enum):
            return value
        if isinstance(value, dict):
            return tuple(sorted((key, one(item)) for key, item in value.items()))
        if isinstance(value, list):
            return tuple(one(item) for item in value)
        return "given"

    return tuple(sorted((name, one(value)) for name, value in values.items()))
