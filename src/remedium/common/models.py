"""The cache's table (core layer): one invalidation counter per cached family of figures.

It lives beside ``common/cache.py``, which reads and bumps it, so the cache needs nothing above
the core; ``db/registry.py`` lists it with every feature's models.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from remedium.db.base import Base


class CacheGeneration(Base):
    """A counter per cached figure: every process's cache entry is keyed by it, so bumping it
    (the recompute does, in its transaction) invalidates the entry in every process at once."""

    __tablename__ = "cache_generation"

    name: Mapped[str] = mapped_column(String(60), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)
