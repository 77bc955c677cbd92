"""Property-based fuzzing of the whole API from its OpenAPI document: no input answers 5xx.

Schemathesis generates valid (positive) and invalid (negative) requests for every operation of
``/openapi.json``, over a small organisation, as an administrator (so no route stops at 403).
Bounded: a fixed number of examples per operation and mode, derandomised (the same cases every
run), about a minute per database on an idle machine.
"""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from sqlalchemy import Engine

from remedium.api.app import create_app
from remedium.db.session import transaction
from tests.support.orgs.exceptions import build
from tests.support.signin import user_with_token

EXAMPLES = 6
# Operations that lock the fuzzer out (revoke its token, deactivate its user) run last.
LAST = ("/api/v1/tokens/{token_id}", "/api/v1/users/{user_id}")


def _order(operation: Any) -> tuple[int, str, str]:
    last = any(operation.path.startswith(prefix) for prefix in LAST)
    return (1 if last else 0, operation.path, operation.method)


def test_no_input_makes_the_api_fail(engine: Engine) -> None:
    with transaction(engine) as session:
        build(session)
    token = user_with_token(engine, "fuzzer")
    headers = {"Authorization": f"Bearer {token}"}
    app = create_app(engine)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, headers=headers)
    operations = sorted((result.ok() for result in schema.get_all_operations()), key=_order)
    assert len(operations) > 70
    failures: list[str] = []
    answered: set[str] = set()

    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def check(case: Any) -> None:
                response = case.call(headers=headers)
                if response.status_code < 300:
                    answered.add(f"{case.method} {case.operation.path}")
                if response.status_code >= 500:
                    failures.append(
                        f"{response.status_code} {case.as_curl_command(headers=headers)}"
                    )

            try:
                check()
            except Exception as error:
                if "Unsatisfiable" not in type(error).__name__:
                    failures.append(f"{operation.method} {operation.path} ({mode}): {error!r}")
    assert failures == [], "\n".join(failures[:20])
    # The fuzzer got through authentication: operations answered generated requests with success.
    assert len(answered) >= 10, sorted(answered)
