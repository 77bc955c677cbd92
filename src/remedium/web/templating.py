"""Jinja2 set-up shared by every page: filters, navigation, and the per-request page context."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

import jinja2
from fastapi import Depends, Request
from fastapi.templating import Jinja2Templates
from starlette.responses import HTMLResponse

from remedium.api.deps import PrincipalDep, SessionDep
from remedium.auth.csrf import csrf_input
from remedium.auth.principal import Principal, Right, Scope
from remedium.intel.models import CATEGORY_LABELS
from remedium.inventory.queries import visible_groups
from remedium.web.groups import COOKIE_NAME, QUERY_PARAM, GroupFilter, resolve_selection

WEB_DIR = Path(__file__).resolve().parent
TEMPLATES_DIR = WEB_DIR / "templates"
# Feature packages that keep their page templates next to their code (``<feature>/templates``),
# each under a folder named after the feature so template names never collide.
FEATURE_TEMPLATE_DIRS = [
    WEB_DIR.parent / feature / "templates"
    for feature in ("remediation", "connectors", "exceptions", "auth", "audit", "jobs", "inventory")
]
STATIC_DIR = WEB_DIR / "static"

DASH = "\N{EN DASH}"  # what a table shows for a missing figure

REMEDIATION_LABELS = {
    "ConfigurationChange": "Configuration change",
    "Update": "Software update",
    "Upgrade": "Software upgrade",
    "Uninstall": "Software uninstall",
    "AttentionRequired": "Attention required",
}

# The ticketing systems' own spelling (connections are stored under lower-case names).
CONNECTOR_LABELS = {
    "intune": "Intune",
    "jira": "Jira",
    "servicenow": "ServiceNow",
    "webhook": "Webhook",
}


@dataclass(frozen=True, slots=True)
class NavItem:
    """One entry of the left navigation; ``order`` places it (gaps of 10 leave room)."""

    key: str
    label: str
    href: str
    order: int
    icon: str = "dot"
    right: Right | None = None  # shown only to users who hold it (the page refuses the others)
    section: str = "main"  # "main", or "admin" for the Administration part below it


# The navigation's sections, in display order, with the heading shown above each (none for main).
NAV_SECTIONS = (("main", ""), ("admin", "Administration"))


# The features that exist today. Remediation (order 30), Imports (60) and the connections'
# Settings (admin 120) add themselves with register_navigation() from their own pages modules:
# see docs/ui.md.
_NAVIGATION: dict[str, NavItem] = {
    item.key: item
    for item in (
        NavItem("dashboard", "Dashboard", "/", 10, "dashboard"),
        NavItem("recommendations", "Security recommendations", "/recommendations", 20, "shield"),
        NavItem("vulnerabilities", "Weaknesses", "/vulnerabilities", 40, "bug"),
        NavItem("software", "Software inventory", "/software", 45, "box"),
        NavItem("devices", "Devices", "/devices", 50, "device"),
        NavItem("inaccuracy", "Inaccuracy reports", "/inaccuracy", 65, "flag"),
        NavItem("users", "Users", "/settings/users", 100, "users", Right.ADMIN, "admin"),
        NavItem("tokens", "API tokens", "/settings/tokens", 110, "key", None, "admin"),
        NavItem("audit", "Audit history", "/audit", 130, "list", None, "admin"),
    )
}


def register_navigation(item: NavItem) -> None:
    """Add (or replace) an entry of the left navigation."""
    _NAVIGATION[item.key] = item


def navigation(principal: object = None, section: str | None = None) -> list[NavItem]:
    """The navigation entries ``principal`` may open, in display order (a template without a
    signed-in user passes an undefined value: then only the entries that need no right);
    ``section`` keeps one section's entries."""
    user = principal if isinstance(principal, Principal) else None
    return sorted(
        (
            item
            for item in _NAVIGATION.values()
            if (item.right is None or (user is not None and user.has(item.right)))
            and (section is None or item.section == section)
        ),
        key=lambda item: item.order,
    )


def navigation_sections(principal: object = None) -> list[tuple[str, str, list[NavItem]]]:
    """``(key, heading, entries)`` of each section with an entry ``principal`` may open."""
    sections = []
    for key, heading in NAV_SECTIONS:
        items = navigation(principal, key)
        if items:
            sections.append((key, heading, items))
    return sections


def _number(value: Any) -> str:
    if value is None:
        return DASH
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.1f}"
    return f"{int(value):,}"


def _score(value: Any) -> str:
    return DASH if value is None else f"{float(value):.1f}"


def _percent(value: Any, digits: int = 1) -> str:
    """A 0-1 probability (EPSS) as a percentage."""
    return DASH if value is None else f"{float(value) * 100:.{digits}f}%"


