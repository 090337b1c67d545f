"""A19 runs one SELECT: anything else is refused, and call data can never change the statement."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from integrations.salesforce.soql import sosl_phone_search
from integrations.sync.automations.fieldmap import Scope
from integrations.sync.automations.soql_guard import (
    SoqlRefused,
    build_select,
    check_select,
    soql_tokens,
)

TEMPLATE = "SELECT Id, Name FROM Contact WHERE Phone = {{contact_phone}} LIMIT 1"
DML = ["INSERT", "UPDATE", "DELETE", "UPSERT", "MERGE", "UNDELETE", "DROP", "CREATE", "ALTER"]


def _shape(statement: str) -> list[tuple[str, str]]:
    """The statement's structure: every token but the text of string literals."""
    return [(t.kind, "" if t.kind == "string" else t.text.upper()) for t in soql_tokens(statement)]


def _unquote(literal: str) -> str:
    body, out, i = literal[1:-1], [], 0
    escapes = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f"}
    while i < len(body):
        if body[i] == "\\":
            out.append(escapes.get(body[i + 1], body[i + 1]))
            i += 2
        else:
            out.append(body[i])
            i += 1
    return "".join(out)


@pytest.mark.parametrize(
    "statement",
    [
        "DELETE FROM Contact",
        "UPDATE Contact SET Phone = '1'",
        "SELECT Id FROM Contact; DELETE FROM Contact",
        "SELECT Id FROM Contact WHERE Name = 'x' -- comment",
        "select Id from Contact where Name = 'unterminated",
        'SELECT Id FROM Contact WHERE Name = "x"',
        "SELECT Id FROM Contact WHERE Name = '{{contact_name}}'",
        "SELECT Id, (DELETE FROM Contact) FROM Account",
        "",
        "SELECT Id",
    ],
)
def test_anything_but_one_select_is_refused(statement: str) -> None:
    with pytest.raises(SoqlRefused):
        check_select(statement)


def test_keywords_inside_string_literals_are_only_text() -> None:
    check_select("SELECT Id FROM Task WHERE Subject = 'delete; update -- drop'")


@settings(max_examples=200, deadline=None)
@given(
    keyword=st.sampled_from(DML),
    before=st.text(alphabet="abc ,()=*", max_size=20),
    after=st.text(max_size=40),
)
def test_a_statement_with_a_dml_keyword_outside_literals_is_refused(
    keyword: str, before: str, after: str
) -> None:
    with pytest.raises(SoqlRefused):
        check_select(f"SELECT {before} {keyword} {after}")


@settings(max_examples=300, deadline=None)
@given(
    hostile=st.one_of(
        st.text(min_size=1),  # an empty value is no value: it becomes null
        st.sampled_from(
            [
                "' OR Name != '",
                "\\' OR Id != null OR Name = \\'",
                "x'; DELETE FROM Contact; --",
                "{{steps.1.id}}",
                "\\",
                "'",
                "%_",
            ]
        ),
    )
)
def test_hostile_call_data_becomes_one_literal_and_never_changes_the_statement(
    hostile: str,
) -> None:
    statement = build_select(TEMPLATE, Scope(dialer={"contact_phone": hostile}))
    expected = _shape(TEMPLATE.replace("{{contact_phone}}", "'x'"))
    assert _shape(statement) == expected
    (literal,) = [t.text for t in soql_tokens(statement) if t.kind == "string"]
    assert _unquote(literal) == hostile


@given(value=st.one_of(st.integers(), st.booleans(), st.none(), st.lists(st.text(), max_size=3)))
def test_numbers_booleans_null_and_lists_become_literals(value: object) -> None:
    statement = build_select(
        "SELECT Id FROM Contact WHERE Name IN {{event.v}}", Scope(event={"v": value})
    )
    check_select(statement)
    assert statement.startswith("SELECT Id FROM Contact WHERE Name IN ")


_PATH = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,79}(\.[A-Za-z][A-Za-z0-9_]{0,79})*")


@given(st.text(max_size=40) | st.from_regex(_PATH, fullmatch=True))
def test_a_sosl_field_is_a_name_or_a_parent_path_and_nothing_else(field: str) -> None:
    try:
        statement = sosl_phone_search("+14155550100", {"Contact": ["Name", field]})
    except ValueError:
        assert not _PATH.fullmatch(field)
        return
    assert _PATH.fullmatch(field)
    listed = "Name" if field == "Name" else f"Name, {field}"
    assert statement == f"FIND {{14155550100}} IN PHONE FIELDS RETURNING Contact({listed})"


def test_a_parent_path_reaches_the_search() -> None:
    statement = sosl_phone_search("+1 415 555 0100", {"Lead": ["Id", "Owner.Name"]})
    assert statement == "FIND {14155550100} IN PHONE FIELDS RETURNING Lead(Id, Owner.Name)"
    with pytest.raises(ValueError, match="not a Salesforce API name"):
        sosl_phone_search("+14155550100", {"Lead": ["Owner.Name) , Contact(Id"]})
