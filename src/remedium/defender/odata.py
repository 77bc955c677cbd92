"""OData query options (``$filter``, ``$orderby``, ``$select``, ``$top``, ``$skip``) for the
Defender-compatible API.

``$filter`` text is parsed by the ``odata-query`` package's grammar into an AST; this module
translates that AST into SQLAlchemy expressions itself, over an explicit whitelist of fields per
entity (:class:`Field`). A field a client names that is not on the whitelist, a value of the wrong
type, or a construct we do not support answers 400 with an OData-style error, never a 500 and
never a silently ignored condition.

String comparisons are case-insensitive on both databases, like Microsoft's service (whose
store compares without case); see docs/defender-api.md.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from enum import StrEnum
from typing import Any

from odata_query import ast
from odata_query.exceptions import ODataException
from odata_query.grammar import ODataLexer, ODataParser
from sqlalchemy import ColumnElement, SQLColumnExpression, and_, false, func, not_, or_, true

from remedium.common.int32 import INT_MAX

MAX_FILTER_LENGTH = 4000


class ODataError(Exception):
    """A request whose OData options cannot be honoured: answered 400 with ``code`` and message."""

    def __init__(self, message: str, code: str = "BadRequest") -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class FieldType(StrEnum):
    """How a field's values are compared and which literals it accepts."""

    STRING = "string"
    NUMBER = "number"
    BOOLEAN = "boolean"
    DATETIME = "datetime"
    # A JSON list of strings (e.g. machineTags): only ``any(t: t eq '...')`` applies.
    STRING_LIST = "string_list"


@dataclass(frozen=True, slots=True)
class Field:
    """One filterable/sortable field of an entity: its Microsoft name and its SQL expression.

    ``list_contains`` builds the condition "this list holds the value" for STRING_LIST fields.
    """

    name: str
    expression: SQLColumnExpression[Any]
    type: FieldType = FieldType.STRING
    list_contains: Callable[[str], ColumnElement[bool]] | None = None


class FieldSet:
    """The whitelist of fields of one entity, looked up case-insensitively.

    Microsoft's samples spell the same field ``lastSeen`` and ``LastSeen``; both work.
    """

    def __init__(self, entity: str, fields: Sequence[Field]) -> None:
        self.entity = entity
        self._by_lower = {f.name.lower(): f for f in fields}

    def get(self, name: str) -> Field:
        """The field called ``name`` (any case), or 400 naming it and the allowed fields."""
        found = self._by_lower.get(name.lower())
        if found is None:
            allowed = ", ".join(sorted(f.name for f in self._by_lower.values()))
            raise ODataError(
                f"Could not find a property named '{name}' on type {self.entity} "
                f"that supports $filter/$orderby. Supported properties: {allowed}."
            )
        return found


# --- $filter ------------------------------------------------------------------------------------

_QUOTED = re.compile(r"('(?:[^']|'')*')")
# Microsoft's own sample writes `lastSeen gt 2018-08-01Z`: a date with a zone, which is not an
# OData literal. Read it as midnight UTC so the documented query works as written.
_DATE_WITH_ZONE = re.compile(r"\b(\d{4}-\d{2}-\d{2})Z\b")


def _normalise(text: str) -> str:
    parts = _QUOTED.split(text)
    # Odd indexes are quoted strings: leave their contents alone.
    return "".join(
        part if index % 2 else _DATE_WITH_ZONE.sub(r"\1T00:00:00Z", part)
        for index, part in enumerate(parts)
    )


def parse_filter(text: str) -> ast._Node:
    """Parse ``$filter`` text into odata-query's AST, or 400 saying where it failed."""
    if len(text) > MAX_FILTER_LENGTH:
        raise ODataError(f"The $filter is longer than {MAX_FILTER_LENGTH} characters.")
    try:
        node: ast._Node = ODataParser().parse(ODataLexer().tokenize(_normalise(text)))
    except ODataException as error:
        raise ODataError(f"Invalid $filter '{text}': {_syntax_message(error)}") from error
    except (ValueError, TypeError, IndexError) as error:
        raise ODataError(f"Invalid $filter '{text}': {error}") from error
    if node is None:
        raise ODataError("The $filter is empty.")
    return node


def _syntax_message(error: ODataException) -> str:
    token = getattr(error, "token", None)
    if token is not None and getattr(token, "index", None) is not None:
        return f"syntax error at position {token.index} near '{token.value}'"
    if getattr(error, "eof", False) or token is None:
        return "the expression ends too early"
    return str(error)