def _date(value: Any) -> str:
    if value is None:
        return DASH
    if isinstance(value, datetime | date):
        return value.strftime("%b %d, %Y").replace(" 0", " ")
    return str(value)


def _ago(value: Any) -> str:
    if not isinstance(value, datetime):
        return _date(value)
    moment = value if value.tzinfo else value.replace(tzinfo=UTC)
    seconds = (datetime.now(UTC) - moment).total_seconds()
    if seconds < 3600:
        return "just now" if seconds < 120 else f"{int(seconds // 60)} min ago"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h ago"
    days = int(seconds // 86400)
    return "1 day ago" if days == 1 else f"{days} days ago"


def _attempt_time(value: Any) -> str:
    """When a pending ticket is tried next: "due now", or "in 4 min (14:05 UTC)"."""
    if not isinstance(value, datetime):
        return DASH
    moment = value if value.tzinfo else value.replace(tzinfo=UTC)
    seconds = (moment - datetime.now(UTC)).total_seconds()
    if seconds <= 0:
        return "due now"
    wait = f"{int(seconds)} s" if seconds < 120 else f"{int(seconds // 60)} min"
    return f"in {wait} ({moment.strftime('%H:%M')} UTC)"


def _band(value: Any) -> str:
    """The CSS modifier of a level or severity word (Low, Medium, High, Critical, None)."""
    return str(value or "none").lower()


def _connector(value: Any) -> str:
    text = str(value or "")
    return CONNECTOR_LABELS.get(text.lower(), text)


def _label(value: Any) -> str:
    text = str(value or "")
    return REMEDIATION_LABELS.get(text) or CATEGORY_LABELS.get(text) or text


@lru_cache(maxsize=1)
def get_templates() -> Jinja2Templates:
    """The one template environment (autoescaped; templates are read once)."""
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader([TEMPLATES_DIR, *FEATURE_TEMPLATE_DIRS]),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        # Templates ship with the package: no stat() of every template file on every render.
        auto_reload=False,
    )
    environment.filters.update(
        number=_number,
        score=_score,
        percent=_percent,
        date=_date,
        ago=_ago,
        attempt_time=_attempt_time,
        band=_band,
        label=_label,
        connector=_connector,
    )
    environment.globals["navigation"] = navigation
    environment.globals["navigation_sections"] = navigation_sections
    environment.globals["csrf_input"] = csrf_input
    return Jinja2Templates(env=environment)


@dataclass
class PageContext:
    """What every page needs: who asks, what they may see, and the device-group filter."""

    request: Request
    principal: Principal | None
    scope: Scope
    groups: GroupFilter | None
    # Cookie change decided by the group filter: value to set, "" to delete, None to keep.
    group_cookie: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def url(self, **changes: Any) -> str:
        """The current page's URL with some query parameters changed (None removes one)."""
        params = {k: v for k, v in self.request.query_params.items() if k != QUERY_PARAM}
        for key, value in changes.items():
            if value is None or value == "":
                params.pop(key, None)
            else:
                params[key] = str(value)
        query = urlencode(params)
        return self.request.url.path + (f"?{query}" if query else "")

    def render(
        self, template: str, context: dict[str, Any], *, status_code: int = 200
    ) -> HTMLResponse:
        """Render ``template`` inside the layout, and keep the group filter's cookie in step."""
        response = get_templates().TemplateResponse(
            self.request,
            template,
            {
                "principal": self.principal,
                "groups": self.groups,
                "page": self,
                "csrf_token": getattr(self.request.state, "csrf_token", ""),
                **context,
            },
            status_code=status_code,
        )
        if self.group_cookie == "":
            response.delete_cookie(COOKIE_NAME, path="/")
        elif self.group_cookie is not None:
            response.set_cookie(
                COOKIE_NAME, self.group_cookie, path="/", httponly=True, samesite="lax"
            )
        return response


def get_page_context(request: Request, session: SessionDep, principal: PrincipalDep) -> PageContext:
    """The page context of a request: the principal's scope narrowed by the group filter."""
    selection = resolve_selection(
        visible_groups(session, principal.scope),
        request.query_params.getlist(QUERY_PARAM),
        request.cookies.get(COOKIE_NAME),
    )
    scope = principal.scope.narrowed(selection.filter.selected_ids)
    return PageContext(request, principal, scope, selection.filter, selection.cookie)


PageDep = Annotated[PageContext, Depends(get_page_context)]


def render_error(request: Request, status_code: int, title: str, message: str) -> HTMLResponse:
    """An error page in the layout (used for 404s, also of objects outside the user's scope)."""
    principal: Principal | None = getattr(request.state, "principal", None)
    page = PageContext(request, principal, Scope(), None)
    return page.render(
        "error.html",
        {"title": title, "message": message, "status_code": status_code},
        status_code=status_code,
    )
