"""The SOQL subset Callbridge uses, parsed strictly: anything else is MALFORMED_QUERY.

Supported: ``SELECT`` fields (one level of parent relationship, e.g. ``Owner.Name``,
``Who.Name``) or ``COUNT()``, ``FROM``, ``WHERE`` with ``= != <> < > <= >= LIKE IN NOT IN``,
``AND``/``OR``/``NOT`` and parentheses (AND and OR may not be mixed without parentheses, as in
Salesforce), string literals with backslash escapes, unquoted date and datetime literals,
``null``/``true``/``false``, ``ORDER BY`` (ASC/DESC, NULLS FIRST/LAST), ``LIMIT``, ``OFFSET``.
Unsupported syntax never widens a match: it is refused. Tokens come from :mod:`.soql_lexer`;
the :class:`~.soql_query.Query` built here runs in :mod:`.soql_query`.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ..ids import InvalidId, normalize
from .errors import ApiError, bad_request
from .schema import ID_TYPES, NUMBER_TYPES, TEXT_TYPES, SObjectDef
from .soql_lexer import KEYWORDS, Token, decode_string, located, tokenize
from .soql_query import Condition, Path, Query, value_getter
from .values import parse_date, parse_datetime

if TYPE_CHECKING:
    from .org import Org

MAX_OFFSET = 2000
# Fields readable through a polymorphic relationship (Who, What, Owner of a Lead): "Name" entity.
POLYMORPHIC_FIELDS = (
    "Id",
    "Name",
    "Type",
    "FirstName",
    "LastName",
    "Email",
    "Phone",
    "Title",
    "Alias",
    "IsActive",
    "Username",
)


class Parser:
    """Recursive-descent parser over the token list; ``org`` resolves objects and fields."""

    def __init__(self, org: Org, text: str, tokens: list[Token]) -> None:
        self.org = org
        self.text = text
        self.tokens = tokens
        self.i = 0

    # token helpers
    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def advance(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def error(self, tok: Token | None = None, detail: str | None = None) -> ApiError:
        tok = tok or self.tok
        shown = tok.text if tok.kind != "eof" else "<EOF>"
        return located(
            self.text, tok.pos, "MALFORMED_QUERY", detail or f"unexpected token: '{shown}'"
        )

    def keyword(self, *words: str) -> bool:
        if self.tok.upper in words:
            self.i += 1
            return True
        return False

    def expect(self, word: str) -> Token:
        if self.tok.upper != word:
            raise self.error()
        return self.advance()

    def expect_punct(self, char: str) -> None:
        if self.tok.kind != "punct" or self.tok.text != char:
            raise self.error()
        self.i += 1

    # grammar
    def parse_query(self) -> Query:
        self.expect("SELECT")
        count = False
        raw_paths: list[Token] = []
        if self.tok.upper == "COUNT" and self.tokens[self.i + 1].text == "(":
            self.i += 2
            self.expect_punct(")")
            count = True
        else:
            while True:
                tok = self.tok
                if tok.kind != "ident" or tok.upper in KEYWORDS:
                    raise self.error()
                nxt = self.tokens[self.i + 1]
                if nxt.kind == "punct" and nxt.text == "(":
                    raise self.error(tok, f"unsupported function: '{tok.text}'")
                raw_paths.append(self.advance())
                if not (self.tok.kind == "punct" and self.tok.text == ","):
                    break
                self.i += 1
        self.expect("FROM")
        name_tok = self.advance()
        if name_tok.kind != "ident" or name_tok.upper in KEYWORDS or "." in name_tok.text:
            raise self.error(name_tok)
        obj = self.org.find_sobject(name_tok.text)
        if obj is None:
            raise located(
                self.text,
                name_tok.pos,
                "INVALID_TYPE",
                f"sObject type '{name_tok.text}' is not supported. If you are attempting to use "
                "a custom object, be sure to append the '__c' after the entity name. Please "
                "reference your WSDL or the describe call for the appropriate names.",
            )
        query = Query(obj, count=count)
        for tok in raw_paths:
            self.select(query, tok)
        self.parse_tail(query)
        if self.tok.kind != "eof":
            raise self.error()
        return query

    def parse_tail(self, query: Query) -> None:
        """WHERE / ORDER BY / LIMIT / OFFSET, in that order (also used inside SOSL RETURNING)."""
        if self.keyword("WHERE"):
            query.where = self.parse_or(query.sobject)
        if self.keyword("ORDER"):
            self.expect("BY")
            while True:
                tok = self.advance()
                if tok.kind != "ident" or tok.upper in KEYWORDS:
                    raise self.error(tok)
                path = self.resolve(query.sobject, tok)
                if not path.target_field and not path.field.sortable:
                    raise located(
                        self.text,
                        tok.pos,
                        "INVALID_FIELD",
                        f"field '{path.field.name}' can not be sorted in a query call",
                    )
                desc = False
                if self.keyword("DESC"):
                    desc = True
                else:
                    self.keyword("ASC")
                nulls_first = not desc
                if self.keyword("NULLS"):
                    if self.keyword("FIRST"):
                        nulls_first = True
                    else:
                        self.expect("LAST")
                        nulls_first = False
                query.order.append((path, desc, nulls_first))
                if not (self.tok.kind == "punct" and self.tok.text == ","):
                    break
                self.i += 1
        if self.keyword("LIMIT"):
            query.limit = self.parse_count()
        if self.keyword("OFFSET"):
            tok = self.tok
            query.offset = self.parse_count()
            if query.offset > MAX_OFFSET:
                raise located(
                    self.text,
                    tok.pos,
                    "NUMBER_OUTSIDE_VALID_RANGE",
                    f"Maximum SOQL offset allowed is {MAX_OFFSET}",
                )

    def parse_count(self) -> int:
        tok = self.advance()
        if tok.kind != "number" or not tok.text.isdigit():
            raise self.error(tok)
        return int(tok.text)

    def select(self, query: Query, tok: Token) -> None:
        """Add ``tok``'s field or parent path to what ``query`` returns; Salesforce refuses one
        listed twice."""
        path = self.resolve(query.sobject, tok)
        if any(p.key.lower() == path.key.lower() for p in query.paths):
            raise located(
                self.text, tok.pos, "MALFORMED_QUERY", f"duplicate field selected: {tok.text}"
            )
        query.paths.append(path)

    def resolve(self, obj: SObjectDef, tok: Token) -> Path:
        parts = tok.text.split(".")
        if len(parts) == 1:
            f = self.org.api_field(obj, parts[0])
            if f is None:
                raise located(
                    self.text,
                    tok.pos,
                    "INVALID_FIELD",
                    f"No such column '{parts[0]}' on entity '{obj.name}'. If you are attempting to "
                    "use a custom field, be sure to append the '__c' after the custom field name. "
                    "Please reference your WSDL or the describe call for the appropriate names.",
                )
            return Path(tok.text, f)
        if len(parts) > 2:
            raise located(
                self.text,
                tok.pos,
                "MALFORMED_QUERY",
                "relationship paths of more than one level are not supported by the emulator",
            )
        rel = self.org.api_relationship(obj, parts[0])
        if rel is None:
            raise located(
                self.text,
                tok.pos,
                "INVALID_FIELD",
                f"Didn't understand relationship '{parts[0]}' in field path. If you are attempting "
                "to use a custom relationship, be sure to append the '__r' after the custom "
                "relationship name. Please reference your WSDL or the describe call for the "
                "appropriate names.",
            )
        targets = [self.org.find_sobject(name) for name in rel.reference_to]
        if len(targets) == 1 and targets[0] is not None:
            target_field = self.org.api_field(targets[0], parts[1])
            if target_field is None:
                raise located(
                    self.text,
                    tok.pos,
                    "INVALID_FIELD",
                    f"No such column '{parts[1]}' on entity '{targets[0].name}'. If you are "
                    "attempting to use a custom field, be sure to append the '__c' after the "
                    "custom field name. Please reference your WSDL or the describe call for the "
                    "appropriate names.",
                )
            return Path(tok.text, rel, target_field.name, target_field.type)
        wanted = next((n for n in POLYMORPHIC_FIELDS if n.lower() == parts[1].lower()), None)
        if wanted is None:
            raise located(
                self.text,
                tok.pos,
                "INVALID_FIELD",
                f"No such column '{parts[1]}' on entity 'Name'. If you are attempting to use a "
                "custom field, be sure to append the '__c' after the custom field name. Please "
                "reference your WSDL or the describe call for the appropriate names.",
            )
        kind = {"Id": "id", "IsActive": "boolean", "Email": "email", "Phone": "phone"}
        return Path(tok.text, rel, wanted, kind.get(wanted, "string"))

    def parse_or(self, obj: SObjectDef) -> Condition:
        first = self.parse_unary(obj)
        parts = [first]
        joiner = None
        while self.tok.upper in ("AND", "OR"):
            word = self.tok.upper
            if joiner is not None and word != joiner:
                raise self.error()  # Salesforce requires parentheses to mix AND and OR
            joiner = word
            self.i += 1
            parts.append(self.parse_unary(obj))
        if joiner == "AND":
            return lambda rec: all(part(rec) for part in parts)
        if joiner == "OR":
            return lambda rec: any(part(rec) for part in parts)
        return first

    def parse_unary(self, obj: SObjectDef) -> Condition:
        if self.keyword("NOT"):
            inner = self.parse_unary(obj)
            return lambda rec: not inner(rec)
        if self.tok.kind == "punct" and self.tok.text == "(":
            self.i += 1
            inner = self.parse_or(obj)
            self.expect_punct(")")
            return inner
        return self.parse_comparison(obj)

    def parse_comparison(self, obj: SObjectDef) -> Condition:
        tok = self.advance()
        if tok.kind != "ident" or tok.upper in KEYWORDS:
            raise self.error(tok)
        path = self.resolve(obj, tok)
        if not path.target_field and not path.field.filterable:
            raise located(
                self.text,
                tok.pos,
                "INVALID_FIELD",
                f"field '{path.field.name}' can not be filtered in a query call",
            )
        getter = value_getter(self.org, path)
        negate_in = False
        op_tok = self.tok
        if op_tok.kind == "op":
            self.i += 1
            op = "!=" if op_tok.text == "<>" else op_tok.text
        elif self.keyword("LIKE"):
            op = "LIKE"
        elif self.keyword("IN"):
            op = "IN"
        elif op_tok.upper == "NOT" and self.tokens[self.i + 1].upper == "IN":
            self.i += 2
            op, negate_in = "IN", True
        else:
            raise self.error()
        if op == "IN":
            self.expect_punct("(")
            values = [self.parse_literal(path, "=")]
            while self.tok.kind == "punct" and self.tok.text == ",":
                self.i += 1
                values.append(self.parse_literal(path, "="))
            self.expect_punct(")")
            if negate_in:
                return lambda rec: all(not _equal(getter(rec), v) for v in values)
            return lambda rec: any(_equal(getter(rec), v) for v in values)
        if op == "LIKE":
            if path.type not in TEXT_TYPES:
                raise located(
                    self.text,
                    op_tok.pos,
                    "INVALID_QUERY_FILTER_OPERATOR",
                    f"invalid operator on {path.type} field: LIKE",
                )
            lit = self.advance()
            if lit.kind != "string":
                raise self.error(lit)
            pattern = self.like_pattern(lit)
            return lambda rec: isinstance(v := getter(rec), str) and bool(pattern.fullmatch(v))
        value = self.parse_literal(path, op)
        if op == "=":
            return lambda rec: _equal(getter(rec), value)
        if op == "!=":
            return lambda rec: not _equal(getter(rec), value)
        compare = {
            "<": lambda a, b: a < b,
            ">": lambda a, b: a > b,
            "<=": lambda a, b: a <= b,
            ">=": lambda a, b: a >= b,
        }[op]
        if path.type in ID_TYPES:  # ids order by their case-sensitive 15-char form
            return lambda rec: (v := getter(rec)) is not None and compare(v[:15], value)
        return lambda rec: (v := getter(rec)) is not None and compare(v, value)

    def like_pattern(self, tok: Token) -> re.Pattern[str]:
        try:
            chars = decode_string(tok.text, like=True)
        except ValueError as exc:
            raise located(
                self.text, tok.pos, "MALFORMED_QUERY", f"Invalid string literal: {exc}"
            ) from None
        regex = "".join((".*" if c == "%" else ".") if wild else re.escape(c) for c, wild in chars)
        return re.compile(regex, re.IGNORECASE | re.DOTALL)

    def parse_literal(self, path: Path, op: str) -> object:
        """A typed literal for ``path``; quoting and type errors as Salesforce words them."""
        tok = self.advance()
        name = path.target_field or path.field.name
        kind = path.type

        def wrong(expected: str, quoted: bool) -> ApiError:
            enclosed = (
                "should be enclosed in quotes" if quoted else "should not be enclosed in quotes"
            )
            return located(
                self.text,
                tok.pos,
                "INVALID_FIELD",
                f"value of filter criterion for field '{name}' must be of type {expected} and "
                f"{enclosed}",
            )

        if tok.kind == "ident" and tok.upper == "NULL":
            if op not in ("=", "!="):
                raise located(
                    self.text,
                    tok.pos,
                    "INVALID_QUERY_FILTER_OPERATOR",
                    f"invalid operator on null value: {op}",
                )
            return None
        if kind in ID_TYPES:
            if tok.kind != "string":
                raise wrong("id", True)
            text = "".join(c for c, _ in self.decoded(tok))
            try:
                return normalize(text)[:15] if op not in ("=", "!=") else normalize(text)
            except InvalidId:
                raise located(
                    self.text, tok.pos, "INVALID_QUERY_FILTER_OPERATOR", f"invalid ID field: {text}"
                ) from None
        if kind in TEXT_TYPES:
            if tok.kind != "string":
                raise wrong("string", True)
            return "".join(c for c, _ in self.decoded(tok)).lower()
        if kind == "boolean":
            if tok.kind != "ident" or tok.upper not in ("TRUE", "FALSE"):
                raise wrong("boolean", False)
            if op not in ("=", "!="):
                raise located(
                    self.text,
                    tok.pos,
                    "INVALID_QUERY_FILTER_OPERATOR",
                    f"invalid operator on boolean field: {op}",
                )
            return tok.upper == "TRUE"
        if kind in NUMBER_TYPES:
            if tok.kind != "number":
                raise wrong("double" if kind != "int" else "int", False)
            return float(tok.text)
        if kind == "date":
            if tok.kind != "date":
                raise wrong("date", False)
            return parse_date(tok.text).isoformat()  # type: ignore[union-attr]
        if kind == "datetime":
            if tok.kind != "datetime":
                raise wrong("dateTime", False)
            moment = parse_datetime(tok.text)
            if moment is None:
                raise self.error(tok)
            return moment
        raise self.error(tok, f"fields of type {kind} cannot be filtered by the emulator")

    def decoded(self, tok: Token) -> list[tuple[str, bool]]:
        try:
            return decode_string(tok.text, like=False)
        except ValueError as exc:
            raise located(
                self.text, tok.pos, "MALFORMED_QUERY", f"Invalid string literal: {exc}"
            ) from None


def _equal(value: object, literal: object) -> bool:
    if value is None or literal is None:
        return value is None and literal is None
    return value == literal


def parse(org: Org, text: str) -> Query:
    if not text.strip():
        raise bad_request("MALFORMED_QUERY", "A query string has to be specified")
    parser = Parser(org, text, tokenize(text))
    return parser.parse_query()