def filter_expression(text: str | None, fields: FieldSet) -> ColumnElement[bool] | None:
    """The SQL condition of a ``$filter`` over ``fields``, or None when there is no filter."""
    if text is None or not text.strip():
        return None
    return _Translator(fields).condition(parse_filter(text))


_STRING_FUNCTIONS = {"contains", "startswith", "endswith"}
_REVERSED = {
    ast.Lt: ast.Gt,
    ast.LtE: ast.GtE,
    ast.Gt: ast.Lt,
    ast.GtE: ast.LtE,
    ast.Eq: ast.Eq,
    ast.NotEq: ast.NotEq,
}


@dataclass(frozen=True, slots=True)
class _Operand:
    """A field reference, possibly wrapped in tolower()/toupper() (case is ignored anyway)."""

    field: Field


class _Translator:
    """Walks the AST and builds SQLAlchemy conditions; refuses anything off the whitelist."""

    def __init__(self, fields: FieldSet) -> None:
        self.fields = fields

    # One return per kind of AST node reads better than a dispatch table here.
    def condition(self, node: ast._Node) -> ColumnElement[bool]:  # noqa: PLR0911
        if isinstance(node, ast.BoolOp):
            left, right = self.condition(node.left), self.condition(node.right)
            return and_(left, right) if isinstance(node.op, ast.And) else or_(left, right)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return not_(self.condition(node.operand))
        if isinstance(node, ast.Compare):
            return self._compare(node)
        if isinstance(node, ast.Call):
            return self._call(node)
        if isinstance(node, ast.CollectionLambda):
            return self._lambda(node)
        if isinstance(node, ast.Identifier):
            field = self.fields.get(node.name)
            if field.type is not FieldType.BOOLEAN:
                raise ODataError(f"'{field.name}' is not a boolean; compare it with a value.")
            return field.expression.is_(true())
        if isinstance(node, ast.Boolean):
            return true() if node.py_val else false()
        raise ODataError(f"Unsupported $filter expression: {_describe(node)}.")

    # -- operands ------------------------------------------------------------------------------

    def _operand(self, node: ast._Node) -> _Operand | None:
        if isinstance(node, ast.Identifier):
            return _Operand(self.fields.get(node.name))
        if (
            isinstance(node, ast.Call)
            and node.func.name.lower() in {"tolower", "toupper"}
            and len(node.args) == 1
        ):
            inner = self._operand(node.args[0])
            if inner is None or inner.field.type is not FieldType.STRING:
                raise ODataError(f"{node.func.name}() takes a string property.")
            return inner
        if isinstance(node, ast.Call):
            raise ODataError(
                f"Unsupported function '{node.func.name}' in a comparison; "
                "supported: tolower, toupper."
            )
        return None

    def _compare(self, node: ast.Compare) -> ColumnElement[bool]:
        comparator, left, right = node.comparator, node.left, node.right
        operand = self._operand(left)
        if operand is None:
            operand = self._operand(right)
            if operand is None:
                raise ODataError(f"A comparison needs a property on one side: {_describe(node)}.")
            if isinstance(comparator, ast.In):
                raise ODataError("'in' needs the property on its left.")
            comparator = _REVERSED[type(comparator)]()
            right = left
        field = operand.field
        if field.type is FieldType.STRING_LIST:
            raise ODataError(
                f"'{field.name}' is a collection: use {field.name}/any(t: t eq 'value')."
            )
        if isinstance(comparator, ast.In):
            if not isinstance(right, ast.List):
                raise ODataError(f"'in' needs a list of values: {field.name} in ('a', 'b').")
            if any(isinstance(item, ast.Null) for item in right.val):
                raise ODataError("'in' lists cannot hold null.")
            values = [self._value(field, item) for item in right.val]
            return _column(field).in_(values)
        if isinstance(right, ast.Null):
            if isinstance(comparator, ast.Eq):
                return field.expression.is_(None)
            if isinstance(comparator, ast.NotEq):
                return field.expression.is_not(None)
            raise ODataError(f"null can only be compared with eq or ne ('{field.name}').")
        value = self._value(field, right)
        if field.type is FieldType.BOOLEAN and not isinstance(comparator, (ast.Eq, ast.NotEq)):
            raise ODataError(f"'{field.name}' is a boolean: use eq or ne.")
        column = _column(field)
        result: ColumnElement[bool]
        if isinstance(comparator, ast.Eq):
            result = column == value
        elif isinstance(comparator, ast.NotEq):
            # OData's ne keeps rows whose value is null; SQL's <> would drop them.
            result = or_(column != value, field.expression.is_(None))
        elif isinstance(comparator, ast.Lt):
            result = column < value
        elif isinstance(comparator, ast.LtE):
            result = column <= value
        elif isinstance(comparator, ast.Gt):
            result = column > value
        elif isinstance(comparator, ast.GtE):
            result = column >= value
        else:
            raise ODataError(f"Unsupported comparison: {_describe(node)}.")
        return result

    def _value(self, field: Field, node: ast._Node) -> Any:
        """The Python value of a literal, checked against the field's type."""
        if field.type is FieldType.STRING:
            if isinstance(node, ast.String):
                return node.py_val.lower()
            if isinstance(node, ast.GUID):
                return node.val.lower()
            raise ODataError(
                f"'{field.name}' is a string: compare it with a quoted value, "
                f"e.g. {field.name} eq 'text' (got {_describe(node)})."
            )
        if field.type is FieldType.NUMBER:
            if isinstance(node, (ast.Integer, ast.Float)):
                return node.py_val
            raise ODataError(
                f"'{field.name}' is a number: compare it with a number (got {_describe(node)})."
            )
        if field.type is FieldType.BOOLEAN:
            if isinstance(node, ast.Boolean):
                return node.py_val
            raise ODataError(
                f"'{field.name}' is a boolean: compare it with true or false "
                f"(got {_describe(node)})."
            )
        if field.type is FieldType.DATETIME:
            return _datetime_value(field, node)
        raise ODataError(f"'{field.name}' cannot be compared.")

    # -- functions and lambdas ---------------------------------------------------------------

    def _call(self, node: ast.Call) -> ColumnElement[bool]:
        name = node.func.name.lower()
        if name not in _STRING_FUNCTIONS:
            raise ODataError(
                f"Unsupported function '{node.func.name}' in $filter; "
                "supported: contains, startswith, endswith, tolower, toupper."
            )
        if len(node.args) != 2:
            raise ODataError(f"{node.func.name}() takes a property and a quoted string.")
        operand = self._operand(node.args[0])
        if operand is None or operand.field.type is not FieldType.STRING:
            raise ODataError(f"{node.func.name}() takes a string property as its first argument.")
        needle = self._value(operand.field, node.args[1])
        column = _column(operand.field)
        if name == "contains":
            return column.contains(needle, autoescape=True)
        if name == "startswith":
            return column.startswith(needle, autoescape=True)
        return column.endswith(needle, autoescape=True)

    def _lambda(self, node: ast.CollectionLambda) -> ColumnElement[bool]:
        if not isinstance(node.owner, ast.Identifier):
            raise ODataError(f"Unsupported collection expression: {_describe(node)}.")
        field = self.fields.get(node.owner.name)
        if field.type is not FieldType.STRING_LIST or field.list_contains is None:
            raise ODataError(f"'{field.name}' is not a collection.")
        if not isinstance(node.operator, ast.Any) or node.lambda_ is None:
            raise ODataError(f"Only {field.name}/any(t: t eq 'value') is supported.")
        variable = node.lambda_.identifier.name
        return self._lambda_body(field, variable, node.lambda_.expression)

    def _lambda_body(self, field: Field, variable: str, body: ast._Node) -> ColumnElement[bool]:
        assert field.list_contains is not None
        if isinstance(body, ast.BoolOp):
            left = self._lambda_body(field, variable, body.left)
            right = self._lambda_body(field, variable, body.right)
            return or_(left, right) if isinstance(body.op, ast.Or) else and_(left, right)
        if (
            isinstance(body, ast.Compare)
            and isinstance(body.comparator, ast.Eq)
            and isinstance(body.left, ast.Identifier)
            and body.left.name == variable
            and isinstance(body.right, ast.String)
        ):
            return field.list_contains(body.right.py_val)
        raise ODataError(
            f"Only {field.name}/any({variable}: {variable} eq 'value') is supported "
            f"(got {_describe(body)})."
        )


