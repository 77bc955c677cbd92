"""Matching installed software to the affected ranges remedium holds (docs/matching.md).

Inventory-only files (SBOMs, SPDX, Wazuh syscollector) give devices and software but no
findings; remedium finds their weaknesses itself:

- package URLs against OSV ranges (``affected_package`` rows with ``match_key`` ``purl:…``);
- CPEs (or, failing that, the normalised vendor and product) against NVD configurations
  (``match_key`` ``cpe:vendor:product``).

Set-based: candidate ranges are read with ``match_key IN (...)`` for the software the devices
hold; versions are compared in Python, with ``univers``, only over those candidates. Matched
weaknesses carry the source ``match:osv`` or ``match:nvd``; a matched weakness whose installed
version no longer matches is marked fixed on the next match of its device.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import unquote

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.orm import Session

from remedium.db.base import utcnow
from remedium.intel.feeds.records import AffectedRange
from remedium.intel.models import AffectedPackage
from remedium.inventory.models import Device, InstalledSoftware, Software, Weakness

if TYPE_CHECKING:
    from univers import versions as uv

T = TypeVar("T")
CHUNK = 500  # ids per IN (...) list
SOURCE_OSV = "match:osv"
SOURCE_NVD = "match:nvd"

# OSV ecosystem (the part before any ":release") -> (purl type, purl namespace or "").
ECOSYSTEM_PURL: dict[str, tuple[str, str]] = {
    "npm": ("npm", ""),
    "PyPI": ("pypi", ""),
    "Maven": ("maven", ""),
    "Go": ("golang", ""),
    "crates.io": ("cargo", ""),
    "RubyGems": ("gem", ""),
    "NuGet": ("nuget", ""),
    "Packagist": ("composer", ""),
    "Hex": ("hex", ""),
    "Pub": ("pub", ""),
    "Debian": ("deb", "debian"),
    "Ubuntu": ("deb", "ubuntu"),
    "Alpine": ("apk", "alpine"),
    "Red Hat": ("rpm", "redhat"),
    "Rocky Linux": ("rpm", "rocky"),
    "AlmaLinux": ("rpm", "almalinux"),
    "SUSE": ("rpm", "suse"),
    "openSUSE": ("rpm", "opensuse"),
}

# How each ecosystem orders its versions (univers classes, by name: univers is slow to import and
# loads at the first comparison). Ecosystems missing here are not matched: a wrong order would
# invent or hide weaknesses.
ECOSYSTEM_VERSIONS: dict[str, str] = {
    "npm": "SemverVersion",
    "PyPI": "PypiVersion",
    "Maven": "MavenVersion",
    "Go": "GolangVersion",
    "crates.io": "SemverVersion",
    "RubyGems": "RubygemsVersion",
    "NuGet": "NugetVersion",
    "Packagist": "ComposerVersion",
    "Hex": "SemverVersion",
    "Pub": "SemverVersion",
    "Debian": "DebianVersion",
    "Ubuntu": "DebianVersion",
    "Alpine": "AlpineLinuxVersion",
    "Red Hat": "RpmVersion",
    "Rocky Linux": "RpmVersion",
    "AlmaLinux": "RpmVersion",
    "SUSE": "RpmVersion",
    "openSUSE": "RpmVersion",
}
# NVD versions follow no one scheme. Maven's ordering is the most forgiving general one univers
# has: numbers compared as numbers (2.4.9 < 2.4.10), letters after them (1.1.1k < 1.1.1l), and
# alpha/beta/rc before the release. (univers' GenericVersion compares text: 2.4.10 < 2.4.9.)
CPE_VERSIONS = "MavenVersion"
_PYPI_NAME = re.compile(r"[-_.]+")
_DIGITS = re.compile(r"\d+(?:\.\d+)*")


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    """``items`` in slices of at most ``size``."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def table_of(model: type[Any]) -> Table:
    """The Core table of a mapped class (typed, for set-based statements)."""
    table: Table = model.__table__
    return table


# -- join keys ------------------------------------------------------------------------------


def _purl_key(kind: str, namespace: str, name: str) -> str:
    kind = kind.lower()
    if kind == "pypi":
        name = _PYPI_NAME.sub("-", name)  # PEP 503: Foo_Bar and foo-bar are one project
    body = "/".join(part for part in (namespace, name) if part)
    return f"purl:{kind}/{body}".lower()


