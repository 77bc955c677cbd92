"""Every doc line true: what README.md and docs/*.md name in code must exist in the code.

The docs are read mechanically, span by span (inline code and fenced blocks), and each mention
is checked against the project itself:

- a repository path (``src/...``, ``tests/...``, ``benchmarks/...``, ``scripts/...``,
  ``docs/...``, a path inside the package such as ``connectors/base.py``, a bare ``*.py`` file)
  exists; a pytest node id (``tests/x.py::test_y``, or ``::test_y`` after one) names a function;
- a dotted name (``remedium.importers.service.import_report``, ``audit.service.record``)
  imports and resolves, or is a name the code writes as a string (an audit action);
  ``Class.member`` names a member of the package's class of that name;
- a ``REMEDIUM_*`` environment variable (anywhere in the text) is a field of the settings class,
  and a number written right after it (``(default 8)``, ``, 5 s``) is that field's default;
- a ``remedium <command> [<subcommand>] [--option]`` is a real CLI command with that option;
- an API or page path (``/api/v1/...``, ``/api/...``, ``/settings/jobs``) is a route of the
  application, with the method when one is written before it;
- a ``make <target>`` is a target of the Makefile;
- every registered report format and intelligence feed is listed and described, and every
  format section of ``docs/formats.md`` names a registered format;
- README.md lists every doc.

Placeholders (``<feature>``, ``*``, ``…``) are not checked. Each check has a test feeding it a
made-up line that it must report, so a check that silently stops finding anything fails too.
"""

from __future__ import annotations

import functools
import importlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from typer.core import TyperGroup

from remedium.api.app import create_app
from remedium.cli.main import COMMANDS, load
from remedium.db.session import make_engine
from remedium.importers.registry import FORMATS
from remedium.intel.feeds import FEEDS
from remedium.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "remedium"
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SUBPACKAGES = {path.name for path in PACKAGE.iterdir() if (path / "__init__.py").is_file()}
TOP_FOLDERS = {"src", "tests", "benchmarks", "scripts", "docs"}

# Variables read by the test suite, not by remedium: (variable, the file that reads it).
TEST_VARIABLES = {"REMEDIUM_TEST_DATABASES": ROOT / "tests" / "conftest.py"}
# Paths of other systems' APIs that the docs quote: they are not remedium's routes.
EXTERNAL_PATHS = (
    "/rest/api/",  # Jira
    "/api/now/",  # ServiceNow's Table API
    "/api/2.0/fo/",  # Qualys
    "/api/v1/finding/",  # Dependency-Track's finding export
    "/vulnerability/",  # Wazuh
    "/matcher/",  # Clair v4
    "/repos/",  # GitHub
    "/vulns/",  # Tenable.io
)
PLACEHOLDER = re.compile(r"[<>*…]|\.\.\.|\bNNN")
SPAN = re.compile(r"`([^`\n]+)`")
FENCE = re.compile(r"^\s*(```|~~~)")


@dataclass(frozen=True, slots=True)
class Span:
    """One piece of code in a doc: an inline span, or one line of a fenced block."""

    doc: str
    line: int
    code: str


