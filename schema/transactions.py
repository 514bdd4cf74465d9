"""Each mutation field is one transaction, and this is the one place that commits.

SPEC §4 and §5: nothing is lost or half written. The resolver's writes (rows, audit record) commit
together when it returns and roll back together when it raises; work registered with
``Context.on_rollback`` (removing a file the mutation stored) runs when they roll back. Fields of
one document run one after another (GraphQL executes mutations serially), each with fresh loaders,
so a later field sees what an earlier one wrote.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import strawberry
from strawberry.extensions import FieldExtension
from strawberry.types import Info

logger = logging.getLogger(__name__)


class InTransaction(FieldExtension):
    async def resolve_async(
        self, next_: Callable[..., Awaitable[Any]], source: Any, info: Info, **kwargs: Any
    ) -> Any:
        context = info.context
        context.reset_loaders()
        session = context.gate.session
        try:
            result = await next_(source, info, **kwargs)
            await session.commit()
        except BaseException:
            await session.rollback()
            await context.run_rollback_hooks()
            raise
        context.forget_rollback_hooks()
        return result


def mutation(description: str | None = None) -> Any:
    """``@strawberry.mutation`` that runs in its own transaction."""
    return strawberry.mutation(description=description, extensions=[InTransaction()])
