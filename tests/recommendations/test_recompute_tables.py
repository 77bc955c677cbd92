"""The recompute's work tables (``recompute_tables``) and its reviewed statements (``_sql``), on
SQLite and PostgreSQL: every table is created and dropped, every statement in every shape runs
against them over a real organisation, and a recompute uses exactly the declared tables and
leaves none of them behind."""

from __future__ import annotations

import ast
import inspect as pyinspect
import itertools
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from sqlalchemy import Integer, delete, inspect, select
from sqlalchemy.orm import Session

from remedium.db.migrate import upgrade_database
from remedium.db.session import make_engine
from remedium.exceptions import filing
from remedium.inventory.models import Weakness
from remedium.recommendations import _sql as sql
from remedium.recommendations import _sql_devices as device_sql
from remedium.recommendations import _sql_fields as fields_sql
from remedium.recommendations import group_figures
from remedium.recommendations import recompute_tables as work
from remedium.recommendations import service as recommendations_service
from remedium.recommendations.coverage import effective_coverage
from remedium.recommendations.engine import SEVERITY_RANK
from remedium.recommendations.models import DeviceRecommendation
from remedium.recommendations.recompute_runner import RecomputeStats, Runner, Sql
from remedium.recommendations.service import recompute
from tests.recommendations.test_incremental import _dump, _random_change
from tests.support.orgs.builder import NOW
from tests.support.orgs.exceptions import ADMIN
from tests.support.orgs.random_org import RandomOrg, build_random_org


def _temp_tables(session: Session) -> set[str]:
    return set(inspect(session.connection()).get_temp_table_names())


def _runner(session: Session) -> Runner:
    return Runner(session, NOW, RecomputeStats(full=False))


def test_every_work_table_is_a_typed_temporary_table_of_its_own_metadata() -> None:
    assert {t.name for t in work.WORK_TABLES} == set(work.work_metadata.tables)
    for table in work.WORK_TABLES:
        assert table.name.startswith("tmp_rm_")
        assert "TEMPORARY" in table._prefixes
        for column in table.primary_key.columns:
            # A plain key, never a sequence (PostgreSQL would make SERIAL of an integer key).
            if isinstance(column.type, Integer):
                assert column.autoincrement is False, column
    assert work.device_recommendation_work_by_device.table is work.device_recommendation_work


def test_every_work_table_is_created_and_dropped(session: Session) -> None:
    run = _runner(session)
    before = _temp_tables(session)
    for table in work.WORK_TABLES:
        run.create(table)
    run.create_index(work.device_recommendation_work_by_device)
    assert _temp_tables(session) - before == {t.name for t in work.WORK_TABLES}
    run.fill(work.target_devices, [{"id": 1}, {"id": 2}])
    run.fill(work.coverage, [{"recommendation_id": None, "vulnerability_id": "CVE-1",
                              "device_group_id": 1, "mitigating": 1}])  # fmt: skip
    assert run.scalar(Sql(f"SELECT count(*) FROM {sql.DEVICES}")) == 2
    run.drop_work_tables()
    assert _temp_tables(session) == before
    # Dropping what is not there is harmless (every recompute starts with it).
    run.drop_work_tables()


# The values each bind parameter or switch of a statement function is tried with.
_ARGUMENTS: dict[str, Callable[[bool], list[Any]]] = {
    "full": lambda sqlite: [True, False],
    "sqlite": lambda sqlite: [sqlite],
    "table": lambda sqlite: list(sql.GROUP_ROW_TABLES),
    "severity_rank": lambda sqlite: [SEVERITY_RANK],
    "software_id": lambda sqlite: [1],
    "group_id": lambda sqlite: [1],
    "versions": lambda sqlite: [["1.0", "2.0"]],
    "after": lambda sqlite: [None, "a"],
    "size": lambda sqlite: [5000],
    "span": lambda sqlite: [fields_sql.Span(None, "zzz"), fields_sql.Span("a", "zzz")],
}
_ARGUMENTS_OF: dict[str, dict[str, list[Any]]] = {
    "analyze": {"table": [*work.WORK_TABLES, "recommendation", "device_recommendation"]},
}
_ONLY_ON = {
    "SET_WORK_MEM": "postgresql",
    "NO_JIT": "postgresql",
    "COUNT_DEVICE_RECOMMENDATIONS": "postgresql",
    "DELETE_STALE_DEVICE_RECOMMENDATIONS": "postgresql",
    "INSERT_NEW_DEVICE_RECOMMENDATIONS": "postgresql",
    "COUNT_STAGED_ROWS": "postgresql",
    "LIMIT_ANALYSIS": "sqlite",
}
# The reviewed modules of statements, by the name the steps import them as.
_MODULES = {"sql": sql, "device_sql": device_sql, "fields_sql": fields_sql}


