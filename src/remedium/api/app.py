"""The application factory: every router is registered here, explicitly."""

from __future__ import annotations

import gc

from fastapi import FastAPI
from sqlalchemy import Engine

from remedium import __version__
from remedium.api import health
from remedium.api.docs import install_docs
from remedium.api.integers import IntegerBoundsMiddleware
from remedium.api.openapi import install_openapi
from remedium.api.read_limit import ReadLimitMiddleware
from remedium.api.routing import install_read_routing
from remedium.api.security_headers import SecurityHeadersMiddleware
from remedium.api.upload_limit import UploadLimitMiddleware
from remedium.audit import api as audit_api
from remedium.audit import pages as audit_pages
from remedium.auth import api as auth_api
from remedium.auth import pages as auth_pages
from remedium.auth.middleware import install_authentication
from remedium.connectors import api as connectors_api
from remedium.connectors import pages as connectors_pages
from remedium.db.session import get_engine
from remedium.defender import api as defender_api
from remedium.defender import exports as defender_exports
from remedium.defender import relations as defender_relations
from remedium.defender import remediation as defender_remediation
from remedium.defender import writes as defender_writes
from remedium.exceptions import api as exceptions_api
from remedium.exceptions import inaccuracy_pages
from remedium.exceptions import pages as exceptions_pages
from remedium.importers import api as importers_api
from remedium.importers import pages as importers_pages
from remedium.intel import api as intel_api
from remedium.inventory import api as inventory_api
from remedium.inventory import groups_api, groups_pages
from remedium.jobs import pages as jobs_pages
from remedium.recommendations import api as recommendations_api
from remedium.remediation import api as remediation_api
from remedium.remediation import pages as remediation_pages
from remedium.scoring import api as scoring_api
from remedium.settings import get_settings
from remedium.web.pages import install_pages


def create_app(engine: Engine | None = None, read_engine: Engine | None = None) -> FastAPI:
    """Build the web UI and API application on ``engine`` (default: the configured database);
    reads go to ``read_engine`` (default: ``REMEDIUM_DATABASE_READ_URL``, if set)."""
    app = FastAPI(
        title="remedium",
        version=__version__,
        description="Vulnerability remediation and exception management.",
        docs_url=None,  # served by api/docs.py, without a CDN
        redoc_url=None,
    )
    app.state.engine = engine or get_engine()
    # Inside authentication (an anonymous caller gets 401 first), before any route.
    app.add_middleware(IntegerBoundsMiddleware)
    read_url = get_settings().database_read_url
    app.state.read_engine = read_engine or (get_engine(read_url) if read_url else None)
    # Registered before authentication, so it runs after it: the look-up stays on the primary.
    install_read_routing(app)
    install_authentication(app)
    # Outside authentication, which reads form bodies for their CSRF token.
    app.add_middleware(UploadLimitMiddleware)
    # Outside authentication too: a waiting read holds no thread and no database connection.
    app.add_middleware(ReadLimitMiddleware, limit=get_settings().max_concurrent_reads)
    # Added last, so it wraps everything: even the authentication middleware's 401/403/redirects.
    app.add_middleware(SecurityHeadersMiddleware)
    install_docs(app)
    app.include_router(health.router)
    app.include_router(importers_api.router)
    app.include_router(importers_pages.router)
    app.include_router(auth_pages.router)
    app.include_router(auth_api.router)
    app.include_router(audit_api.router)
    app.include_router(audit_pages.router)
    # Before defender_api: /machines/findbytag and the exports are not machine ids.
    app.include_router(defender_exports.router)
    app.include_router(defender_exports.downloads)
    app.include_router(defender_relations.router)
    app.include_router(defender_writes.router)
    app.include_router(defender_api.router)
    app.include_router(defender_remediation.router)
    app.include_router(inventory_api.router)
    app.include_router(groups_api.router)
    app.include_router(groups_pages.router)
    app.include_router(intel_api.router)
    app.include_router(recommendations_api.router)
    app.include_router(remediation_api.router)
    app.include_router(exceptions_pages.router)
    app.include_router(inaccuracy_pages.router)
    app.include_router(remediation_pages.router)
    app.include_router(connectors_api.router)
    app.include_router(connectors_pages.router)
    app.include_router(jobs_pages.router)
    app.include_router(scoring_api.router)
    app.include_router(exceptions_api.router)
    install_pages(app)
    install_openapi(app)
    return app


# The collector's thresholds in a server process (Python's defaults: 700, 10, 10): a page view
# allocates tens of thousands of short-lived objects, so the defaults ran several collections
# per request, the older generations often; see serving_app.
COLLECTOR_THRESHOLDS = (20_000, 50, 100)


def serving_app(engine: Engine | None = None) -> FastAPI:
    """The application as ``remedium serve`` runs it in each server process.

    Once the application is built, everything alive (the modules, routes, templates, mappers) is
    moved out of the collector's sight (``gc.freeze``) and the generations are collected less
    often. With 50 users on 2 cores (``benchmarks/load.py``, 2 processes) this took the
    95th percentile from about 500 to about 420 ms and the throughput from about 175 to about
    195 requests/s (docs/deployment.md). Reference counting still frees almost everything at
    once; the collector still runs, on cycles only, a little later. Tests build applications
    with :func:`create_app` and leave the collector alone.
    """
    app = create_app(engine)
    gc.collect()
    gc.freeze()
    gc.set_threshold(*COLLECTOR_THRESHOLDS)
    return app
