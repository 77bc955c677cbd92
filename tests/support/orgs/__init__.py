"""The one test-organisation builder and its named scenarios.

``builder.py`` is the builder: a device group, a device, software, a vulnerability, an
installation, a weakness, a configuration check and its result, each added with the fewest words
(they flush, never commit). Every scenario is built with it alone, one module each, and the tests
take a scenario by name rather than building their own organisation:

=================  ===================  =======================================================
name               built by             what (used by)
=================  ===================  =======================================================
"exceptions"       exceptions.build     groups Alpha/Beta with one Chrome CVE each, clean Gamma,
                                        recomputed; a principal per role (tests/exceptions)
"worked-example"   worked_example       the worked example of docs/scoring.md, no derived data
                   .build_example       (recommendations, scoring, exceptions)
"random"           random_org           a seeded random organisation of every kind of device,
                   .build_random_org    for property-style checks (recommendations, queries)
"hand-made"        hand_made.build_org  derived tables written by hand, figures worked out in
                                        the tests (queries, api, security route walk)
"remediation"      remediation          one Chrome recommendation over groups A and B, ticket
                   .build_org           connections; committed (remediation, jobs, web cache)
"defender"         defender             four devices read through the Defender API, committed
                   .build_defender      (tests/defender, the ``org`` fixture)
"pages"            pages.build_pages    three groups, five products, checks and 30 days of
                                        history, committed (tests/web, the ``org`` fixture)
"demo"             demo.build_demo_org  the product's demo organisation at 150 devices (web)
"big-scan"         big_scan.write_scan  a native-format scan file of N devices, large enough
                                        that importing it takes seconds (db, importers)
=================  ===================  =======================================================

``TEMPLATES`` are the scenarios a test can take whole as its database, by marking itself
``@pytest.mark.scenario(name)``: each is built once per database kind (and test worker), then
copied for every test that asks (a SQLite file copy; PostgreSQL ``CREATE DATABASE ... TEMPLATE``),
so an organisation that takes seconds to build costs milliseconds per test. They take an engine,
commit, and return plain values (ids), which the copies share (the ``scenario`` fixture).
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine

from tests.support.orgs import (
    big_scan,
    defender,
    demo,
    exceptions,
    hand_made,
    pages,
    random_org,
    remediation,
    worked_example,
)

SCENARIOS: dict[str, Callable[..., object]] = {
    "exceptions": exceptions.build,
    "worked-example": worked_example.build_example,
    "random": random_org.build_random_org,
    "hand-made": hand_made.build_org,
    "remediation": remediation.build_org,
    "defender": defender.build_defender,
    "pages": pages.build_pages,
    "demo": demo.build_demo_org,
    "big-scan": big_scan.write_scan,
}

TEMPLATES: dict[str, Callable[[Engine], object]] = {
    "pages": pages.build_pages,
    "demo": demo.build_demo_org,
    "defender": defender.build_defender_org,
}
