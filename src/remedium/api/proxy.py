"""Which reverse proxies are believed: ``X-Forwarded-For``/``-Proto`` only from those listed.

uvicorn believes ``X-Forwarded-*`` from 127.0.0.1 by default, so anyone on the same host (or any
client, behind a proxy that passes the header on) could forge the client address that the sign-in
throttle counts and the audit history records. remedium turns that off unless
``REMEDIUM_TRUSTED_PROXIES`` names the proxies.
"""

from __future__ import annotations

from typing import Any

from remedium.settings import Settings


def uvicorn_proxy_options(settings: Settings) -> dict[str, Any]:
    """The ``proxy_headers``/``forwarded_allow_ips`` arguments of ``uvicorn.run``/``Config``."""
    trusted = settings.trusted_proxy_list
    if not trusted:
        return {"proxy_headers": False, "forwarded_allow_ips": ""}
    return {"proxy_headers": True, "forwarded_allow_ips": trusted}
