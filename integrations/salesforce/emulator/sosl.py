"""The SOSL subset: ``FIND {term} [IN ALL|NAME|EMAIL|PHONE FIELDS] RETURNING Obj(fields [WHERE]
[ORDER BY] [LIMIT n]), ... [LIMIT n]``.

A field list is read as SOQL reads its ``SELECT`` list: parent relationship fields (``Owner.Name``,
``Account.Name``; one level, as the emulator's SOQL) come back nested, or ``null`` when the lookup
is empty; an unknown field or relationship is ``INVALID_FIELD``, a field listed twice is refused.
An object may appear only once in ``RETURNING`` (Salesforce's reference says so; the message is
the emulator's).

The term must sit in braces and every reserved character
(``? & | ! { } [ ] ( ) ^ ~ * : \\ " ' + -``) must be escaped with a backslash, except a ``*`` or
``?`` that ends a word (a wildcard: ``*`` any number of characters, ``?`` exactly one). ``OR``
(any case, as Salesforce reads it) between single words finds records matching any of them;
``AND``, ``NOT``, ``OR`` beside a phrase of several words, or at either end, and phrases are
refused rather than guessed at. Every word between ORs must be at least two characters. As the
SOSL reference says, a term over 4,000 characters loses its operators (a record must then
match each of its words) and one over 10,000 finds nothing.

Matching (with ORs, of each word on its own):

* Text fields: field values and the term are cut into lower-case runs of letters and digits; every
  run of the term must equal a run of the record (a trailing wildcard matches a prefix).
* Phone fields (``IN PHONE FIELDS``, and with ``IN ALL FIELDS`` when the term has digits): only
  digits count. A field matches when its digits equal the term's digits, or when one digit string
  ends with the other and the shorter has at least 7 digits (so ``4155550100`` finds
  ``+1 (415) 555-0100`` and the other way round). A trailing ``*`` matches fields whose digits
  start with the term's digits. Callers must confirm matches themselves, as with real Salesforce.
* The search index lags: records written through the API become visible ``Org.sosl_delay``
  seconds later (until then SOSL sees the previous version, or nothing); ``Org.insert`` indexes at
  once. SOQL and retrieves see every write immediately.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import person_accounts
from .errors import ApiError, bad_request
from .schema import SObjectDef
from .soql import Parser
from .soql_lexer import KEYWORDS, Token, located, tokenize
from .soql_query import Path, Query, order_rows, render_row

if TYPE_CHECKING:
    from .org import Org

RESERVED = set("?&|!{}[]()^~*:\\\"'+-")
WILDCARDS = set("*?")
MAX_RESULTS = 2000
SCOPES = ("ALL", "NAME", "EMAIL", "PHONE")
NO_TERM = "No search term found. The search term must be enclosed in braces."
_RUN = re.compile(r"[^\W_]+")
MIN_PHONE_SUFFIX = 7
OPERATORS = ("AND", "OR", "NOT")
OPERATORS_DROPPED = 4000  # characters of the term past which Salesforce drops its operators
MAX_TERM = 10000  # past which it returns no rows


def malformed(message: str) -> ApiError:
    return bad_request("MALFORMED_SEARCH", message)


@dataclass
class Word:
    text: str  # unescaped, without the trailing wildcard
    wildcard: str = ""  # "", "*" or "?"


@dataclass
class Search:
    alternatives: list[list[Word]]  # a record matching any of them is found
    scope: str
    targets: list[Query]
    limit: int | None
    every: bool = False  # operators dropped: a record must match all the alternatives


def parse_term(text: str, start: int) -> tuple[list[Word], int]:
    """Scan ``{...}`` from ``start`` (the brace); return the words and the index after ``}``."""
    words: list[Word] = []
    current: list[str] = []
    wildcard = ""
    i = start + 1

    def finish() -> None:
        nonlocal current, wildcard
        if current or wildcard:
            words.append(Word("".join(current), wildcard))
        current, wildcard = [], ""

    while i < len(text):
        char = text[i]
        if wildcard and not char.isspace() and char != "}":
            raise malformed(
                f"Wildcard '{wildcard}' is only supported at the end of a search word "
                "(escape it with a backslash to search for it)"
            )
        if char == "\\":
            nxt = text[i + 1] if i + 1 < len(text) else ""
            if nxt not in RESERVED:
                raise malformed(f"Invalid escape sequence '\\{nxt}' in the search term")
            current.append(nxt)
            i += 2
            continue
        if char == "}":
            finish()
            return words, i + 1
        if char.isspace():
            finish()
        elif char in WILDCARDS:
            wildcard = char
        elif char in RESERVED:
            raise malformed(
                f"Reserved character '{char}' at position {i - start} of the search term must be "
                "escaped with a backslash"
            )
        else:
            current.append(char)
        i += 1
    raise malformed(NO_TERM)


def parse(org: Org, text: str) -> Search:
    stripped = text.lstrip()
    offset = len(text) - len(stripped)
    if not stripped[:4].upper() == "FIND" or (len(stripped) > 4 and stripped[4].isalnum()):
        raise malformed(f"unexpected token: '{stripped.split(' ', 1)[0] or text}'")
    i = offset + 4
    while i < len(text) and text[i].isspace():
        i += 1
    if i >= len(text) or text[i] != "{":
        raise malformed(NO_TERM)
    words, after = parse_term(text, i)
    if not words:
        raise malformed(NO_TERM)
    length = after - i - 2  # of the term between the braces
    alternatives = _alternatives(words, length)
    try:
        search = _parse_clauses(org, text, after, alternatives)
    except ApiError as exc:
        if exc.code == "MALFORMED_QUERY":
            exc.code = "MALFORMED_SEARCH"
        raise
    search.every = length > OPERATORS_DROPPED
    return search


def _operator(word: Word) -> str | None:
    upper = word.text.upper()
    return upper if upper in OPERATORS and not word.wildcard else None


def _alternatives(words: list[Word], length: int) -> list[list[Word]]:
    """The term's words split at its ORs (``length``: of the text between the braces)."""
    if length > MAX_TERM:
        return []  # Salesforce returns no rows
    if length > OPERATORS_DROPPED:
        return [[w] for w in words if _operator(w) is None]
    if any(_operator(w) in ("AND", "NOT") for w in words):
        raise malformed("Boolean operators other than OR are not supported by the emulator")
    alternatives: list[list[Word]] = [[]]
    for word in words:
        if _operator(word):
            alternatives.append([])
        else:
            alternatives[-1].append(word)
    if len(alternatives) > 1 and any(len(alt) != 1 for alt in alternatives):
        raise malformed("OR must stand between single search words in the emulator")
    if any(len("".join(w.text for w in alt)) < 2 for alt in alternatives):
        raise malformed("search term must be longer than one character")
    return alternatives


