"""The demo organisation: deterministic from its seed, with real history, built by the pipeline."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Engine, MetaData, func, select

from remedium.db.migrate import upgrade_database
from remedium.db.session import session_factory
from remedium.demo import build_demo, holds_demo
from remedium.demo.catalog import affected, version_key
from remedium.importers.models import ImportRun
from remedium.intel.models import IntelEvent, Vulnerability
from remedium.inventory.models import Device, DeviceGroup, Weakness
from remedium.scoring.models import ScoreSnapshot


def counts(engine: Engine) -> dict[str, int]:
    with session_factory(engine)() as session:

        def count(model: object, *where: object) -> int:
            return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)  # type: ignore[arg-type]

        return {
            "devices": count(Device),
            "groups": count(DeviceGroup),
            "open": count(Weakness, Weakness.fixed_at.is_(None)),
            "fixed": count(Weakness, Weakness.fixed_at.is_not(None)),
            "vulnerabilities": count(Vulnerability),
            "imports": count(ImportRun),
            "snapshot_days": int(
                session.scalar(select(func.count(func.distinct(ScoreSnapshot.day)))) or 0
            ),
            "events": count(IntelEvent),
            "internet_facing": count(Device, Device.internet_facing.is_(True)),
        }


def test_same_seed_same_organisation(engine: Engine) -> None:
    summary = build_demo(engine, devices=200, seed=11, today=date(2026, 11, 20))
    first = counts(engine)
    assert first["devices"] == summary.devices >= 200
    assert first["groups"] >= 5
    assert first["imports"] == 31
    assert first["snapshot_days"] == 31
    assert first["open"] > 0
    assert first["fixed"] > 0
    assert first["events"] > 0  # KEV listings and new facts arrived during the month
    assert first["internet_facing"] > 0
    with session_factory(engine)() as session:
        assert holds_demo(session)
        log4shell = session.get(Vulnerability, "CVE-2021-44228")
        assert log4shell is not None
        assert log4shell.cvss_v3_score == 10.0
        assert log4shell.kev_listed

    # Rebuilding from the same seed on a clean copy gives the very same counts.
    metadata = MetaData()
    metadata.reflect(bind=engine)
    with engine.begin() as connection:
        if engine.dialect.name == "sqlite":
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        metadata.drop_all(bind=connection)
    upgrade_database(engine)
    build_demo(engine, devices=200, seed=11, today=date(2026, 11, 20))
    assert counts(engine) == first


def test_version_ranges() -> None:
    assert version_key("9.8p1") > version_key("9.3p2")
    assert version_key("11.1.2-h3") > version_key("11.1.2")
    assert version_key("1.1.1n") < version_key("1.1.1t")
    ranges = [{"fixed": "1.1.1n"}, {"introduced": "3.0.0", "fixed": "3.0.2"}]
    assert affected("1.1.1k", ranges) == "1.1.1n"
    assert affected("3.0.1", ranges) == "3.0.2"
    assert affected("3.0.7", ranges) is None
    assert affected("2.4.48", [{"introduced": "2.4.49", "fixed": "2.4.50"}]) is None