def _statements(dialect: str) -> Iterator[tuple[str, Sql]]:
    """Every statement of ``_sql`` and ``_sql_devices``, in every shape its arguments give it,
    named as the steps call it (``sql.NAME``, ``device_sql.NAME``)."""
    sqlite = dialect == "sqlite"
    for alias, module in _MODULES.items():
        for name, value in _module_statements(module, sqlite):
            if _ONLY_ON.get(name.split("(")[0], dialect) == dialect:
                yield f"{alias}.{name}", value


def _module_statements(module: ModuleType, sqlite: bool) -> Iterator[tuple[str, Sql]]:
    for name, value in vars(module).items():
        if name.startswith("_"):
            continue
        if isinstance(value, Sql):
            yield name, value
        elif pyinspect.isfunction(value) and value.__module__ == module.__name__:
            parameters = pyinspect.signature(value).parameters
            choices = [
                _ARGUMENTS_OF.get(name, {}).get(p) or _ARGUMENTS[p](sqlite) for p in parameters
            ]
            for arguments in itertools.product(*choices):
                yield f"{name}{arguments!r}", value(*arguments)


_SQL_WORDS = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE|CREATE|DROP|ANALYZE|PRAGMA|SET)\b")


def _code_strings_and_imports(module: ModuleType) -> tuple[list[str], set[str]]:
    """The string literals of a module that are not docstrings, and the names it imports."""
    tree = ast.parse(pyinspect.getsource(module))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.FunctionDef | ast.ClassDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
    }
    strings = [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
        if id(node) not in docstrings
    ]
    imported = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    return strings, imported


def test_the_recompute_runs_every_statement_of_the_reviewed_module_and_no_other() -> None:
    names = {name.split("(")[0] for name, _ in _statements("sqlite")}
    names |= {name.split("(")[0] for name, _ in _statements("postgresql")}
    steps = (recommendations_service, group_figures)
    sources = "".join(pyinspect.getsource(module) for module in steps)
    # No statement is dead...
    dead = {name for name in names if not re.search(rf"\b{re.escape(name)}\b", sources)}
    assert dead == set()
    # ...and the steps hold no SQL text of their own.
    for module in steps:
        strings, imported = _code_strings_and_imports(module)
        assert [s for s in strings if _SQL_WORDS.search(s)] == [], module.__name__
        assert not {"text", "bindparam", "exec_driver_sql"} & imported, module.__name__


def test_every_statement_runs_against_the_work_tables(session: Session) -> None:
    # Inventory and intelligence, and the recommendations only: the other derived tables are
    # empty, so every INSERT of the recompute can write its rows. Each statement runs alone, in
    # a savepoint rolled back after it.
    build_random_org(session, seed=7, devices=12)
    session.flush()
    run = _runner(session)
    dialect = session.get_bind().dialect.name
    for table in work.WORK_TABLES:
        run.create(table)
    run.create_index(work.device_recommendation_work_by_device)
    device_ids = [{"id": i} for (i,) in session.execute(select(Weakness.device_id).distinct())]
    run.fill(work.target_devices, device_ids)
    run.run(sql.stage_software_points(False))
    run.run(sql.stage_failed_checks(False))
    # The recommendations the device rows name (a foreign key), with placeholder fields.
    assert recommendations_service._create_recommendations(run) > 0
    statements = list(_statements(dialect))
    assert statements
    for name, statement in statements:
        savepoint = session.begin_nested()
        try:
            if statement.text.startswith("SELECT"):
                run.rows(statement)
            else:
                run.run(statement)
        except Exception as error:  # name the statement that failed
            raise AssertionError(f"{name} failed on {dialect}: {error}") from error
        finally:
            savepoint.rollback()
    run.drop_work_tables()


def _file_exceptions(session: Session, org: RandomOrg) -> None:
    recommendation = session.scalars(
        select(DeviceRecommendation.recommendation_id).order_by(
            DeviceRecommendation.recommendation_id
        )
    ).first()
    cve = session.scalars(select(Weakness.vulnerability_id).order_by(Weakness.id)).first()
    for target, is_global in (({"recommendation_id": recommendation}, True),
                              ({"vulnerability_id": cve}, False)):  # fmt: skip
        filing.file_exception(
            session,
            ADMIN,
            justification="CompensatingControl",
            impact="MitigationLike",
            is_global=is_global,
            device_group_ids=[] if is_global else org.group_ids[:2],
            duration_days=30,
            as_of=NOW,
            **target,
        )


