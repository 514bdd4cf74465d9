"""The app-wide objects the lifespan creates, typed, and how a request reaches them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.requests import HTTPConnection

from app.events import EventHub
from app.live_accounts import LiveAccounts
from app.settings import Settings
from db.events import ChangeListener

if TYPE_CHECKING:
    from app.observability.metrics import Metrics


@dataclass(frozen=True)
class AppState:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    head_revisions: frozenset[str]
    #: Change events of this process's subscriptions, fed by the one LISTEN connection.
    events: EventHub
    listener: ChangeListener
    #: This application's metrics registry (`GET /metrics`).
    metrics: Metrics
    #: The accounts seen to exist lately (`Context.require_viewer`), forgotten as they end.
    accounts: LiveAccounts

    @classmethod
    def of(cls, connection: HTTPConnection) -> AppState:
        state = connection.app.state.studio
        assert isinstance(state, cls)
        return state
