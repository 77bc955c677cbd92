"""A command loads what it uses (issue 16: ``remedium --help`` and a small import start in ≤ 0.5 s).

Nothing here is timed (``benchmarks/startup.py`` times it; docs/imports.md, "Start-up"): each
test runs a fresh Python and looks at what ended up in ``sys.modules``, so a module-level import
that drags SQLAlchemy into ``--help`` or the web stack into an import fails here at once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from remedium.importers.records import ReportError
from remedium.importers.registry import FORMATS, SNIFF_BYTES, SNIFF_NEEDS, detect_parser, get_parser
from tests.conftest import CORPUS

FIXTURES = Path(__file__).resolve().parents[1] / "importers" / "fixtures"
SMALL_REPORTS = {
    "trivy": FIXTURES / "trivy" / "image.json",
    "grype": FIXTURES / "grype" / "directory.json",
    "cyclonedx": FIXTURES / "cyclonedx" / "sbom_with_vex.json",
    "nessus": FIXTURES / "nessus" / "two_hosts.nessus",
}
# Never loaded by the command line outside `remedium serve` and `remedium demo`.
WEB_STACK = ("fastapi", "starlette", "jinja2", "uvicorn", "multipart", "itsdangerous")
# Loaded by a command when it runs, never for its --help.
COMMAND_STACK = ("sqlalchemy", "alembic", "pydantic_settings", "remedium.db.session", "httpx")
# Not used by a small import into a migrated SQLite database: Alembic (the schema is current),
# univers (nothing to match versions against), PostgreSQL's dialect, Rich's progress bars (no
# terminal), the API's and the pages' modules.
NOT_FOR_A_SMALL_IMPORT = (
    *WEB_STACK,
    "alembic",
    "univers",
    "sqlalchemy.dialects.postgresql",
    "psycopg",
    "rich.progress",
    "remedium.api",
    "remedium.web",
    "remedium.importers.api",
    "remedium.importers.pages",
)
XML_PARSERS = ("nessus", "openvas", "qualys", "openscap")


def loaded_after(code: str, env: dict[str, str] | None = None) -> list[str]:
    """The modules in ``sys.modules`` after a fresh Python runs ``code``."""
    probe = f"{code}\nimport json, sys\nprint('MODULES=' + json.dumps(sorted(sys.modules)))\n"
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, **(env or {})},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith("MODULES="))
    modules: list[str] = json.loads(line.removeprefix("MODULES="))
    return modules


def present(modules: list[str], names: tuple[str, ...]) -> list[str]:
    """Which of ``names`` (a package or any module under it) are among ``modules``."""
    return [n for n in names if any(m == n or m.startswith(n + ".") for m in modules)]


def test_the_command_line_and_the_help_texts_load_no_database_and_no_web_stack() -> None:
    modules = loaded_after(
        "from typer.testing import CliRunner\n"
        "from remedium.cli.main import app, load\n"
        "for args in (['--help'], ['import', '--help'], ['jobs', 'run', '--help']):\n"
        "    result = CliRunner().invoke(app, args)\n"
        "    assert result.exit_code == 0, result.output\n"
        "load('import'); load('jobs'); load('worker')\n"
    )
    assert "remedium.cli.imports" in modules  # the help was the command's own
    assert present(modules, WEB_STACK + COMMAND_STACK) == []


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database brought to the newest schema by ``remedium db upgrade``."""
    path = tmp_path_factory.mktemp("startup") / "migrated.db"
    done = subprocess.run(
        [sys.executable, "-m", "remedium.cli.main", "db", "upgrade"],
        env={**os.environ, "REMEDIUM_DATABASE_URL": f"sqlite:///{path}"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return path


@pytest.mark.parametrize("name", list(SMALL_REPORTS))
def test_a_small_import_loads_neither_the_web_stack_nor_what_it_does_not_use(
    name: str, migrated: Path, tmp_path: Path
) -> None:
    database = tmp_path / "import.db"
    database.write_bytes(migrated.read_bytes())
    report = SMALL_REPORTS[name]
    modules = loaded_after(
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from remedium.cli.main import app\n"
        f"result = CliRunner().invoke(app, ['import', {str(report)!r}])\n"
        "assert result.exit_code == 0, result.output\n"
        "assert 'findings added' in result.output, result.output\n",
        env={"REMEDIUM_DATABASE_URL": f"sqlite:///{database}"},
    )
    assert "remedium.importers.service" in modules  # it did import
    assert present(modules, NOT_FOR_A_SMALL_IMPORT) == []
    parsers = [f"remedium.importers.formats.{p}" for p in XML_PARSERS if p != name]
    assert present(modules, tuple(parsers)) == []  # recognising the report loads no XML parser


def _report_files() -> list[Path]:
    files = [p for p in FIXTURES.rglob("*") if p.is_file()]
    if CORPUS.is_dir():
        files += [p for p in CORPUS.rglob("*") if p.is_file()]
    return sorted(files)


def _asking_every_format(path: Path) -> type | None:
    """What detection found before ``SNIFF_NEEDS``: each format asked in turn."""
    head = path.read_bytes()[:SNIFF_BYTES]
    for name in FORMATS:
        parser = get_parser(name)
        if parser.sniff(head, path.name):
            return type(parser)
    return None


def test_passing_over_formats_by_their_needles_detects_what_asking_every_format_did() -> None:
    files = _report_files()
    assert len(files) > 50
    for path in files:
        try:
            found: type | None = type(detect_parser(path))
        except ReportError:
            found = None
        assert found == _asking_every_format(path), path
        head = path.read_bytes()[:SNIFF_BYTES]
        for name, needles in SNIFF_NEEDS.items():
            if get_parser(name).sniff(head, path.name):
                assert any(needle in head for needle in needles), (name, path)
