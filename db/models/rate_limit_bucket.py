from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Text
from sqlalchemy.orm import Mapped, mapped_column

from db.models.base import Base


class RateLimitBucket(Base):
    """One rate-limit bucket (GCRA), shared by every API process: see `db.queries.rate_limits`.

    ``tat`` (the theoretical arrival time) is the whole state: the bucket is full once ``tat`` is
    in the past, so such a row means the same as no row and may be deleted at any time. The table
    is UNLOGGED: cheap to write, and emptied by a database crash, which only resets the limits.
    It has no ``updated_at`` (and no trigger): ``tat`` is the only thing that changes.
    """

    __tablename__ = "rate_limit_buckets"
    __table_args__ = {"prefixes": ["UNLOGGED"]}

    #: ``user:<id>:<bucket>`` or ``ip:<address or IPv6 /64>:<bucket>``.
    key: Mapped[str] = mapped_column(Text, primary_key=True)
    tat: Mapped[datetime] = mapped_column(DateTime(timezone=True))
