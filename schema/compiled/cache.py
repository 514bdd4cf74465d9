"""Plans by what shapes their statement, shared by every operation of a process."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Mapping
from enum import Enum
from typing import Any, Generic, TypeVar

from graphql.execution.values import VariableValues

from schema.compiled.plan import Plan

#: Plans kept per process (each is a few KB of SQL text).
PLAN_CACHE_SIZE = 256

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

COMPILED = "compiled"
RESOLVER = "resolver"


class LRU(Generic[K, V]):
    """At most ``size`` entries; the least recently read or written goes first."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        entry = self._entries.get(key)
        if entry is not None or key in self._entries:
            self._entries.move_to_end(key)
        return entry

    def __contains__(self, key: K) -> bool:
        return key in self._entries

    def values(self) -> list[V]:
        """The entries, least recent first (reading them does not count as use)."""
        return list(self._entries.values())

    def put(self, key: K, value: V) -> None:
        self._entries[key] = value
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


class PlanCache:
    """Plans by (document, operation, variables given, the values that shape the statement);
    least recently used first out. A document that does not compile is cached as ``None``."""

    def __init__(self, size: int = PLAN_CACHE_SIZE) -> None:
        self._plans: LRU[Hashable, Plan | None] = LRU(size)

    def get(self, key: Hashable) -> tuple[bool, Plan | None]:
        """(whether ``key`` is cached, its plan)."""
        plan = self._plans.get(key)
        return plan is not None or key in self._plans, plan

    def put(self, key: Hashable, plan: Plan | None) -> None:
        self._plans.put(key, plan)

    def plans(self) -> list[Plan | None]:
        return self._plans.values()

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
