"""Routes of the Microsoft Defender for Endpoint-compatible read API (``/api/...``).

Paths, field names, value spellings, OData options and reply envelopes follow Microsoft's
documentation (docs/defender-api.md lists the mappings and deviations), so scripts written for
``api.securitycenter.microsoft.com`` run against remedium by changing the base URL and token.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Coroutine, Sequence
from typing import Annotated, Any, TypeVar, cast

from fastapi import APIRouter, HTTPException, Query, Request, Response, params
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from remedium.api.deps import ScopeDep, SessionDep, require
from remedium.auth.principal import Right
from remedium.db.base import utcnow
from remedium.defender import ratelimit, schemas, service
from remedium.defender import software as defender_software
from remedium.defender.bulk import without_cycle_collection
from remedium.defender.encoding import json_response
from remedium.defender.odata import ODataError, Paging, paging, project, select_fields
from remedium.defender.schemas import odata_datetime
from remedium.settings import get_settings

# Microsoft's documented maximum page size ($top); vulnerabilities stop at 8,000.
MAX_TOP = 10_000
MAX_TOP_VULNERABILITIES = 8_000


class ResourceNotFoundError(Exception):
    """An entity that does not exist, or that lies outside the caller's device groups."""


def _error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    # Microsoft's error body; "target" is the correlation id its docs ask users to quote.
    return JSONResponse(
        {"error": {"code": code, "message": message, "target": str(uuid.uuid4())}},
        status_code=status,
        headers=headers,
    )


_CODES = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound"}


def _caller(request: Request) -> str | None:
    """The rate limit's key: the token, else the signed-in user (None: not signed in)."""
    auth = getattr(request.state, "auth", None)
    token_id = getattr(auth, "token_id", None)
    if token_id is not None:
        return f"token:{token_id}"
    principal = getattr(request.state, "principal", None)
    user_id = getattr(principal, "user_id", None)
    return None if user_id is None else f"user:{user_id}"


def _rate_limit(request: Request) -> int:
    configured = getattr(request.app.state, "defender_rate_limit", None)
    return int(get_settings().defender_rate_limit_per_minute if configured is None else configured)


