"""A19's guard: only a single SELECT reaches Salesforce, with every value escaped.

A statement is tokenised (strings, placeholders, words, punctuation) so that forbidden words are
found outside string literals only; placeholders are replaced by escaped literals
(``simple_salesforce.format.format_soql``), never pasted in as text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from simple_salesforce.format import format_soql

from integrations.errors import BadInput
from integrations.sync.automations import fieldmap
from integrations.sync.automations.fieldmap import Pending, Scope


class SoqlRefused(BadInput):
    """A19 refused the statement before it reached Salesforce."""


_FORBIDDEN_WORDS = {
    "INSERT",
    "UPDATE",
    "DELETE",
    "UPSERT",
    "MERGE",
    "UNDELETE",
    "DROP",
    "CREATE",
    "ALTER",
    "TRUNCATE",
    "GRANT",
    "EXEC",
    "EXECUTE",
}


_WORD = re.compile(r"[A-Za-z0-9_.:]+")


@dataclass(frozen=True)
class Token:
    kind: str  # word | string | placeholder | punct
    text: str
    start: int
    end: int


def soql_tokens(statement: str) -> list[Token]:
    """SOQL split into words, string literals, ``{{...}}`` placeholders and punctuation.

    Refuses (``SoqlRefused``) what SOQL never needs and injection relies on: an unterminated
    string, ``;``, comments, double quotes, backslashes or braces outside string literals.
    """
    tokens: list[Token] = []
    i, n = 0, len(statement)
    while i < n:
        c = statement[i]
        if c.isspace():
            i += 1
        elif c == "'":
            j = i + 1
            while j < n and statement[j] != "'":
                j += 2 if statement[j] == "\\" else 1
            if j >= n:
                raise SoqlRefused("unterminated string literal")
            tokens.append(Token("string", statement[i : j + 1], i, j + 1))
            i = j + 1
        elif statement.startswith("{{", i):
            j = statement.find("}}", i + 2)
            if j < 0:
                raise SoqlRefused("unclosed {{ placeholder")
            tokens.append(Token("placeholder", statement[i + 2 : j].strip(), i, j + 2))
            i = j + 2
        elif _WORD.match(statement, i):
            match = _WORD.match(statement, i)
            assert match is not None  # noqa: S101  (just matched)
            tokens.append(Token("word", match[0], i, match.end()))
            i = match.end()
        elif c in ",()=<>!+-*/%":
            if statement.startswith(("--", "/*"), i):
                raise SoqlRefused("comments are not SOQL")
            tokens.append(Token("punct", c, i, i + 1))
            i += 1
        else:
            raise SoqlRefused(f"{c!r} is not allowed outside a string literal")
    return tokens


def check_select(statement: str, *, template: bool = True) -> list[Token]:
    """The statement's tokens when it is one SELECT, else ``SoqlRefused`` saying why.

    In a template, ``{{...}}`` inside quotes is refused (it would not be escaped); in the final
    statement the same characters are only a value's text.
    """
    tokens = soql_tokens(statement)
    if not tokens or tokens[0].kind != "word" or tokens[0].text.upper() != "SELECT":
        raise SoqlRefused("only a SELECT statement can run")
    for token in tokens:
        if token.kind == "word" and token.text.upper() in _FORBIDDEN_WORDS:
            raise SoqlRefused(f"{token.text.upper()} is not allowed in a query")
        if template and token.kind == "string" and "{{" in token.text:
            raise SoqlRefused("write {{...}} outside quotes: the value is quoted for you")
    if "FROM" not in {t.text.upper() for t in tokens if t.kind == "word"}:
        raise SoqlRefused("a SELECT needs FROM")
    return tokens


def soql_literal(value: Any) -> str:
    """A value as a SOQL literal, escaped by simple-salesforce's ``format_soql``."""
    if isinstance(value, Pending):
        value = f"<steps.{value.step}>"
    if isinstance(value, dict):
        raise BadInput("an object cannot be a SOQL value; pick one of its fields")
    return format_soql("{}", value)


def build_select(template: str, scope: Scope) -> str:
    """The template with each ``{{source}}`` replaced by its value as an escaped literal.

    The template is checked before (one SELECT), and the result again: a value can only ever
    become one literal, never change the statement.
    """
    tokens = check_select(template)
    parts, last = [], 0
    for token in tokens:
        if token.kind == "placeholder":
            parts.append(template[last : token.start])
            parts.append(soql_literal(fieldmap.evaluate(token.text, scope)))
            last = token.end
    parts.append(template[last:])
    statement = "".join(parts)
    check_select(statement, template=False)
    return statement
