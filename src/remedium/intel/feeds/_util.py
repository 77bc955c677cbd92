"""Small helpers shared by the feed parsers."""

from __future__ import annotations

import re
from datetime import UTC, datetime

CVE_RE = re.compile(r"^CVE-\d{4}-\d{4,}$")
CWE_RE = re.compile(r"CWE-\d+")


def parse_datetime(value: object) -> datetime | None:
    """An ISO 8601 date or timestamp (naive means UTC), or None when absent or not one."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip().replace("Z", "+00:00")
    # EPSS writes "+0000"; fromisoformat wants "+00:00".
    text = re.sub(r"([+-]\d{2})(\d{2})$", r"\1:\2", text)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def title_severity(value: object) -> str | None:
    """``HIGH`` -> ``High``; None for anything that is not a CVSS rating."""
    text = str(value or "").strip().lower()
    if text in ("low", "medium", "high", "critical"):
        return text.capitalize()
    return None
