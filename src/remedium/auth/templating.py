"""Templates of the sign-in, token, user and audit pages.

They extend the product's layout (``web/templates/base.html``) when it exists, and a minimal
layout of their own otherwise, so sign-in works even before the rest of the UI is there.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import HTMLResponse

from remedium.auth.csrf import csrf_input, csrf_token

AUTH_TEMPLATES = Path(__file__).resolve().parent / "templates"
AUDIT_TEMPLATES = AUTH_TEMPLATES.parents[1] / "audit" / "templates"
WEB_TEMPLATES = AUTH_TEMPLATES.parents[1] / "web" / "templates"


@lru_cache(maxsize=1)
def _templates() -> Jinja2Templates:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader([AUTH_TEMPLATES, AUDIT_TEMPLATES]),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.globals["csrf_input"] = csrf_input
    return Jinja2Templates(env=environment)


def render(
    request: Request, template: str, context: dict[str, Any], *, status_code: int = 200
) -> HTMLResponse:
    """Render one of these pages, with the principal and the CSRF token in its context."""
    return _templates().TemplateResponse(
        request,
        template,
        {
            "principal": getattr(request.state, "principal", None),
            "csrf_token": csrf_token(request),
            **context,
        },
        status_code=status_code,
    )