def spans(doc: str, text: str) -> Iterator[Span]:
    """The code of ``text`` (a doc named ``doc``), span by span, with line numbers."""
    fenced = False
    for number, line in enumerate(text.splitlines(), start=1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if fenced:
            yield Span(doc, number, line.strip())
            continue
        for match in SPAN.finditer(line):
            yield Span(doc, number, match.group(1).strip())


def _where(span: Span) -> str:
    return f"{span.doc}:{span.line}: `{span.code}`"


def _tokens(code: str) -> list[str]:
    """Whitespace-separated words, without the punctuation of prose and usage lines."""
    words = []
    for raw in code.split():
        word = raw.lstrip("'\"[(").rstrip(",;:'\"])").removesuffix("...").rstrip(".,;:)")
        if word:
            words.append(word)
    return words


# --- repository paths, pytest node ids and dotted names -------------------------------------


def _path_exists(token: str) -> bool:
    relative = token.rstrip("/")
    if "/" not in token:  # a bare file name: somewhere in the code, tests or tools
        return any(
            next((ROOT / top).rglob(relative), None) is not None
            for top in ("src", "tests", "benchmarks", "scripts")
        )
    return (ROOT / relative).exists() or (PACKAGE / relative).exists()


def _is_repository_path(token: str) -> bool:
    if "://" in token or token.startswith(("/", ".")) or PLACEHOLDER.search(token):
        return False
    if "/" in token:
        return token.split("/", 1)[0] in TOP_FOLDERS | SUBPACKAGES
    return token.endswith(".py")


def _defines(path: Path, name: str) -> bool:
    pattern = rf"^\s*(?:async\s+def|def|class)\s+{re.escape(name)}\b"
    return re.search(pattern, path.read_text(encoding="utf-8"), re.MULTILINE) is not None


def _resolves(dotted: str) -> bool:
    parts = dotted.split(".")
    if parts[0] != "remedium":
        parts.insert(0, "remedium")
    for cut in range(len(parts), 0, -1):
        try:
            found: Any = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[cut:]:
            if not hasattr(found, attribute):
                return False
            found = getattr(found, attribute)
        return True
    return False


@functools.cache
def _source_text() -> str:
    return "\n".join(path.read_text(encoding="utf-8") for path in sorted(PACKAGE.rglob("*.py")))


def _quoted_in_code(name: str) -> bool:
    """An identifier the code writes as a string: an audit action, an event or schema name."""
    return f'"{name}"' in _source_text()


@functools.cache
def _classes() -> dict[str, list[str]]:
    """Top-level class names of the package, with the modules that define them."""
    found: dict[str, list[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        for name in re.findall(r"^class (\w+)\b", path.read_text(encoding="utf-8"), re.MULTILINE):
            found.setdefault(name, []).append(module.removesuffix(".__init__"))
    return found


def _has_member(class_name: str, member: str) -> bool:
    """Whether a class of that name has ``member`` (an attribute, method or declared field)."""
    for module in _classes()[class_name]:
        cls = getattr(importlib.import_module(module), class_name)
        declared = {
            *getattr(cls, "__dataclass_fields__", {}),
            *getattr(cls, "model_fields", {}),
            *getattr(cls, "__annotations__", {}),
        }
        if hasattr(cls, member) or member in declared:
            return True
    return False


MEMBER = re.compile(r"^([A-Z][A-Za-z0-9]*)\.([A-Za-z_][A-Za-z0-9_]*)$")
DOTTED = re.compile(r"^[a-z_][a-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+$")
FILE_SUFFIX = re.compile(r"\.(py|js|css|html|json|jsonl|md|gz|csv|xml|toml|txt|db|zip|ini)$")


def check_code_references(items: list[Span]) -> list[str]:
    """Repository paths that do not exist, node ids naming no test, names that do not import."""
    problems = []
    last_test_file: dict[tuple[str, int], Path] = {}
    for span in items:
        for word in _tokens(span.code):
            token = word.split("(", 1)[0]
            path_part, _, node = token.partition("::")
            if path_part and _is_repository_path(path_part):
                if not _path_exists(path_part):
                    problems.append(f"{_where(span)}: no file or folder {path_part}")
                    continue
                if path_part.startswith("tests/") and path_part.endswith(".py"):
                    last_test_file[(span.doc, span.line)] = ROOT / path_part
            if node:
                test_file = (
                    ROOT / path_part if path_part else last_test_file.get((span.doc, span.line))
                )
                if test_file is None or not test_file.is_file():
                    problems.append(f"{_where(span)}: {token} follows no test file")
                elif not _defines(test_file, node.split("[", 1)[0]):
                    problems.append(f"{_where(span)}: {test_file.name} defines no {node}")
                continue
            member = MEMBER.match(token)
            if member and member.group(1) in _classes() and not _has_member(*member.groups()):
                problems.append(f"{_where(span)}: {member.group(1)} has no {member.group(2)}")
            if (
                DOTTED.match(token)
                and not FILE_SUFFIX.search(token)
                and token.split(".", 1)[0] in SUBPACKAGES | {"remedium"}
                and not _resolves(token)
                and not _quoted_in_code(token)
            ):
                problems.append(
                    f"{_where(span)}: {token} neither imports nor is a name the code uses"
                )
    return problems


# --- environment variables ------------------------------------------------------------------


def _setting_variables() -> set[str]:
    prefix = Settings.model_config.get("env_prefix", "")
    names = set()
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        names.add(alias.upper() if isinstance(alias, str) else f"{prefix}{name}".upper())
    return names


VARIABLE = re.compile(r"\bREMEDIUM_[A-Z0-9_]*[A-Z0-9]\b")


def check_variables(doc: str, text: str) -> list[str]:
    """``REMEDIUM_*`` variables that are no field of ``Settings``."""
    known = _setting_variables()
    problems = []
    for number, line in enumerate(text.splitlines(), start=1):
        for variable in VARIABLE.findall(line):
            reader = TEST_VARIABLES.get(variable)
            if reader is not None and variable in reader.read_text(encoding="utf-8"):
                continue
            if variable not in known:
                problems.append(f"{doc}:{number}: {variable} is not a setting")
    return problems


DEFAULT = re.compile(
    r"\b(REMEDIUM_[A-Z0-9_]*[A-Z0-9])`?\s*[(,]\s*(?:default\s+)?(-?\d[\d,]*(?:\.\d+)?)(?![\d-])"
)


def check_defaults(doc: str, text: str) -> list[str]:
    """A number written right after a variable (``REMEDIUM_X`` (default 8), ``REMEDIUM_X``, 5 s)
    that is not the setting's default."""
    defaults: dict[str, float] = {}
    prefix = Settings.model_config.get("env_prefix", "")
    for name, field in Settings.model_fields.items():
        if isinstance(field.default, int | float) and not isinstance(field.default, bool):
            defaults[f"{prefix}{name}".upper()] = float(field.default)
    problems = []
    for match in DEFAULT.finditer(text):
        variable, written = match.group(1), float(match.group(2).replace(",", ""))
        if variable in defaults and written != defaults[variable]:
            number = text.count("\n", 0, match.start()) + 1
            problems.append(
                f"{doc}:{number}: {variable} defaults to {defaults[variable]:g}, not {written:g}"
            )
    return problems


# --- report formats and intelligence feeds --------------------------------------------------

HEADING_NAME = re.compile(r"^#{2,4} .*\(`([a-z0-9_-]+)`\)", re.MULTILINE)


def check_formats(formats: list[str], feeds: list[str], docs: dict[str, str]) -> list[str]:
    """Every registered report format and feed has its place in the docs (the list of
    ``docs/imports.md``, a section of ``docs/formats.md``); every format section is registered."""
    listed, described = (
        docs["docs/imports.md"],
        docs["docs/formats.md"] + docs["docs/native-format.md"],
    )
    problems = [
        f"docs/imports.md: the format `{name}` is not in the list"
        for name in formats
        if f"`{name}`" not in listed
    ]
    problems += [
        f"docs/formats.md: the {kind} `{name}` is not described"
        for kind, names in (("format", formats), ("feed", feeds))
        for name in names
        if f"`{name}`" not in described
    ]
    problems += [
        f"docs/formats.md: the section of `{name}` names no registered format"
        for name in HEADING_NAME.findall(docs["docs/formats.md"])
        if name not in formats
    ]
    return problems


def check_listed(readme: str, docs: list[str]) -> list[str]:
    """Docs that README.md does not list: a newcomer starts there."""
    return [f"README.md does not list {name}" for name in docs if f"`{name}`" not in readme]


# --- the command line -----------------------------------------------------------------------

COMMAND = re.compile(r"(?:^|(?<=[\s/(]))remedium\s+([a-z].*)$")


def _options(command: Any) -> set[str]:
    """The command's options, and ``--help`` (which Click adds when it parses)."""
    found = {option for param in command.params for option in param.opts + param.secondary_opts}
    return found | {"--help"}


def check_commands(items: list[Span]) -> list[str]:
    """``remedium <command> [<subcommand>] [--option]`` that the CLI does not have."""
    problems = []
    for span in items:
        match = COMMAND.search(span.code)
        if match is None:
            continue
        words = _tokens(match.group(1))
        name, rest = words[0], words[1:]
        if name not in COMMANDS:
            problems.append(f"{_where(span)}: no command remedium {name}")
            continue
        command: Any = load(name)
        if isinstance(command, TyperGroup) and rest and rest[0][:1].islower():
            sub = command.commands.get(rest[0])
            if sub is None:
                problems.append(f"{_where(span)}: no command remedium {name} {rest[0]}")
                continue
            command, name, rest = sub, f"{name} {rest[0]}", rest[1:]
        known = _options(command)
        for word in rest:
            option = word.split("=", 1)[0]
            if option.startswith("--") and option not in known:
                problems.append(f"{_where(span)}: remedium {name} has no option {option}")
    return problems


# --- routes ---------------------------------------------------------------------------------

ROUTE_PARAMETER = re.compile(r"\{[^}]*\}")
METHOD_BEFORE = re.compile(
    r"(?:^|\s)((?:GET|POST|PUT|PATCH|DELETE|HEAD)(?:/(?:GET|POST|PUT|PATCH|DELETE))*)\s+$"
)


@dataclass(frozen=True, slots=True)
class Route:
    """A route of the application as a pattern, with its methods (empty for a mount)."""

    path: str
    pattern: re.Pattern[str]
    methods: frozenset[str]


def _flatten(routes: list[Any]) -> list[Any]:
    flat: list[Any] = []
    for route in routes:
        if type(route).__name__ == "_IncludedRouter":
            flat.extend(route.effective_route_contexts())
        else:
            flat.append(route)
    return flat


def app_routes(app: Any) -> list[Route]:
    """Every route of ``app``; a mount (``/static``) matches everything under it."""
    found = []
    for route in _flatten(app.routes):
        parts = ROUTE_PARAMETER.split(route.path)
        pattern = "[^/]+".join(re.escape(part) for part in parts)
        if type(route).__name__ == "Mount":
            found.append(Route(route.path, re.compile(pattern + "(?:/.*)?"), frozenset()))
        else:
            methods = frozenset(getattr(route, "methods", None) or ())
            found.append(Route(route.path, re.compile(pattern), methods))
    return found


def _concrete(path: str) -> list[str]:
    """The doc's path as request paths: query dropped, ``{id}``/``…`` filled, ``a|b`` expanded."""
    path = re.split(r"[?\[]", path, maxsplit=1)[0]
    path = ROUTE_PARAMETER.sub("1", path).replace("…", "1").replace("...", "1")
    paths = [""]
    for segment in path.split("/")[1:]:
        paths = [f"{head}/{choice}" for head in paths for choice in segment.split("|")]
    return [item or "/" for item in paths]


def _matches(routes: list[Route], path: str, method: str | None) -> bool:
    return any(
        route.pattern.fullmatch(path)
        and (method is None or not route.methods or method in route.methods)
        for route in routes
    )


def check_routes(items: list[Span], routes: list[Route]) -> list[str]:
    """Paths (``/api/...``, pages) that are no route; a fragment (``/{id}/cancel``) may follow a
    path of the same line and is then read under it."""
    problems = []
    earlier: dict[tuple[str, int], list[str]] = {}
    for span in items:
        for match in re.finditer(r"(?:^|(?<=[\s(]))(/[^\s,;`)]*)", span.code):
            token = match.group(1).rstrip(":")
            if token.startswith(EXTERNAL_PATHS) or "<" in token:
                continue
            if token.endswith(("/…", "/...")):  # a prefix: some route lies under it
                prefix = token.rstrip("….")
                if not any((route.path + "/").startswith(prefix) for route in routes):
                    problems.append(f"{_where(span)}: no route under {prefix}")
                continue
            before = METHOD_BEFORE.search(span.code[: match.start()])
            methods = before.group(1).split("/") if before else [None]
            bases = earlier.setdefault((span.doc, span.line), [])
            for path in _concrete(token):
                for method in methods:
                    if _matches(routes, path, method):
                        continue
                    under = [
                        base[:cut] + path
                        for base in bases
                        for cut in [i for i, c in enumerate(base) if c == "/"] + [len(base)]
                    ]
                    if not any(_matches(routes, full, method) for full in under):
                        shown = f"{method} {path}" if method else path
                        problems.append(f"{_where(span)}: no route {shown}")
            bases.extend(p for p in _concrete(token) if _matches(routes, p, None))
    return problems


# --- make -----------------------------------------------------------------------------------

MAKE = re.compile(r"(?:^|(?<=\s))make\s+([A-Za-z_.][\w./-]*)")


def make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    return set(re.findall(r"^([\w./$()-]+)\s*:(?!=)", text, re.MULTILINE))


def check_make(items: list[Span], targets: set[str]) -> list[str]:
    """``make <target>`` that the Makefile does not have."""
    return [
        f"{_where(span)}: no make target {target}"
        for span in items
        for target in MAKE.findall(span.code)
        if target not in targets
    ]


# --- the docs -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def routes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Route]]:

    engine: Engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('docs') / 'routes.db'}")
    yield app_routes(create_app(engine))
    engine.dispose()


def _problems(doc: str, text: str, routes: list[Route]) -> list[str]:
    items = list(spans(doc, text))
    return [
        *check_code_references(items),
        *check_variables(doc, text),
        *check_defaults(doc, text),
        *check_commands(items),
        *check_routes(items, routes),
        *check_make(items, make_targets()),
    ]


@pytest.mark.parametrize("path", DOCS, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_doc_line_is_true(path: Path, routes: list[Route]) -> None:
    doc = str(path.relative_to(ROOT))
    assert _problems(doc, path.read_text(encoding="utf-8"), routes) == []


def test_every_format_and_feed_is_documented() -> None:

    docs = {str(path.relative_to(ROOT)): path.read_text("utf-8") for path in DOCS}
    assert check_formats(list(FORMATS), list(FEEDS), docs) == []


def test_every_doc_is_listed_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text("utf-8")
    assert check_listed(readme, [str(path.relative_to(ROOT)) for path in DOCS[1:]]) == []


def test_the_checks_read_the_docs(routes: list[Route]) -> None:
    """The checks find what they check: a doc set with no span would pass every check."""
    items = [span for path in DOCS for span in spans(path.name, path.read_text("utf-8"))]
    assert len(items) > 1000
    assert sum(1 for span in items if COMMAND.search(span.code)) > 20
    assert sum(1 for span in items if MAKE.search(span.code)) >= 5
    assert sum(1 for span in items if span.code.startswith(("/api", "GET /", "POST /"))) > 50
    assert len(routes) > 100


# --- each check reports an untrue line ------------------------------------------------------


def _made_up(line: str) -> list[Span]:
    return list(spans("made-up.md", f"Intro.\n\n{line}\n"))


def test_a_missing_path_is_reported() -> None:
    line = "See `src/remedium/nowhere.py`, `inventory/lost.py`, `gone.py` and `tests/cli/`."
    problems = check_code_references(_made_up(line))
    assert [problem.split(": ", 2)[-1] for problem in problems] == [
        "no file or folder src/remedium/nowhere.py",
        "no file or folder inventory/lost.py",
        "no file or folder gone.py",
    ]
    assert problems[0].startswith("made-up.md:3: `src/remedium/nowhere.py`")


def test_a_placeholder_path_is_not_checked() -> None:
    assert check_code_references(_made_up("Tests: `tests/<feature>/`, `docs/*.md`.")) == []


def test_a_node_id_naming_no_test_is_reported() -> None:
    line = (
        "`tests/docs/test_docs_are_true.py::test_every_doc_line_is_true`, "
        "`::test_that_was_never_written`"
    )
    problems = check_code_references(_made_up(line))
    assert problems == [
        "made-up.md:3: `::test_that_was_never_written`: "
        "test_docs_are_true.py defines no test_that_was_never_written"
    ]


def test_a_dotted_name_that_does_not_import_is_reported() -> None:
    line = "`remedium.settings.get_settings`, `audit.service.record(session)`, `scoring.gone.f`"
    problems = check_code_references(_made_up(line))
    assert problems == [
        "made-up.md:3: `scoring.gone.f`: scoring.gone.f neither imports nor is a name the code uses"
    ]


def test_a_member_a_class_does_not_have_is_reported() -> None:
    line = "`ExposureSums.__add__`, `Scope.narrowed`, `DeviceRecord.hotfixes`, `Scope.widened`"
    assert check_code_references(_made_up(line)) == [
        "made-up.md:3: `Scope.widened`: Scope has no widened"
    ]


def test_a_name_the_code_writes_as_a_string_is_true() -> None:
    assert check_code_references(_made_up("Audited as `auth.signin`, `auth.signed_in`.")) == [
        "made-up.md:3: `auth.signed_in`: auth.signed_in neither imports nor is a name the code uses"
    ]


def test_an_unknown_variable_is_reported() -> None:
    text = "Set REMEDIUM_DATABASE_URL, `REMEDIUM_NO_SUCH_KNOB` and REMEDIUM_PORT.\n"
    assert check_variables("made-up.md", text) == [
        "made-up.md:1: REMEDIUM_NO_SUCH_KNOB is not a setting",
        "made-up.md:1: REMEDIUM_PORT is not a setting",  # the port is PORT
    ]


def test_a_default_the_setting_does_not_have_is_reported() -> None:
    text = (
        "Every `REMEDIUM_OUTBOX_EVERY_SECONDS`, 5 s; `REMEDIUM_MAX_UPLOAD_MB` (default 512);\n"
        "`REMEDIUM_MAX_FIELD_MB`\n  (default 80) and `REMEDIUM_JOB_LEASE_SECONDS` (600).\n"
    )
    assert check_defaults("made-up.md", text) == [
        "made-up.md:2: REMEDIUM_MAX_FIELD_MB defaults to 8, not 80",
        "made-up.md:3: REMEDIUM_JOB_LEASE_SECONDS defaults to 900, not 600",
    ]


def test_an_undocumented_or_unregistered_format_is_reported() -> None:
    docs = {
        "docs/imports.md": "Formats: `grype`, `trivy`.",
        "docs/formats.md": "## Grype (`grype`)\n\n## Trivy (`trivy`)\n\n## Old (`old`)\n",
        "docs/native-format.md": "",
    }
    assert check_formats(["grype", "trivy", "snyk"], ["epss"], docs) == [
        "docs/imports.md: the format `snyk` is not in the list",
        "docs/formats.md: the format `snyk` is not described",
        "docs/formats.md: the feed `epss` is not described",
        "docs/formats.md: the section of `old` names no registered format",
    ]


def test_a_doc_the_readme_does_not_list_is_reported() -> None:
    readme = "- `docs/scoring.md`: scores."
    assert check_listed(readme, ["docs/scoring.md", "docs/new.md"]) == [
        "README.md does not list docs/new.md"
    ]


def test_an_unknown_command_subcommand_or_option_is_reported() -> None:
    line = (
        "`remedium jobs run --only recompute`, `remedium jobs --help`, "
        "`.venv/bin/remedium launch`, `remedium db vacuum`, `remedium worker --twice`"
    )
    problems = check_commands(_made_up(line))
    assert [problem.split(": ", 2)[-1] for problem in problems] == [
        "no command remedium launch",
        "no command remedium db vacuum",
        "remedium worker has no option --twice",
    ]


def test_a_route_that_does_not_exist_is_reported(routes: list[Route]) -> None:
    line = (
        "`GET /api/v1/exceptions/{id}`, `/expiring-soon`, `POST /{id}/approve|reject|forget`, "
        "`/settings/jobs`, `/settings/chores`, `DELETE /api/v1/imports`, `/api/machines/{id}`"
    )
    problems = check_routes(_made_up(line), routes)
    assert [problem.split(": ", 2)[-1] for problem in problems] == [
        "no route POST /1/forget",
        "no route /settings/chores",
        "no route DELETE /api/v1/imports",
    ]


def test_an_unknown_make_target_is_reported() -> None:
    items = _made_up("```sh\nmake demo\nmake deploy   # to production\n```")
    assert check_make(items, make_targets()) == [
        "made-up.md:5: `make deploy   # to production`: no make target deploy"
    ]
