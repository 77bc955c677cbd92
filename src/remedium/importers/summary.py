"""What one import added, updated, fixed and skipped: the figures ``remedium import --json``
prints, the API answers and ``ImportRun`` keeps.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(slots=True)
class ImportSummary:
    """What one import added, updated, fixed and skipped."""

    format: str
    source: str
    filename: str
    scanned_at: datetime | None = None
    import_id: int | None = None
    devices_added: int = 0
    devices_updated: int = 0
    devices_seen: int = 0
    software_added: int = 0
    installed_added: int = 0
    installed_removed: int = 0
    findings_added: int = 0
    findings_updated: int = 0
    findings_reopened: int = 0
    findings_fixed: int = 0
    configuration_results: int = 0
    configurations_fixed: int = 0
    configurations_added: int = 0
    vulnerabilities_added: int = 0
    vulnerabilities_updated: int = 0
    devices_matched: int = 0  # devices whose weaknesses matching changed (intel/matching.py)
    # Of findings_added: findings without a product placed through NVD/CVE records, and those
    # kept on the scanner's own detection (docs/imports.md).
    findings_placed: int = 0
    findings_on_detection: int = 0
    skipped_reasons: Counter[str] = field(default_factory=Counter)
    changed_vulnerability_ids: set[str] = field(default_factory=set)  # created or updated
    updated_vulnerability_ids: set[str] = field(default_factory=set)  # known before, changed
    touched_device_ids: set[int] = field(default_factory=set)

    def skip(self, reason: str, count: int = 1) -> None:
        """Count ``count`` records not imported for ``reason``."""
        self.skipped_reasons[reason] += count

    @property
    def skipped(self) -> list[dict[str, Any]]:
        """Skipped records as ``[{"reason": ..., "count": ...}]``, most frequent first."""
        return [{"reason": r, "count": c} for r, c in self.skipped_reasons.most_common()]

    def as_dict(self) -> dict[str, Any]:
        """The summary as JSON-ready data (what ``--json`` prints and ``ImportRun`` keeps)."""
        return {
            "import_id": self.import_id,
            "format": self.format,
            "source": self.source,
            "filename": self.filename,
            "scanned_at": self.scanned_at.isoformat() if self.scanned_at else None,
            "devices_added": self.devices_added,
            "devices_updated": self.devices_updated,
            "devices_seen": self.devices_seen,
            "software_added": self.software_added,
            "installed_added": self.installed_added,
            "installed_removed": self.installed_removed,
            "findings_added": self.findings_added,
            "findings_updated": self.findings_updated,
            "findings_reopened": self.findings_reopened,
            "findings_fixed": self.findings_fixed,
            "configuration_results": self.configuration_results,
            "configurations_fixed": self.configurations_fixed,
            "configurations_added": self.configurations_added,
            "vulnerabilities_added": self.vulnerabilities_added,
            "vulnerabilities_updated": self.vulnerabilities_updated,
            "devices_matched": self.devices_matched,
            "findings_placed": self.findings_placed,
            "findings_on_detection": self.findings_on_detection,
            "skipped": self.skipped,
        }
