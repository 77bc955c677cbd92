"""The application factory: every router is registered here, explicitly."""

from __future__ import annotations

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