def purl_name_key(purl_name: str) -> str | None:
    """The join key of a package URL without its version (``npm/%40scope/name``, or a whole
    ``pkg:…`` URL); None when it names no package."""
    text = purl_name[4:] if purl_name.startswith("pkg:") else purl_name
    text = text.split("#", 1)[0].split("?", 1)[0]
    kind, _, body = text.partition("/")
    # A version may still be attached to the last segment (name@1.0); a leading @ elsewhere is
    # an unencoded npm scope.
    head, _, last = body.rpartition("/")
    body = f"{head}/{last.split('@', 1)[0]}" if head else last.split("@", 1)[0]
    parts = [unquote(part) for part in body.split("/") if part]
    if not kind or not parts:
        return None
    return _purl_key(kind, "/".join(parts[:-1]), parts[-1])


def cpe_key(vendor: str, product: str) -> str | None:
    """The join key of a CPE vendor and product (None when either is missing or a wildcard)."""
    vendor, product = vendor.strip().lower(), product.strip().lower()
    if not vendor or not product or "*" in (vendor, product) or "-" in (vendor, product):
        return None
    return f"cpe:{vendor}:{product}"


def cpe_parts(cpe: str) -> tuple[str, str, str]:
    """(vendor, product, version) of a CPE 2.3 or 2.2 name ("" where missing)."""
    if cpe.startswith("cpe:2.3:"):
        fields = cpe.split(":")
        fields += [""] * (6 - len(fields))
        return fields[3], fields[4], fields[5]
    if cpe.startswith("cpe:/"):
        fields = cpe[5:].split(":")
        fields += [""] * (4 - len(fields))
        return fields[1], fields[2], fields[3]
    return "", "", ""


def range_key(record: AffectedRange) -> str | None:
    """The join key under which ``record`` is stored (None when it cannot be matched)."""
    if record.cpe:
        vendor, product, _version = cpe_parts(record.cpe)
        return cpe_key(vendor, product)
    family = record.ecosystem.split(":", 1)[0]
    mapped = ECOSYSTEM_PURL.get(family)
    if mapped and record.package:
        kind, namespace = mapped
        name = record.package
        if kind == "maven" and ":" in name:
            namespace, _, name = name.partition(":")
        elif "/" in name and kind in ("npm", "golang", "composer"):
            namespace, _, name = name.rpartition("/")
        return _purl_key(kind, namespace, name)
    if record.purl:
        return purl_name_key(record.purl)
    return None


def software_keys(
    purl_name: str | None, cpe_prefix: str | None, vendor: str, product: str
) -> list[tuple[str, str]]:
    """The (join key, kind) pairs of one software product: its purl, its CPE, and, for
    software with neither, its normalised vendor and product read as a CPE."""
    keys: list[tuple[str, str]] = []
    if purl_name:
        key = purl_name_key(purl_name)
        if key:
            keys.append((key, "purl"))
    if cpe_prefix:
        cpe_vendor, cpe_product, _ = cpe_parts(cpe_prefix + ":")
        key = cpe_key(cpe_vendor, cpe_product)
        if key:
            keys.append((key, "cpe"))
    if not keys:
        key = cpe_key(vendor, product)
        if key:
            keys.append((key, "cpe"))
    return keys


# -- version ranges -------------------------------------------------------------------------


@lru_cache(maxsize=65536)
def _parse(kind_name: str, text: str) -> uv.Version | None:
    kind = version_class(kind_name)
    text = text.strip()
    if not text or text in ("*", "-"):
        return None
    if kind_name == "GolangVersion" and not text.startswith("v"):
        text = "v" + text
    try:
        return kind(text)
    except Exception:  # univers raises several error types for versions it cannot read
        return None


@lru_cache(maxsize=32)
def version_class(name: str) -> type[uv.Version]:
    """The univers version class ``name`` (one of ``ECOSYSTEM_VERSIONS``, ``CPE_VERSIONS``)."""
    from univers import versions  # noqa: PLC0415 — slow to import: only when versions are compared

    kind: type[uv.Version] = getattr(versions, name)
    return kind


def parse_version(kind: type[uv.Version], text: str) -> uv.Version | None:
    """``text`` as a version of ``kind`` (None when it is not one); cached, since the same
    few versions are compared over and over."""
    return _parse(kind.__name__, text)


def version_kind(ecosystem: str) -> type[uv.Version] | None:
    """The univers version class of an OSV ecosystem, ``CPE_VERSIONS`` for "" (NVD)."""
    name = ECOSYSTEM_VERSIONS.get(ecosystem.split(":", 1)[0]) if ecosystem else CPE_VERSIONS
    return version_class(name) if name else None


@dataclass(frozen=True, slots=True)
class Candidate:
    """One stored range, as read for matching."""

    vulnerability_id: str
    ecosystem: str
    introduced: str
    fixed: str
    last_affected: str
    version_range: str