class ODataRoute(APIRoute):
    """A route that answers Microsoft's error bodies (bad options, missing entities, missing
    rights, invalid parameters) and enforces the per-caller rate limit (429, Retry-After)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            limit = _rate_limit(request)
            caller = _caller(request)
            if limit > 0 and caller is not None:
                wait = await run_in_threadpool(
                    ratelimit.hit, request.app.state.engine, caller, limit
                )
                if wait is not None:
                    return _error(
                        429,
                        "TooManyRequests",
                        f"Rate limit is exceeded: {limit} calls per minute. "
                        f"Try again in {wait} seconds.",
                        {"Retry-After": str(wait)},
                    )
            try:
                return await handler(request)
            except ODataError as error:
                return _error(400, error.code, error.message)
            except ResourceNotFoundError as error:
                return _error(404, "ResourceNotFound", str(error))
            except RequestValidationError as error:
                problems = "; ".join(
                    f"{'.'.join(str(p) for p in e.get('loc', ())[1:])}: {e.get('msg', '')}"
                    for e in error.errors()
                )
                return _error(
                    400,
                    "InvalidRequestBody" if request.method == "POST" else "BadRequest",
                    problems or "Invalid request.",
                )
            except HTTPException as error:
                code = _CODES.get(error.status_code, "BadRequest")
                return _error(error.status_code, code, str(error.detail))

        return route


Handler = TypeVar("Handler", bound=Callable[..., Any])


def defender_router() -> APIRouter:
    """A router for part of the Defender-compatible API: ``/api``, OData errors, view right."""
    return APIRouter(
        prefix="/api",
        tags=["Defender-compatible API"],
        route_class=ODataRoute,
        dependencies=[cast(params.Depends, require(Right.VIEW))],
    )


def get_registrar(target: APIRouter) -> Callable[..., Callable[[Handler], Handler]]:
    """``@get(path, *other_spellings)``: a GET route under Microsoft's path and the other
    spellings its docs use (only the first is in the OpenAPI document)."""

    def get(*paths: str, **route: Any) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            for index, path in enumerate(paths):
                target.add_api_route(
                    path, handler, methods=["GET"], include_in_schema=index == 0, **route
                )
            return handler

        return register

    return get


router = defender_router()
_get = get_registrar(router)


FilterParam = Annotated[str | None, Query(alias="$filter")]
OrderByParam = Annotated[str | None, Query(alias="$orderby")]
SelectParam = Annotated[str | None, Query(alias="$select")]
TopParam = Annotated[str | None, Query(alias="$top")]
SkipParam = Annotated[str | None, Query(alias="$skip")]


def _context(request: Request, fragment: str) -> str:
    return f"{str(request.base_url).rstrip('/')}/api/$metadata#{fragment}"


def _paging(request: Request, top: str | None, skip: str | None, max_top: int) -> Paging:
    page_size: int = getattr(request.app.state, "defender_page_size", max_top)
    return paging(top, skip, max_top=max_top, page_size=page_size)


def _collection(
    request: Request,
    fragment: str,
    page: service.Page,
    page_options: Paging,
    selected: Sequence[str] | None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "@odata.context": _context(request, fragment),
        # The items are the service's fresh dicts: without $select they go out as they are.
        "value": page.items if selected is None else [project(i, selected) for i in page.items],
    }
    if page.has_more and page_options.server_driven:
        # Server-driven paging, as Microsoft does past its page size: the same query, next page.
        updates: dict[str, Any] = {"$skip": page_options.skip + page_options.limit}
        if page_options.top is not None:
            updates["$top"] = page_options.top - page_options.limit
        body["@odata.nextLink"] = str(request.url.include_query_params(**updates))
    return body


def _entity(request: Request, fragment: str, item: dict[str, Any]) -> dict[str, Any]:
    return {"@odata.context": _context(request, f"{fragment}/$entity"), **item}


# --- machines -----------------------------------------------------------------------------------


# The unpaged collections run to 10,000 items (megabytes): their replies are encoded here, once
# (defender/encoding.py); the OpenAPI document still describes them as JSON objects.
@_get("/machines", "/Machines", response_model=dict[str, Any])
def list_machines(
    request: Request,
    *,
    session: SessionDep,
    scope: ScopeDep,
    filter_: FilterParam = None,
    orderby: OrderByParam = None,
    select_: SelectParam = None,
    top: TopParam = None,
    skip: SkipParam = None,
) -> Response:
    """List machines (Defender's ``GET /api/machines``) in the caller's device groups."""
    selected = select_fields(select_, schemas.MACHINE_FIELDS)
    options = _paging(request, top, skip, MAX_TOP)
    query = service.Query(filter_, orderby, options)
    # The collector stays off until the page is encoded and freed: a pass right after the
    # page is built would walk its 100,000 objects (with the whole heap, now and then).
    with without_cycle_collection():
        page = service.list_machines(session, scope, query, now=utcnow())
        reply = json_response(_collection(request, "Machines", page, options, selected))
        del page
    return reply


@_get("/machines/{machine_id}", "/Machines/{machine_id}")
def get_machine(
    request: Request,
    *,
    session: SessionDep,
    scope: ScopeDep,
    machine_id: str,
    select_: SelectParam = None,
) -> dict[str, Any]:
    """One machine by its id (``GET /api/machines/{id}``)."""
    selected = select_fields(select_, schemas.MACHINE_FIELDS)
    item = service.get_machine(session, scope, machine_id, now=utcnow())
    if item is None:
        raise ResourceNotFoundError(f"Machine {machine_id} was not found")
    return _entity(request, "Machines", project(item, selected))


# --- recommendations ----------------------------------------------------------------------------


@_get("/recommendations", "/Recommendations", response_model=dict[str, Any])
def list_recommendations(
    request: Request,
    *,
    session: SessionDep,
    scope: ScopeDep,
    filter_: FilterParam = None,
    orderby: OrderByParam = None,
    select_: SelectParam = None,
    top: TopParam = None,
    skip: SkipParam = None,
) -> Response:
    """List security recommendations with exposed devices in the caller's scope."""
    selected = select_fields(select_, schemas.RECOMMENDATION_FIELDS)
    options = _paging(request, top, skip, MAX_TOP)
    query = service.Query(filter_, orderby, options)
    with without_cycle_collection():  # as for the machines
        page = service.list_recommendations(session, scope, query)
        reply = json_response(_collection(request, "Recommendations", page, options, selected))
        del page
    return reply


def _require_recommendation(session: SessionDep, scope: ScopeDep, recommendation_id: str) -> None:
    if service.get_recommendation(session, scope, recommendation_id) is None:
        raise ResourceNotFoundError(f"Recommendation {recommendation_id} was not found")


@_get("/recommendations/{recommendation_id}", "/Recommendations/{recommendation_id}")
def get_recommendation(
    request: Request,
    *,
    session: SessionDep,
    scope: ScopeDep,
    recommendation_id: str,
    select_: SelectParam = None,
) -> dict[str, Any]:
    """One recommendation (``GET /api/recommendations/{id}``) with figures over the scope."""
    selected = select_fields(select_, schemas.RECOMMENDATION_FIELDS)
    item = service.get_recommendation(session, scope, recommendation_id)
    if item is None:
        raise ResourceNotFoundError(f"Recommendation {recommendation_id} was not found")
    return _entity(request, "Recommendations", project(item, selected))


@_get(
    "/recommendations/{recommendation_id}/machineReferences",
    "/Recommendations/{recommendation_id}/machineReferences",
)
def recommendation_machines(
    request: Request,
    *,
    session: SessionDep,
    scope: ScopeDep,
    recommendation_id: str,
    filter_: FilterParam = None,
    orderby: OrderByParam = None,
    select_: SelectParam = None,
    top: TopParam = None,
    skip: SkipParam = None,
) -> dict[str, Any]:
    """The exposed devices of a recommendation, in scope."""
    _require_recommendation(session, scope, recommendation_id)
    selected = select_fields(select_, schemas.MACHINE_REFERENCE_FIELDS)
    options = _paging(request, top, skip, MAX_TOP)
    page = service.recommendation_machines(
        session, scope, recommendation_id, service.Query(filter_, orderby, options)
    )
    return _collection(request, "MachineReferences", page, options, selected)


@_get(
    "/recommendations/{recommendation_id}/vulnerabilities",
    "/Recommendations/{recommendation_id}/vulnerabilities",
)
def recommendation_vulnerabilities(
    request: Request,
    *,
    session: SessionDep,
    scope: ScopeDep,
    recommendation_id: str,
    filter_: FilterParam = None,
    orderby: OrderByParam = None,
    select_: SelectParam = None,
    top: TopParam = None,
    skip: SkipParam = None,
) -> dict[str, Any]:
    """The vulnerabilities a recommendation removes, with exposed devices in scope."""
    _require_recommendation(session, scope, recommendation_id)
    selected = select_fields(select_, schemas.VULNERABILITY_FIELDS)
    options = _paging(request, top, skip, MAX_TOP_VULNERABILITIES)
    page = service.recommendation_vulnerabilities(
        session, scope, recommendation_id, service.Query(filter_, orderby, options)
    )
    return _collection(request, "Vulnerabilities", page, options, selected)


@_get(
    "/recommendations/{recommendation_id}/software",
    "/Recommendations/{recommendation_id}/software",
)
def recommendation_software(
    request: Request,
    *,
    session: SessionDep,
    scope: ScopeDep,
    recommendation_id: str,
) -> dict[str, Any]:
    """The product a software recommendation is about (empty for configuration ones)."""
    _require_recommendation(session, scope, recommendation_id)
    items = defender_software.recommendation_software(session, scope, recommendation_id)
    return {"@odata.context": _context(request, "Software"), "value": items}


# --- vulnerabilities ----------------------------------------------------------------------------


@_get("/vulnerabilities", "/Vulnerabilities")
def list_vulnerabilities(
    request: Request,
    *,
    session: SessionDep,
    scope: ScopeDep,
    filter_: FilterParam = None,
    orderby: OrderByParam = None,
    select_: SelectParam = None,
    top: TopParam = None,
    skip: SkipParam = None,
) -> dict[str, Any]:
    """Vulnerabilities with open weaknesses on devices in the caller's scope."""
    selected = select_fields(select_, schemas.VULNERABILITY_FIELDS)
    options = _paging(request, top, skip, MAX_TOP_VULNERABILITIES)
    page = service.list_vulnerabilities(session, scope, service.Query(filter_, orderby, options))
    return _collection(request, "Vulnerabilities", page, options, selected)


@_get("/vulnerabilities/{cve_id}", "/Vulnerabilities/{cve_id}")
def get_vulnerability(
    request: Request,
    *,
    session: SessionDep,
    scope: ScopeDep,
    cve_id: str,
    select_: SelectParam = None,
) -> dict[str, Any]:
    """One vulnerability by its id (e.g. ``CVE-2024-3094``)."""
    selected = select_fields(select_, schemas.VULNERABILITY_FIELDS)
    item = service.get_vulnerability(session, scope, cve_id)
    if item is None:
        raise ResourceNotFoundError(f"Vulnerability {cve_id} was not found")
    return _entity(request, "Vulnerabilities", project(item, selected))


# --- software -----------------------------------------------------------------------------------


@_get("/Software", "/software")
def list_software(
    request: Request,
    *,
    session: SessionDep,
    scope: ScopeDep,
    filter_: FilterParam = None,
    orderby: OrderByParam = None,
    select_: SelectParam = None,
    top: TopParam = None,
    skip: SkipParam = None,
) -> dict[str, Any]:
    """The software inventory of the caller's device groups (``GET /api/Software``)."""
    selected = select_fields(select_, schemas.SOFTWARE_FIELDS)
    options = _paging(request, top, skip, MAX_TOP)
    page = defender_software.list_software(session, scope, service.Query(filter_, orderby, options))
    return _collection(request, "Software", page, options, selected)


@_get("/Software/{software_id}", "/software/{software_id}")
def get_software(
    request: Request,
    *,
    session: SessionDep,
    scope: ScopeDep,
    software_id: str,
    select_: SelectParam = None,
) -> dict[str, Any]:
    """One product by its id (``vendor-_-product``)."""
    selected = select_fields(select_, schemas.SOFTWARE_FIELDS)
    item = defender_software.get_software(session, scope, software_id)
    if item is None:
        raise ResourceNotFoundError(f"Software {software_id} was not found")
    return _entity(request, "Software", project(item, selected))


# --- scores -------------------------------------------------------------------------------------


@_get("/exposureScore", "/exposurescore")
def exposure_score(request: Request, *, session: SessionDep, scope: ScopeDep) -> dict[str, Any]:
    """The exposure score (0-100, lower is better) of the caller's device groups."""
    return _entity(
        request,
        "ExposureScore",
        {
            "time": odata_datetime(utcnow()),
            "score": service.organisation_exposure_score(session, scope),
        },
    )


@_get("/exposureScore/ByMachineGroups", "/exposurescore/bymachinegroups")
def exposure_score_by_groups(
    request: Request, *, session: SessionDep, scope: ScopeDep
) -> dict[str, Any]:
    """The exposure score of each device group in the caller's scope."""
    now = odata_datetime(utcnow())
    return {
        "@odata.context": _context(request, "ExposureScore"),
        "value": [
            {"time": now, "score": score, "rbacGroupName": name, "rbacGroupId": group_id}
            for group_id, name, score in service.exposure_by_group(session, scope)
        ],
    }


@_get("/configurationScore", "/configurationscore")
def configuration_score(
    request: Request, *, session: SessionDep, scope: ScopeDep
) -> dict[str, Any]:
    """Secure Score for devices (0-100, higher is better) of the caller's device groups."""
    return _entity(
        request,
        "ConfigurationScore",
        {"time": odata_datetime(utcnow()), "score": service.configuration_score(session, scope)},
    )