def _column(field: Field) -> SQLColumnExpression[Any]:
    if field.type is FieldType.STRING:
        return func.lower(field.expression)
    return field.expression


def _datetime_value(field: Field, node: ast._Node) -> datetime:
    try:
        if isinstance(node, ast.DateTime):
            value: datetime = node.py_val
        elif isinstance(node, ast.Date):
            value = datetime.combine(date.fromisoformat(node.val), time.min)
        elif isinstance(node, ast.String):
            # Scripts often quote timestamps; accept an ISO 8601 string too.
            value = datetime.fromisoformat(node.val.replace("Z", "+00:00"))
        else:
            raise ODataError(
                f"'{field.name}' is a date: compare it with e.g. 2024-01-31T00:00:00Z "
                f"(got {_describe(node)})."
            )
    except ValueError as error:
        raise ODataError(f"'{field.name}': invalid date ({error}).") from error
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _describe(node: ast._Node) -> str:
    if isinstance(node, ast.Identifier):
        return f"property '{node.name}'"
    if isinstance(node, ast.Null):
        return "null"
    if isinstance(node, ast._Literal):
        val = getattr(node, "val", "")
        return f"{type(node).__name__.lower()} {val!r}"
    if isinstance(node, ast.Call):
        return f"{node.func.name}()"
    return type(node).__name__


