"""Statements built once and run many times with their values bound at execution.

Building a SQLAlchemy statement costs more than running it: a page under many parents (a
``LATERAL`` over an alias of the model) makes a proxy of every column and a cache key for the
whole tree, about a millisecond of CPU, for SQL text that is the same on every request. The read
paths' statements are therefore built with named `bindparam` placeholders, once per shape, and
executed with a dictionary of values; SQLAlchemy's compiled cache then finds them by a key it
computed once.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

S = TypeVar("S")

#: Shapes kept per cache: page sizes, orderings, cursors and filters make a few dozen in use.
STATEMENTS_PER_CACHE = 256


class StatementCache(Generic[S]):
    """Built statements by shape, the least recently used dropped first."""

    def __init__(self, size: int = STATEMENTS_PER_CACHE) -> None:
        self._size = size
        self._built: OrderedDict[Hashable, S] = OrderedDict()

    def get(self, shape: Hashable, build: Callable[[], S]) -> S:
        """The statement of ``shape``, built by ``build`` the first time it is asked for."""
        built = self._built.get(shape)
        if built is None:
            built = self._built[shape] = build()
            if len(self._built) > self._size:
                self._built.popitem(last=False)
        else:
            self._built.move_to_end(shape)
        return built

    def __len__(self) -> int:
        return len(self._built)