def _parse_clauses(org: Org, text: str, start: int, alternatives: list[list[Word]]) -> Search:
    parser = Parser(org, text, tokenize(text, start))
    scope = "ALL"
    if parser.keyword("IN"):
        tok = parser.advance()
        if tok.upper not in SCOPES:
            raise parser.error(tok)
        scope = tok.upper
        parser.expect("FIELDS")
    targets: list[Query] = []
    if parser.keyword("RETURNING"):
        while True:
            name_tok = parser.tok
            target = _parse_target(org, parser)
            if any(t.sobject.name == target.sobject.name for t in targets):
                raise located(
                    text,
                    name_tok.pos,
                    "MALFORMED_SEARCH",
                    f"duplicate entity in RETURNING: {target.sobject.name}",
                )
            targets.append(target)
            if not (parser.tok.kind == "punct" and parser.tok.text == ","):
                break
            parser.i += 1
    else:
        targets = [
            Query(o, paths=[Path("Id", o.fields["Id"])])
            for o in org.schema.values()
            if o.searchable
        ]
    limit = parser.parse_count() if parser.keyword("LIMIT") else None
    if parser.tok.kind != "eof":
        raise parser.error()
    return Search(alternatives, scope, targets, limit)


def _parse_target(org: Org, parser: Parser) -> Query:
    name_tok: Token = parser.advance()
    if name_tok.kind != "ident" or "." in name_tok.text:
        raise parser.error(name_tok)
    obj = org.find_sobject(name_tok.text)
    if obj is None or not obj.searchable:
        raise bad_request("INVALID_TYPE", f"sObject type '{name_tok.text}' is not supported.")
    query = Query(obj)
    if parser.tok.kind == "punct" and parser.tok.text == "(":
        parser.i += 1
        while True:
            tok = parser.advance()
            if tok.kind != "ident" or tok.upper in KEYWORDS:
                raise parser.error(tok)
            parser.select(query, tok)
            if not (parser.tok.kind == "punct" and parser.tok.text == ","):
                break
            parser.i += 1
        parser.parse_tail(query)
        parser.expect_punct(")")
    if not query.paths:
        query.paths.append(Path("Id", obj.fields["Id"]))
    return query