def test_a_recompute_uses_exactly_the_declared_tables_and_leaves_none(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    created: list[str] = []
    create = work.create_work_table

    def recording(connection: Any, table: Any) -> None:
        created.append(table.name)
        create(connection, table)

    monkeypatch.setattr(work, "create_work_table", recording)
    before = _temp_tables(session)
    org = build_random_org(session, seed=8, devices=20)
    recompute(session, as_of=NOW)
    _file_exceptions(session, org)  # filing recomputes, with the exceptions' coverage
    assert effective_coverage(session, NOW)
    touched: set[int] = set()
    for _ in range(3):
        touched |= _random_change(session, org)
    recompute(session, device_ids=touched, as_of=NOW)
    incremental = _dump(session)
    assert _temp_tables(session) == before
    # Every declared table was used, and no other.
    assert set(created) == {t.name for t in work.WORK_TABLES}
    recompute(session, as_of=NOW)
    assert _dump(session) == incremental
    assert _temp_tables(session) == before


def test_incremental_vulnerability_rows_look_each_device_up_by_its_product(
    tmp_path: Path,
) -> None:
    """On SQLite the incremental ``recommendation_vulnerability`` rows are read device by device
    through the (device, software, vulnerability) index, never through all the weaknesses of a
    product once per device (84 s instead of 0.3 s for an unchanged re-import of 1,420
    workloads into the demo organisation). PostgreSQL plans it from its statistics."""
    engine = make_engine(f"sqlite:///{tmp_path / 'plan.db'}")
    upgrade_database(engine)
    with Session(engine) as session:
        indexes = {
            row[1] for row in session.connection().exec_driver_sql("PRAGMA index_list(weakness)")
        }
        assert sql.WEAKNESS_UNIQUE_INDEX in indexes
        run = _runner(session)
        run.create(work.touched_pairs)
        statement = sql.insert_recommendation_vulnerabilities(False, True)
        select_part = statement.text[statement.text.index("SELECT") :]
        plan = " | ".join(
            str(row[3])
            for row in session.connection().exec_driver_sql(
                "EXPLAIN QUERY PLAN " + select_part.replace(":cutoff", "'2026-01-01'")
            )
        )
    engine.dispose()
    assert f"{sql.WEAKNESS_UNIQUE_INDEX} (device_id=? AND software_id=?)" in plan, plan
    assert "ix_weakness_software_open" not in plan, plan


def test_a_full_recompute_over_rows_equals_one_into_an_empty_table(session: Session) -> None:
    # PostgreSQL brings the rows there up to date in place (deleting, updating, inserting
    # only what moved); into an empty table it inserts them all. Both give the same rows.
    org = build_random_org(session, seed=12, devices=30)
    recompute(session, as_of=NOW)
    for _ in range(4):
        touched: set[int] = set()
        for _ in range(3):
            touched |= _random_change(session, org)
        assert recompute(session, as_of=NOW).full
        in_place = _dump(session)
        session.execute(delete(DeviceRecommendation))
        stats = recompute(session, as_of=NOW)
        assert _dump(session) == in_place
        assert stats.device_recommendations == len(in_place["device_recommendation"])


def test_sqlite_rows_of_a_first_recompute_lie_in_key_order(tmp_path: Path) -> None:
    """SQLite keeps a table's rows in the order they were inserted, beside a separate index on
    the key. The recompute reads ``recommendation`` and ``recommendation_vulnerability`` in key
    order (the fields pass, a span of ids at a time): inserted in that order, their rows are
    read page after page, not one page each (Grype at 1,500,000: docs/imports.md)."""
    engine = make_engine(f"sqlite:///{tmp_path / 'order.db'}")
    upgrade_database(engine)
    with Session(engine) as session:
        build_random_org(session, seed=5, devices=40)
        raw = session.connection().exec_driver_sql
        # Products named against the order they were added in (as a report's often are): the
        # weaknesses, read by product, then come in the reverse order of the recommendations.
        raw("UPDATE software SET product_key = printf('p%06d', 999999 - id)")
        recompute(session, as_of=NOW)
        recommendations = [row[0] for row in raw("SELECT id FROM recommendation ORDER BY rowid")]
        vulnerabilities = list(
            raw(
                "SELECT recommendation_id, vulnerability_id, device_group_id "
                "FROM recommendation_vulnerability ORDER BY rowid"
            )
        )
    engine.dispose()
    assert len(recommendations) >= 10
    assert len(vulnerabilities) >= 30
    assert recommendations == sorted(recommendations)
    assert vulnerabilities == sorted(vulnerabilities)
