"""What people did in the demo organisation during its 30 days: exceptions, remediation, reports.

:class:`DemoHistory` hooks into :func:`remedium.demo.generator.build_demo`: after a day's import
it acts as the demo's people would on that day, through the same services the pages and the API
use (so every step is audited and scored like a real one), and before a day's import it applies
the patching that IT did for a request. Everything follows from the data the seed produced
(recommendations are picked by their figures, ties broken by id), so the history is
deterministic.

What it leaves (docs/ui.md, "The demo"):

- exceptions in effect (a compensating control, Mitigation-like), expired, resurfaced (a CVE
  joined the recommendation, or was listed in KEV, after filing), pending approval (a CVE
  exception), and one canceled for a single device group;
- remediation activities active, overdue, completed by the scan (IT patched every target
  device, the next import confirmed it) and completed by hand, plus an "attention required" one;
- Jira tickets for the activities, delivered through the real outbox to an in-process stand-in
  for ``jira.example.org`` and moved through their states; the connection is switched off
  afterwards, so nothing tries to reach that address;
- inaccuracy reports: new, confirmed and dismissed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from remedium.auth.principal import Principal
from remedium.auth.service import ensure_demo_users, get_user_by_name, principal_for
from remedium.connectors import service as connectors_service
from remedium.connectors.base import ConnectionCheck, NormalizedState, TicketRef, TicketState
from remedium.db.session import session_factory
from remedium.demo.catalog import load_data
from remedium.exceptions import filing, inaccuracy, lifecycle
from remedium.intel.models import Vulnerability
from remedium.inventory.models import Device, DeviceGroup
from remedium.recommendations.models import (
    DeviceRecommendation,
    Recommendation,
    RecommendationVulnerability,
)
from remedium.remediation import requesting
from remedium.remediation import service as remediation_service
from remedium.remediation.models import RemediationActivity
from remedium.remediation.outbox import deliver_pending
from remedium.remediation.ticket_sync import sync_ticket_states

if TYPE_CHECKING:
    from remedium.connectors.base import TicketConnector

T = TypeVar("T")

# The day (relative to today) the organisation started working on its recommendations.
START_DAY = -24
JIRA_URL = "https://jira.example.org"


def _run(target: Session | Engine, action: Callable[[Session], T]) -> T:
    """Run ``action`` in the caller's session, or in a committed session of the engine."""
    if isinstance(target, Session):
        return action(target)
    with session_factory(target)() as session:
        try:
            result = action(session)
            session.commit()
            return result
        except BaseException:
            session.rollback()
            raise


def _principal(session: Session, name: str) -> Principal:

    user = get_user_by_name(session, name)
    assert user is not None, name
    return principal_for(user)


class DemoJira:
    """An in-process stand-in for the demo's Jira: numbers tickets and tells their states."""

    name: ClassVar[str] = "jira"

    def __init__(self, states: dict[str, tuple[str, str]]) -> None:
        self.states = states  # ticket key -> (Jira's status, remedium's state)
        self.created = 0

    def public_config(self) -> dict[str, Any]:
        return {"base_url": JIRA_URL, "project_key": "IT"}

    def create_ticket(self, request: Any) -> Any:

        self.created += 1
        key = f"IT-{1040 + self.created}"
        devices = len(request.target_devices)
        return TicketRef(
            "jira", str(20400 + self.created), key, f"{JIRA_URL}/browse/{key}", devices, 0
        )

    def find_ticket(self, idempotency_key: str) -> Any:
        return None

    def get_state(self, ref: Any) -> Any:

        system, state = self.states.get(ref.key, ("To Do", "accepted"))
        return TicketState(system, NormalizedState(state))

    def test_connection(self) -> Any:

        return ConnectionCheck(True, "demo")