# --- $orderby, $select, $top, $skip ----------------------------------------------------------

_ORDER_ITEM = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)(?:\s+(asc|desc))?\s*$", re.IGNORECASE)


def order_by(text: str | None, fields: FieldSet) -> list[ColumnElement[Any]]:
    """SQL ordering for ``$orderby`` ("field [asc|desc], ..."), or 400 naming the bad part."""
    if text is None or not text.strip():
        return []
    ordering: list[ColumnElement[Any]] = []
    for item in text.split(","):
        match = _ORDER_ITEM.match(item)
        if match is None:
            raise ODataError(f"Invalid $orderby item '{item.strip()}': use 'property [asc|desc]'.")
        field = fields.get(match.group(1))
        if field.type is FieldType.STRING_LIST:
            raise ODataError(f"'{field.name}' is a collection and cannot be sorted.")
        descending = (match.group(2) or "asc").lower() == "desc"
        ordering.append(field.expression.desc() if descending else field.expression.asc())
    return ordering


def select_fields(text: str | None, available: Sequence[str]) -> list[str] | None:
    """The reply fields named by ``$select`` in Microsoft's spelling, or None for all of them."""
    if text is None or not text.strip():
        return None
    by_lower = {name.lower(): name for name in available}
    chosen: list[str] = []
    for raw in text.split(","):
        name = raw.strip()
        found = by_lower.get(name.lower())
        if found is None:
            raise ODataError(
                f"Could not find a property named '{name}' for $select. "
                f"Available: {', '.join(available)}."
            )
        if found not in chosen:
            chosen.append(found)
    return chosen


def project(item: Mapping[str, Any], selected: Sequence[str] | None) -> dict[str, Any]:
    """``item`` reduced to the ``$select``-ed fields (all of them when None)."""
    if selected is None:
        return dict(item)
    return {name: item[name] for name in selected}


@dataclass(frozen=True, slots=True)
class Paging:
    """``$top``/``$skip`` as given, and the page size the server caps unbounded reads at."""

    top: int | None
    skip: int
    page_size: int

    @property
    def limit(self) -> int:
        """How many rows this reply holds at most."""
        return self.page_size if self.top is None else min(self.top, self.page_size)

    @property
    def server_driven(self) -> bool:
        """True when the server, not ``$top``, bounds the page: then a nextLink may follow."""
        return self.top is None or self.top > self.page_size


def paging(top: str | None, skip: str | None, *, max_top: int, page_size: int) -> Paging:
    """Validate ``$top`` (0..max_top) and ``$skip`` (>= 0)."""
    top_value = _non_negative("$top", top)
    skip_value = _non_negative("$skip", skip)
    if top_value is not None and top_value > max_top:
        raise ODataError(f"The $top value {top_value} exceeds the maximum of {max_top}.")
    return Paging(top=top_value, skip=skip_value or 0, page_size=min(page_size, max_top))


def _non_negative(name: str, text: str | None) -> int | None:
    if text is None or text == "":
        return None
    try:
        value = int(text.strip())
    except ValueError:
        raise ODataError(f"The {name} value '{text}' is not a whole number.") from None
    if value < 0:
        raise ODataError(f"The {name} value {value} must not be negative.")
    if value > INT_MAX:
        raise ODataError(f"The {name} value {value} is out of range: at most {INT_MAX}.")
    return value
