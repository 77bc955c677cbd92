"""Tables of the Defender-compatible API: the request counters of its rate limit."""

from __future__ import annotations

from sqlalchemy import BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from remedium.db.base import Base


class ApiRateWindow(Base):
    """Requests of one caller (``token:<id>`` or ``user:<id>``) in one window of time.

    Kept in the database so that every process serving the API counts against the same limit
    (docs/defender-api.md, "Rate limit"); old windows are deleted as new ones start.
    """

    __tablename__ = "api_rate_window"

    caller: Mapped[str] = mapped_column(String(100), primary_key=True)
    # Start of the window, in whole seconds since the epoch (a multiple of the window length).
    window_start: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