def affects(candidate: Candidate, installed: str) -> bool:
    """True when version ``installed`` lies in ``candidate``'s range."""
    kind = version_kind(candidate.ecosystem)
    version = parse_version(kind, installed) if kind is not None else None
    if kind is None or version is None:
        return False  # an unknown order or an unreadable version: never guess
    spelled = candidate.version_range.strip()
    if spelled.startswith("="):
        exact = parse_version(kind, spelled[1:])
        return exact is not None and version == exact
    return _above_lower(kind, version, candidate, spelled) and _below_upper(
        kind, version, candidate
    )


def _above_lower(
    kind: type[uv.Version], version: uv.Version, candidate: Candidate, spelled: str
) -> bool:
    if spelled.startswith(">") and not spelled.startswith(">="):
        # NVD's versionStartExcluding survives only in the spelled range.
        start = parse_version(kind, spelled[1:].split(",", 1)[0])
        return start is not None and version > start
    if candidate.introduced and candidate.introduced != "0":
        start = parse_version(kind, candidate.introduced)
        return start is not None and version >= start
    return True


def _below_upper(kind: type[uv.Version], version: uv.Version, candidate: Candidate) -> bool:
    if candidate.fixed:
        end = parse_version(kind, candidate.fixed)
        return end is not None and version < end
    if candidate.last_affected:
        last = parse_version(kind, candidate.last_affected)
        return last is not None and version <= last
    return True  # no upper bound: every later version is affected too


def release_fits(ecosystem: str, os_text: str) -> bool:
    """False when a distribution range (``Debian:12``) is for another release than the one the
    device runs; True when either side does not say."""
    family, _, release = ecosystem.partition(":")
    if not release or family not in ("Debian", "Ubuntu", "Alpine"):
        return True
    wanted = release.split(":", 1)[0].lstrip("v")
    numbers = _DIGITS.findall(os_text)
    if not numbers or not wanted[:1].isdigit():
        return True
    return any(n == wanted or n.startswith(wanted + ".") for n in numbers)


# -- matching -------------------------------------------------------------------------------


def has_ranges(session: Session) -> bool:
    """True when any affected range is stored (matching has nothing to do otherwise)."""
    return session.execute(select(AffectedPackage.id).limit(1)).first() is not None


def match_devices(
    session: Session, device_ids: Iterable[int], *, at: datetime | None = None
) -> set[int]:
    """Match the installed software of ``device_ids`` against the stored ranges.

    Creates ``match:osv``/``match:nvd`` weaknesses for new matches, reopens matched ones that
    match again, and marks fixed the matched ones that no longer match (a newer version was
    installed). Weaknesses a scanner reported are never touched. Returns the ids of the devices
    whose weaknesses changed: pass them to ``recommendations.service.recompute``. Flushes, never
    commits.
    """
    ids = sorted(set(device_ids))
    changed: set[int] = set()
    if not ids:
        return changed
    session.flush()
    if not has_ranges(session):
        return changed
    when = at or utcnow()
    for part in chunks(ids):
        changed |= _match_chunk(session, part, when)
    return changed


def _match_chunk(session: Session, device_ids: Sequence[int], at: datetime) -> set[int]:
    installed = table_of(InstalledSoftware)
    software = table_of(Software)
    device = table_of(Device)
    rows = session.execute(
        select(
            installed.c.device_id,
            installed.c.software_id,
            installed.c.version,
            software.c.purl_name,
            software.c.cpe_prefix,
            software.c.vendor,
            software.c.product,
            device.c.os_platform,
            device.c.os_version,
        )
        .join(software, software.c.id == installed.c.software_id)
        .join(device, device.c.id == installed.c.device_id)
        .where(installed.c.device_id.in_(device_ids))
    ).all()
    keyed: dict[str, list[tuple[int, int, str, str]]] = defaultdict(list)
    key_cache: dict[int, list[tuple[str, str]]] = {}
    for row in rows:
        keys = key_cache.get(row.software_id)
        if keys is None:
            keys = key_cache[row.software_id] = software_keys(
                row.purl_name, row.cpe_prefix, row.vendor, row.product
            )
        os_text = f"{row.os_platform} {row.os_version}"
        for key, _kind in keys:
            keyed[key].append((row.device_id, row.software_id, row.version, os_text))
    matched: dict[tuple[int, int, str], tuple[str, str | None, str]] = {}
    for key, candidates in _candidates(session, sorted(keyed)).items():
        source = SOURCE_NVD if key.startswith("cpe:") else SOURCE_OSV
        for device_id, software_id, version, os_text in keyed[key]:
            for candidate in candidates:
                unique = (device_id, software_id, candidate.vulnerability_id)
                if unique in matched or not release_fits(candidate.ecosystem, os_text):
                    continue
                if affects(candidate, version):
                    matched[unique] = (version[:100], candidate.fixed[:100] or None, source)
    return _write(session, device_ids, matched, at)


