"""Which accounts this process has seen exist lately, so that a request need not look its
viewer up again: the resolver path's account check (`schema.context.Context.require_viewer`).

A signed token outlives a deleted account, so every operation checks that its viewer's account
still exists. Here an account seen to exist is believed to for ``ttl`` seconds at most, and not
a moment longer than its end is known: the database announces every account that ends (a user
soft-deleted or deleted, ``NOTIFY studio_accounts``, `db.events.ACCOUNTS_CHANNEL`) to every
process's change listener, which forgets it at once (`ended`). Notifications are lost while the
listener is disconnected, so everything is forgotten when it connects again (`forget_all`), and
``ttl`` bounds what an account deleted meanwhile can still do: its operations are refused at
most ``ttl`` seconds after its end, as they are at once otherwise.

A lookup that began before an account ended may answer after its notification arrived; its
answer is then not remembered (`begin`/`saw`), so a late "exists" cannot undo an "ended".
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

#: Accounts remembered at most; past this, the oldest sighting goes first.
MAX_ACCOUNTS = 100_000


class LiveAccounts:
    def __init__(self, ttl: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._seen: dict[uuid.UUID, float] = {}  # user id -> when seen; oldest first
        self._endings = 0  # grows with every `ended` and `forget_all`

    def exists(self, user_id: uuid.UUID) -> bool:
        """Whether the account was seen to exist less than ``ttl`` seconds ago and has not
        been announced ended since."""
        seen = self._seen.get(user_id)
        if seen is None:
            return False
        if self._clock() - seen < self.ttl:
            return True
        del self._seen[user_id]
        return False

    def begin(self) -> int:
        """Before looking an account up: what `saw` needs to tell whether an end came in
        meanwhile."""
        return self._endings

    def saw(self, user_id: uuid.UUID, began: int) -> None:
        """The lookup that started at ``began`` (`begin`) found the account."""
        if self.ttl <= 0 or began != self._endings:
            return
        self._seen.pop(user_id, None)
        self._seen[user_id] = self._clock()
        if len(self._seen) > MAX_ACCOUNTS:
            del self._seen[next(iter(self._seen))]

    def ended(self, user_id: uuid.UUID) -> None:
        """The account is gone (its notification arrived)."""
        self._endings += 1
        self._seen.pop(user_id, None)

    def forget_all(self) -> None:
        """Notifications may have been lost (the listener connected again)."""
        self._endings += 1
        self._seen.clear()
