"""The webhook envelope parser and the phone normaliser against hostile input."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from integrations.aircall.events import parse
from integrations.errors import BadInput, BadToken
from integrations.phones import to_e164

TOKENS = [SecretStr("a" * 32), SecretStr("b" * 32)]
CALL = {
    "id": 780836754,
    "direction": "inbound",
    "status": "done",
    "started_at": 1646389739,
    "answered_at": None,
    "ended_at": 1646389756,
    "duration": 17,
    "raw_digits": "+44 330 818 6690",
    "tags": [],
    "comments": [],
}


def envelope(**overrides: object) -> bytes:
    body = {"resource": "call", "event": "call.ended", "timestamp": 1646389786, "token": "b" * 32}
    body["data"] = dict(CALL)
    body.update(overrides)
    return json.dumps(body).encode()


def test_valid_delivery_parses_and_drops_the_token() -> None:
    event = parse(envelope(), TOKENS)
    assert (event.event, event.call_id, event.timestamp) == ("call.ended", 780836754, 1646389786)
    assert "token" not in event.stored()


def test_a_retry_has_the_same_delivery_key_and_a_new_snapshot_does_not() -> None:
    first, again = parse(envelope(), TOKENS), parse(envelope(), TOKENS)
    tagged = parse(envelope(event="call.tagged"), TOKENS)
    assert first.delivery_key == again.delivery_key != tagged.delivery_key


def test_wrong_token_is_refused() -> None:
    with pytest.raises(BadToken):
        parse(envelope(token="c" * 32), TOKENS)


@pytest.mark.parametrize("body", [b'{"event": "call.ended"}', b'{"token": 5}', b'{"token": null}'])
def test_a_missing_or_non_string_token_is_a_wrong_token(body: bytes) -> None:
    with pytest.raises(BadToken):
        parse(body, TOKENS)


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        envelope(timestamp="yesterday"),
        envelope(data=[]),
        envelope(data={**CALL, "id": "780836754"}),
        envelope(data={**CALL, "direction": "sideways"}),
        envelope(data={**CALL, "tags": "Interested"}),
        envelope(event=""),
        b"\xff\xfe",
    ],
)
def test_malformed_bodies_are_bad_input(body: bytes) -> None:
    with pytest.raises(BadInput):
        parse(body, TOKENS)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=10,
)
fuzz = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@fuzz
@given(
    st.dictionaries(
        st.sampled_from(["resource", "event", "timestamp", "token", "data", "extra"]),
        json_values,
    )
)
def test_any_json_object_is_an_event_or_a_clean_refusal(body: dict) -> None:
    try:
        event = parse(json.dumps(body).encode(), TOKENS)
    except (BadInput, BadToken):
        return
    assert body["token"] in ("a" * 32, "b" * 32)
    assert event.event == body["event"]


@fuzz
@given(st.sampled_from(sorted(CALL)), json_values)
def test_a_valid_call_with_one_hostile_field_is_an_event_or_bad_input(
    key: str, value: object
) -> None:
    body = envelope(data={**CALL, key: value})
    try:
        event = parse(body, TOKENS)
    except BadInput:
        return
    assert event.call_id == (value if key == "id" else CALL["id"])


@fuzz
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_never_escape_as_another_error(body: bytes) -> None:
    with pytest.raises((BadInput, BadToken)):
        parse(body, TOKENS)


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("+44 330 818 6690", "US", "+443308186690"),
        ("(415) 555-0100", "US", "+14155550100"),
        ("415.555.0100", "US", "+14155550100"),
        ("0330 818 6690", "GB", "+443308186690"),
        ("+1 415-555-0100 ", "FR", "+14155550100"),
        ("anonymous", "US", None),
        ("", "US", None),
        ("12", "US", None),
    ],
)
def test_numbers_normalise_to_e164(raw: str, region: str, expected: str | None) -> None:
    assert to_e164(raw, region) == expected


@fuzz
@given(st.one_of(st.text(max_size=80), st.integers(), st.none(), st.binary()))
def test_phone_normaliser_never_raises(raw: object) -> None:
    result = to_e164(raw)
    assert result is None or (result.startswith("+") and result[1:].isdigit())
    if result is not None:
        assert to_e164(result) == result  # E.164 is a fixed point