def _candidates(session: Session, keys: Sequence[str]) -> dict[str, list[Candidate]]:
    table = table_of(AffectedPackage)
    found: dict[str, list[Candidate]] = defaultdict(list)
    for part in chunks(keys):
        for row in session.execute(
            select(
                table.c.match_key,
                table.c.vulnerability_id,
                table.c.ecosystem,
                table.c.introduced,
                table.c.fixed,
                table.c.last_affected,
                table.c.version_range,
            ).where(table.c.match_key.in_(part))
        ):
            found[row.match_key].append(
                Candidate(
                    row.vulnerability_id,
                    row.ecosystem,
                    row.introduced,
                    row.fixed,
                    row.last_affected,
                    row.version_range,
                )
            )
    return found


def _write(
    session: Session,
    device_ids: Sequence[int],
    matched: dict[tuple[int, int, str], tuple[str, str | None, str]],
    at: datetime,
) -> set[int]:
    weakness = table_of(Weakness)
    existing = {
        (row.device_id, row.software_id, row.vulnerability_id): row
        for row in session.execute(
            select(
                weakness.c.id,
                weakness.c.device_id,
                weakness.c.software_id,
                weakness.c.vulnerability_id,
                weakness.c.installed_version,
                weakness.c.source,
                weakness.c.fixed_at,
            ).where(weakness.c.device_id.in_(device_ids))
        )
    }
    changed: set[int] = set()
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    for unique, (version, fixed, source) in matched.items():
        row = existing.get(unique)
        if row is None:
            inserts.append(
                {
                    "device_id": unique[0],
                    "software_id": unique[1],
                    "vulnerability_id": unique[2],
                    "installed_version": version,
                    "fixed_version": fixed,
                    "source": source,
                    "first_seen": at,
                    "last_seen": at,
                    "fixed_at": None,
                }
            )
            changed.add(unique[0])
        elif row.source.startswith("match:") and (
            row.fixed_at is not None or row.installed_version != version
        ):
            updates.append(
                {
                    "b_id": row.id,
                    "installed_version": version,
                    "fixed_version": fixed,
                    "last_seen": at,
                    "fixed_at": None,
                }
            )
            changed.add(unique[0])
    closed = [
        {"b_id": row.id, "fixed_at": at}
        for unique, row in existing.items()
        if row.source.startswith("match:") and row.fixed_at is None and unique not in matched
    ]
    changed.update(
        unique[0]
        for unique, row in existing.items()
        if row.source.startswith("match:") and row.fixed_at is None and unique not in matched
    )
    if inserts:
        session.execute(insert(weakness), inserts)
    if updates:
        session.execute(update(weakness).where(weakness.c.id == bindparam("b_id")), updates)
    if closed:
        session.execute(update(weakness).where(weakness.c.id == bindparam("b_id")), closed)
    return changed


def devices_holding(session: Session, keys: Collection[str]) -> set[int]:
    """The devices with installed software whose join key is among ``keys`` (the devices to
    match again after new ranges arrive)."""
    wanted = set(keys)
    if not wanted:
        return set()
    software = table_of(Software)
    software_ids = [
        row.id
        for row in session.execute(
            select(
                software.c.id,
                software.c.purl_name,
                software.c.cpe_prefix,
                software.c.vendor,
                software.c.product,
            )
        )
        if any(
            key in wanted
            for key, _ in software_keys(row.purl_name, row.cpe_prefix, row.vendor, row.product)
        )
    ]
    installed = table_of(InstalledSoftware)
    devices: set[int] = set()
    for part in chunks(software_ids):
        devices.update(
            session.scalars(
                select(installed.c.device_id).where(installed.c.software_id.in_(part)).distinct()
            )
        )
    return devices


def cpe_products(
    session: Session, vulnerability_ids: Sequence[str]
) -> dict[str, list[tuple[str, str]]]:
    """The (vendor, product) pairs the NVD or CVE records of each vulnerability name as
    affected (CPE ranges in ``affected_package``), sorted: where a finding that names no
    product can be placed."""
    found: dict[str, set[tuple[str, str]]] = {}
    table = table_of(AffectedPackage)
    for start in range(0, len(vulnerability_ids), 500):
        part = vulnerability_ids[start : start + 500]
        for vulnerability_id, key in session.execute(
            select(table.c.vulnerability_id, table.c.match_key)
            .where(table.c.vulnerability_id.in_(part), table.c.match_key.like("cpe:%"))
            .distinct()
        ):
            _cpe, vendor, product = str(key).split(":", 2)
            found.setdefault(vulnerability_id, set()).add((vendor, product))
    return {vulnerability_id: sorted(pairs) for vulnerability_id, pairs in found.items()}