def _runs(text: str) -> list[str]:
    return _RUN.findall(text.lower())


def _digits(text: str) -> str:
    return "".join(c for c in text if c.isdigit())


def phone_matches(value: str, term_digits: str, wildcard: bool) -> bool:
    """The digit rule documented in the module docstring."""
    digits = _digits(value)
    if not digits or not term_digits:
        return False
    if wildcard:
        return digits.startswith(term_digits)
    if digits == term_digits:
        return True
    short, long = sorted((digits, term_digits), key=len)
    return len(short) >= MIN_PHONE_SUFFIX and long.endswith(short)


def _text_matches(values: list[str], words: list[Word]) -> bool:
    runs = {run for value in values for run in _runs(value)}
    for word in words:
        pieces = _runs(word.text)
        if not pieces:
            return False
        for n, piece in enumerate(pieces):
            last = n == len(pieces) - 1
            if last and word.wildcard == "*":
                hit = any(run.startswith(piece) for run in runs)
            elif last and word.wildcard == "?":
                hit = any(len(run) == len(piece) + 1 and run.startswith(piece) for run in runs)
            else:
                hit = piece in runs
            if not hit:
                return False
    return True


def _record_matches(obj: SObjectDef, snapshot: dict, scope: str, words: list[Word]) -> bool:
    fields = list(obj.fields.values())
    phones = [snapshot[f.name] for f in fields if f.type == "phone" and snapshot.get(f.name)]
    term_digits = "".join(_digits(w.text) for w in words)
    wildcard = words[-1].wildcard == "*"
    if scope == "PHONE" or (scope == "ALL" and term_digits):
        if any(phone_matches(p, term_digits, wildcard) for p in phones):
            return True
        if scope == "PHONE":
            return False
    if scope == "NAME":
        texts = [snapshot.get(name) for name in obj.name_fields]
    elif scope == "EMAIL":
        texts = [snapshot.get(f.name) for f in fields if f.type == "email"]
    else:
        kinds = {"string", "textarea", "email", "url", "combobox", "phone"}
        texts = [snapshot.get(f.name) for f in fields if f.type in kinds]
    return _text_matches([t for t in texts if isinstance(t, str)], words)


def _any_matches(obj: SObjectDef, snapshot: dict, search: Search) -> bool:
    if not search.alternatives:
        return False  # a term Salesforce returns no rows for
    combine = all if search.every else any
    return combine(_record_matches(obj, snapshot, search.scope, w) for w in search.alternatives)


def run(org: Org, text: str, version: str) -> list[dict]:
    search = parse(org, text)
    found: list[dict] = []
    for query in search.targets:
        hits = []
        for rec in org.table(query.sobject.name):
            if rec.get("IsDeleted") or person_accounts.hidden_from_search(query.sobject, rec):
                continue
            snapshot = org.searchable(rec["Id"])
            if snapshot is None or not _any_matches(query.sobject, snapshot, search):
                continue
            if query.where is None or query.where(rec):
                hits.append(rec)
        if query.order:
            hits = order_rows(query, org, hits)
        if query.offset:
            hits = hits[query.offset :]
        if query.limit is not None:
            hits = hits[: query.limit]
        found.extend(render_row(org, query, rec, version) for rec in hits)
    cap = MAX_RESULTS if search.limit is None else min(search.limit, MAX_RESULTS)
    return found[:cap]
