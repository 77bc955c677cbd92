"""The interactive API documentation (``/api/docs``), served entirely by remedium.

FastAPI's own page loads Swagger UI from a CDN and starts it with an inline script; remedium's
pages load nothing from outside (a closed network must work) and run no inline script (the
Content-Security-Policy forbids it). So Swagger UI's files come from the pinned PyPI package
``swagger-ui-bundle-v2`` (mounted at ``/api/docs/assets``) and ``web/static/api-docs.js`` starts it.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from starlette.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

ASSETS = "/api/docs/assets"
PAGE = f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>remedium API</title>
  <link rel="stylesheet" href="{ASSETS}/swagger-ui.css">
  <link rel="icon" href="/static/favicon.svg">
</head>
<body>
  <div id="swagger-ui" data-openapi-url="/openapi.json"></div>
  <script src="{ASSETS}/swagger-ui-bundle.js"></script>
  <script src="/static/api-docs.js"></script>
</body>
</html>
"""


def install_docs(app: FastAPI) -> None:
    """``/api/docs`` and Swagger UI's files; call before routers with ``/api/{...}`` paths."""
    app.mount(ASSETS, StaticFiles(directory=str(swagger_ui_path)), name="swagger-ui")

    @app.get("/api/docs", include_in_schema=False)
    def api_docs() -> HTMLResponse:
        return HTMLResponse(PAGE)
