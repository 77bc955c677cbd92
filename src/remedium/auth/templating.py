"""Templates of the sign-in, token, user and audit pages.

The administration pages (tokens, users, audit) extend the product's layout
(``web/templates/base.html``); the sign-in page has a plain layout of its own.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from starlette.responses import HTMLResponse

from remedium.auth.csrf import csrf_token
from remedium.web.templating import get_templates


def render(
    request: Request, template: str, context: dict[str, Any], *, status_code: int = 200
) -> HTMLResponse:
    """Render one of these pages, with the principal and the CSRF token in its context.

    They share the product's template environment: the administration pages extend
    ``base.html`` (sidebar, header), the sign-in page the plain ``auth_layout.html``.
    """
    return get_templates().TemplateResponse(
        request,
        template,
        {
            "principal": getattr(request.state, "principal", None),
            "csrf_token": csrf_token(request),
            "groups": None,
            **context,
        },
        status_code=status_code,
    )
