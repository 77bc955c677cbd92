"""N+1 guard (NetBox style): a list costs the same number of queries for 3 rows or 30."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from itertools import product
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.orm import Session

from remedium.auth.principal import UNRESTRICTED, Scope
from remedium.intel import queries as intel
from remedium.inventory import queries as inventory
from remedium.inventory import software_queries
from remedium.recommendations import queries as recs
from remedium.recommendations.models import (
    DeviceRecommendation,
    Recommendation,
    RecommendationGroupStat,
    RecommendationVulnerability,
)
from remedium.scoring.models import GroupScoreStat
from tests.support.orgs.builder import (
    add_weakness,
    install,
    make_device,
    make_group,
    make_software,
    make_vulnerability,
)


@contextmanager
def counting(engine: Engine) -> Iterator[list[str]]:
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


def _grow(session: Session, rows: int, start: int) -> int:
    """Add ``rows`` devices, products, CVEs and recommendations; returns the group id."""
    group = make_group(session, f"g{start}")
    session.add(
        GroupScoreStat(device_group_id=group.id, active_devices=rows, weight_low_normal=rows)
    )
    for i in range(start, start + rows):
        device = make_device(session, group, f"d{i}")
        software = make_software(session, f"vendor{i}", f"product{i}")
        vulnerability = make_vulnerability(session, f"CVE-2026-{i:05d}")
        install(session, device, software, "1.0")
        add_weakness(session, device, software, vulnerability)
        rec_id = f"va-_-{software.product_key}"
        session.add(
            Recommendation(
                id=rec_id,
                kind="software",
                software_id=software.id,
                name=f"Update {i}",
                category="Application",
                remediation_type="Update",
            )
        )
        session.flush()
        session.add_all(
            [
                RecommendationGroupStat(
                    recommendation_id=rec_id,
                    device_group_id=group.id,
                    exposed_devices=1,
                    installed_devices=1,
                    delta_weighted=float(i),
                ),
                RecommendationVulnerability(
                    recommendation_id=rec_id,
                    vulnerability_id=vulnerability.id,
                    device_group_id=group.id,
                    exposed_devices=1,
                ),
                DeviceRecommendation(device_id=device.id, recommendation_id=rec_id, weaknesses=1),
            ]
        )
    session.flush()
    return group.id


LISTS: dict[str, Callable[[Session, Scope], Any]] = {
    "recommendations": lambda s, scope: recs.list_recommendations(s, scope, limit=100),
    "devices": lambda s, scope: inventory.list_devices(s, scope, limit=100),
    "software": lambda s, scope: software_queries.list_software(s, scope, limit=100),
    "vulnerabilities": lambda s, scope: intel.list_vulnerabilities(s, scope, limit=100),
}


def test_lists_issue_a_constant_number_of_queries(engine: Engine, session: Session) -> None:
    groups = [_grow(session, 3, 0)]
    scopes = {"all": UNRESTRICTED, "some": Scope(frozenset({groups[0], 999_999}))}
    budget: dict[tuple[str, str], int] = {}
    for (name, run), (scope_name, scope) in product(LISTS.items(), scopes.items()):
        with counting(engine) as statements:
            page = run(session, scope)
        assert len(page.items) == 3, name
        budget[name, scope_name] = len(statements)
    groups.append(_grow(session, 27, 100))
    scopes["some"] = Scope(frozenset(groups))
    for (name, run), (scope_name, scope) in product(LISTS.items(), scopes.items()):
        with counting(engine) as statements:
            page = run(session, scope)
        assert len(page.items) == 30, name
        assert len(statements) == budget[name, scope_name], (name, scope_name, statements)
    # The budgets themselves, so that a new per-row or per-page query is a deliberate change.
    assert budget == {
        # + the exceptions in effect (statuses, the default hides full exceptions)
        ("recommendations", "all"): 5,
        ("recommendations", "some"): 6,  # + scoped weakness counts of the page
        ("devices", "all"): 3,
        ("devices", "some"): 3,
        ("software", "all"): 5,
        ("software", "some"): 5,
        ("vulnerabilities", "all"): 1,  # the total is a window count
        ("vulnerabilities", "some"): 1,
    }