@dataclass
class DemoHistory:
    """The demo's people at work; call :meth:`before_import` and :meth:`after_import` daily."""

    today: datetime
    appears: dict[str, int]  # CVE -> the day it became known (late ones)
    kev_from: dict[str, int]  # CVE -> the day it was listed in KEV (late listings)
    names: dict[str, int]  # device name -> index in the fleet
    # Day -> (fleet index, product key) pairs IT patches to the latest version that day.
    patches: dict[int, list[tuple[int, str]]] = field(default_factory=dict)
    ids: dict[str, Any] = field(default_factory=dict)
    jira: DemoJira = field(default_factory=lambda: DemoJira({}))

    def moment(self, day: int, hour: int) -> datetime:
        """``hour`` o'clock (UTC) on ``day``."""
        midnight = datetime.combine((self.today + timedelta(days=day)).date(), datetime.min.time())
        return midnight.replace(tzinfo=UTC) + timedelta(hours=hour)

    def before_import(self, day: int, fleet: list[Any], latest: Callable[[str], int]) -> set[int]:
        """Apply IT's patching planned for ``day``; the devices that changed."""
        changed = set()
        for index, key in self.patches.get(day, []):
            if key in fleet[index].software:
                fleet[index].software[key] = latest(key)
                changed.add(index)
        return changed

    def after_import(self, target: Session | Engine, day: int) -> None:
        """What people do on ``day``, after the morning's import."""
        steps: dict[int, Callable[[Session], None]] = {
            START_DAY: self._start,
            START_DAY + 2: self._second_day,
            -18: self._first_reports,
            -15: self._cancel_one_group,
            -9: self._more_reports,
            -6: self._complete_by_hand,
            -3: self._new_request,
            0: self._pending,
        }
        step = steps.get(day)
        if step is not None:
            _run(target, step)
        if day in (START_DAY, START_DAY + 2, -3) and isinstance(target, Engine):
            self._deliver(target, day)
        if day in (-20, -12, -7, -1):
            _run(target, lambda session: self._sync(session, day))

    # --- the days -------------------------------------------------------------------------

    def _start(self, session: Session) -> None:

        ensure_demo_users(session)
        self._connection(session, enabled=True)
        recs = _software_recommendations(session)
        chosen: set[str] = set()

        def pick(candidates: list[Any]) -> Any:
            for rec in candidates:
                if rec.id not in chosen:
                    chosen.add(rec.id)
                    return rec
            return None

        self._exceptions(session, recs, pick)
        by_reach = sorted(recs, key=lambda r: (r.exposed_machines_count, r.id))
        # Many devices: patching them all takes longer than the due date allows.
        widest = sorted(recs, key=lambda r: (-r.exposed_machines_count, r.id))
        self.ids["overdue"] = self._request(
            session, pick(widest), "analyst", START_DAY, due_in=14, priority="High"
        )
        # Few devices: IT patches them all within the week and the scan confirms it.
        scan = pick([r for r in by_reach if r.remediation_type == "Update"])
        self.ids["by_scan"] = self._request(
            session, scan, "analyst", START_DAY, due_in=21, priority="Medium"
        )
        if scan is not None:
            self._plan_patches(session, scan.id, START_DAY + 7)

    def _second_day(self, session: Session) -> None:
        # Many devices: the scan does not finish it before IT closes it by hand.
        recs = sorted(
            _software_recommendations(session), key=lambda r: (-r.exposed_machines_count, r.id)
        )
        taken = set(self.ids.get("taken", ()))
        rest = [r for r in recs if r.id not in taken and r.id not in self._activity_recs(session)]
        by_hand = rest[0] if rest else None
        self.ids["by_hand"] = self._request(
            session, by_hand, "itadmin", START_DAY + 2, due_in=30, priority="Low"
        )
        config = _configuration_recommendation(session)
        self.ids["attention"] = self._request(
            session, config, "analyst", START_DAY + 2, attention=True, priority="Medium"
        )

    def _first_reports(self, session: Session) -> None:

        analyst = _principal(session, "analyst")
        admin = _principal(session, "admin")
        recs = sorted(_software_recommendations(session), key=lambda r: r.id)
        if len(recs) < 3:
            return
        at = self.moment(-18, 10)
        dismissed = inaccuracy.report_inaccuracy(
            session,
            analyst,
            object_type="recommendation",
            object_id=recs[0].id,
            category="SoftwareNotInstalled",
            details="Removed from the kiosks last month; the scanner still lists it.",
            as_of=at,
        )
        inaccuracy.dismiss_report(
            session,
            admin,
            dismissed.id,
            comment="Still installed on two kiosks: checked on the devices.",
            as_of=at + timedelta(hours=5),
        )
        confirmed = inaccuracy.report_inaccuracy(
            session,
            analyst,
            object_type="recommendation",
            object_id=recs[1].id,
            category="WrongVersion",
            details="The build servers run the patched vendor build; the version string "
            "did not change.",
            as_of=at + timedelta(hours=1),
        )
        inaccuracy.confirm_report(
            session,
            admin,
            confirmed.id,
            comment="Confirmed with the vendor's advisory.",
            as_of=at + timedelta(hours=6),
        )

    def _cancel_one_group(self, session: Session) -> None:

        exception_id = self.ids.get("partly_canceled")
        group = self.ids.get("canceled_group")
        if exception_id is None or group is None:
            return
        lifecycle.cancel_exception(
            session,
            _principal(session, "admin"),
            exception_id,
            device_group_id=group,
            reason="The servers of this group move to the new line next week.",
            as_of=self.moment(-15, 11),
        )

    def _more_reports(self, session: Session) -> None:

        cve = session.scalars(select(Vulnerability.id).order_by(Vulnerability.id)).first()
        if cve is None:
            return
        inaccuracy.report_inaccuracy(
            session,
            _principal(session, "itadmin"),
            object_type="vulnerability",
            object_id=cve,
            category="FalsePositive",
            details="Only the client part is installed; the vulnerable server component is not.",
            as_of=self.moment(-9, 14),
        )

    def _complete_by_hand(self, session: Session) -> None:

        activity = self.ids.get("by_hand")
        if activity is None:
            return
        with contextlib.suppress(
            remediation_service.ActivityConflictError
        ):  # the scan completed it first
            remediation_service.complete_activity(
                session, _principal(session, "itadmin"), activity, now=self.moment(-6, 16)
            )

    def _new_request(self, session: Session) -> None:
        recs = sorted(_software_recommendations(session), key=lambda r: (-r.exposure_impact, r.id))
        busy = self._activity_recs(session) | set(self.ids.get("taken", ()))
        rest = [r for r in recs if r.id not in busy]
        self.ids["active"] = self._request(
            session, rest[0] if rest else None, "analyst", -3, due_in=24, priority="Medium"
        )

    # --- exceptions -----------------------------------------------------------------------

    def _exceptions(
        self, session: Session, recs: list[Any], pick: Callable[[list[Any]], Any]
    ) -> None:

        analyst = _principal(session, "analyst")
        admin = _principal(session, "admin")
        at = self.moment(START_DAY, 11)
        groups = list(session.scalars(select(DeviceGroup.id).order_by(DeviceGroup.name)).all())
        by_impact = sorted(recs, key=lambda r: (-r.exposure_impact, r.id))
        taken: list[str] = []

        # Resurfaced: a CVE joins the recommendation (or is listed in KEV) after filing.
        resurfacing = self._resurfacing(by_impact, pick)
        if resurfacing is not None:
            taken.append(resurfacing.id)
            filing.file_exception(
                session,
                analyst,
                recommendation_id=resurfacing.id,
                justification="AcceptRisk",
                context="Kiosk images are rebuilt every quarter; the risk is accepted until then.",
                all_groups=True,
                duration_days=90,
                as_of=at,
            )
        # In effect: a compensating control lowers the exposure (Mitigation-like).
        mitigated = pick(by_impact[2:])
        if mitigated is not None:
            taken.append(mitigated.id)
            filing.file_exception(
                session,
                analyst,
                recommendation_id=mitigated.id,
                justification="CompensatingControl",
                context="The application is reachable only through the browser isolation "
                "gateway; macros and plug-ins are blocked by policy.",
                all_groups=True,
                duration_days=90,
                as_of=at + timedelta(minutes=20),
            )
        # Expired: planned remediation that ran out twelve days ago.
        expired = pick(by_impact[4:])
        if expired is not None:
            taken.append(expired.id)
            filing.file_exception(
                session,
                analyst,
                recommendation_id=expired.id,
                justification="PlannedRemediation",
                context="Planned for the change window of the second week.",
                all_groups=True,
                expires_on=self.moment(-12, 23),
                as_of=at + timedelta(minutes=40),
            )
        # Canceled for one of its two groups two weeks later.
        partly = pick(by_impact[6:])
        if partly is not None and len(groups) >= 2:
            taken.append(partly.id)
            exc = filing.file_exception(
                session,
                admin,
                recommendation_id=partly.id,
                justification="BusinessNeed",
                context="The line-of-business application needs this version until its upgrade.",
                device_group_ids=groups[:2],
                # Runs out in five days: the dashboard's "Exceptions expiring soon" shows it.
                expires_on=self.moment(5, 23),
                as_of=at + timedelta(hours=1),
            )
            self.ids["partly_canceled"] = exc.id
            self.ids["canceled_group"] = groups[1]
        self.ids["taken"] = taken

    def _resurfacing(self, by_impact: list[Any], pick: Callable[[list[Any]], Any]) -> Any:
        """A recommendation whose exception will resurface, or None.

        A KEV listing of a CVE the recommendation already has resurfaces it for sure; a CVE
        that appears later only when some installed version is affected.
        """
        listed = _products_of(sorted(c for c, d in self.kev_from.items() if d > START_DAY))
        joined = _products_of(sorted(c for c, d in self.appears.items() if d > START_DAY))
        return pick(
            [r for r in by_impact if r.id.removeprefix("va-_-") in listed]
            + [r for r in by_impact if r.id.removeprefix("va-_-") in joined]
        )

    def _pending(self, session: Session) -> None:
        """Today, after the last import: a CVE exception waits for a second person."""

        cve = _top_cve(session)
        group = session.scalars(select(DeviceGroup.id).order_by(DeviceGroup.name)).first()
        if cve is None or group is None:
            return
        filing.file_exception(
            session,
            _principal(session, "analyst"),
            vulnerability_id=cve,
            justification="FalsePositive",
            context="The vulnerable module is not loaded on these servers "
            "(checked with the vendor's detection script).",
            device_group_ids=[group],
            duration_days=30,
            require_approval=True,
            as_of=self.moment(0, 9),
        )

    # --- remediation and tickets ----------------------------------------------------------

    def _request(
        self,
        session: Session,
        rec: Any,
        who: str,
        day: int,
        *,
        due_in: int = 0,
        priority: str,
        attention: bool = False,
    ) -> str | None:

        if rec is None:
            return None
        attention = attention or rec.remediation_type == "AttentionRequired"
        when = self.moment(day, 9)
        activity = requesting.request_remediation(
            session,
            _principal(session, who),
            recommendation_id=rec.id,
            remediation_type="AttentionRequired" if attention else rec.remediation_type,
            device_group_ids=None,
            priority=priority,
            due_on=None if attention else (when + timedelta(days=due_in)).date(),
            notes="Please roll it out with the next maintenance window.",
            connector="jira",
            now=when,
        )
        return activity.id

    def _activity_recs(self, session: Session) -> set[str]:

        return set(session.scalars(select(RemediationActivity.recommendation_id)).all())

    def _plan_patches(self, session: Session, recommendation_id: str, day: int) -> None:

        names = session.scalars(
            select(Device.name)
            .join(DeviceRecommendation, DeviceRecommendation.device_id == Device.id)
            .where(DeviceRecommendation.recommendation_id == recommendation_id)
        ).all()
        key = recommendation_id.removeprefix("va-_-")
        self.patches.setdefault(day, []).extend(
            (self.names[name], key) for name in sorted(names) if name in self.names
        )

    def _connection(self, session: Session, *, enabled: bool) -> None:

        admin = _principal(session, "admin")
        if enabled:
            connectors_service.configure(
                session,
                admin,
                name="jira",
                kind="jira",
                config={
                    "base_url": JIRA_URL,
                    "project_key": "IT",
                    "email": "it@example.org",
                    # The demo never reaches this address: a stand-in answers (DemoJira).
                    "api_token": "demo-only",
                },
            )
        connectors_service.set_enabled(session, admin, "jira", enabled)

    def _deliver(self, engine: Engine, day: int) -> None:

        deliver_pending(engine, self._resolve, now=self.moment(day, 10))
        if day == -3:
            _run(engine, lambda session: self._connection(session, enabled=False))

    def _sync(self, session: Session, day: int) -> None:

        keys = {
            name: session.scalar(
                select(RemediationActivity.ticket_key).where(RemediationActivity.id == activity)
            )
            for name, activity in self.ids.items()
            if name in ("overdue", "by_scan", "by_hand", "attention", "active")
            and isinstance(activity, str)
        }
        moves = {
            -20: {
                "overdue": ("In Progress", "in_progress"),
                "by_scan": ("In Progress", "in_progress"),
            },
            -12: {"by_scan": ("Done", "completed"), "attention": ("In Progress", "in_progress")},
            -7: {"by_hand": ("In Progress", "in_progress")},
            -1: {"by_hand": ("Done", "completed")},
        }[day]
        for name, state in moves.items():
            if keys.get(name):
                self.jira.states[str(keys[name])] = state
        sync_ticket_states(session, self._resolve, now=self.moment(day, 12))

    def _resolve(self, session: Session, name: str) -> TicketConnector | None:
        return cast("TicketConnector", self.jira)


def _software_recommendations(session: Session) -> list[Any]:

    return list(
        session.scalars(
            select(Recommendation)
            .where(Recommendation.kind == "software", Recommendation.exposed_machines_count > 0)
            .order_by(Recommendation.id)
        ).all()
    )


def _configuration_recommendation(session: Session) -> Any:

    return session.scalars(
        select(Recommendation)
        .where(Recommendation.kind == "configuration", Recommendation.exposed_machines_count > 0)
        .order_by(Recommendation.config_score_impact.desc(), Recommendation.id)
    ).first()


def _top_cve(session: Session) -> str | None:

    return session.scalars(
        select(RecommendationVulnerability.vulnerability_id)
        .order_by(RecommendationVulnerability.vulnerability_id.desc())
        .limit(1)
    ).first()


def _products_of(cves: list[str]) -> set[str]:
    wanted = set(cves)
    return {
        entry["product_key"]
        for entry in load_data("vulnerabilities.json")["vulnerabilities"]
        if entry["id"] in wanted
    }
