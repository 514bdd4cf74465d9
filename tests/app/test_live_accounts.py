"""`app.live_accounts`: an account seen to exist is believed to for a bounded time, and never
after its end was announced."""

from __future__ import annotations

import uuid

from app.live_accounts import MAX_ACCOUNTS, LiveAccounts


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_an_account_seen_is_believed_for_the_ttl_only() -> None:
    clock, user = Clock(), uuid.uuid4()
    accounts = LiveAccounts(5, clock=clock)
    assert not accounts.exists(user)
    accounts.saw(user, accounts.begin())
    clock.now += 4.9
    assert accounts.exists(user)
    clock.now += 0.2
    assert not accounts.exists(user)


def test_an_announced_end_is_believed_at_once() -> None:
    user, other = uuid.uuid4(), uuid.uuid4()
    accounts = LiveAccounts(5, clock=Clock())
    for seen in (user, other):
        accounts.saw(seen, accounts.begin())
    accounts.ended(user)
    assert (accounts.exists(user), accounts.exists(other)) == (False, True)


def test_a_lookup_that_began_before_an_end_is_not_remembered() -> None:
    """The lookup read the row before the account ended; the end's notification arrived
    before the lookup answered: its "exists" is stale and must not be believed."""
    user = uuid.uuid4()
    accounts = LiveAccounts(5, clock=Clock())
    began = accounts.begin()
    accounts.ended(user)
    accounts.saw(user, began)
    assert not accounts.exists(user)
    accounts.saw(user, accounts.begin())  # a lookup after the end that found it (restored)
    assert accounts.exists(user)


def test_a_reconnected_listener_forgets_everyone() -> None:
    users = [uuid.uuid4() for _ in range(3)]
    accounts = LiveAccounts(5, clock=Clock())
    began = accounts.begin()
    for user in users:
        accounts.saw(user, began)
    accounts.forget_all()
    assert not any(accounts.exists(user) for user in users)
    accounts.saw(users[0], began)  # begun before the reconnection
    assert not accounts.exists(users[0])


def test_nothing_is_remembered_with_a_ttl_of_zero() -> None:
    user = uuid.uuid4()
    accounts = LiveAccounts(0, clock=Clock())
    accounts.saw(user, accounts.begin())
    assert not accounts.exists(user)


def test_the_oldest_sighting_goes_first_past_the_bound() -> None:
    accounts = LiveAccounts(5, clock=Clock())
    first = uuid.uuid4()
    accounts.saw(first, accounts.begin())
    for _ in range(MAX_ACCOUNTS):
        accounts.saw(uuid.uuid4(), accounts.begin())
    assert not accounts.exists(first)
    assert len(accounts._seen) == MAX_ACCOUNTS
