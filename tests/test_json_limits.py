"""The checks on a raw body before and while it is decoded give the answers of their plain readings.

`nesting_depth` peels brackets in C and `decode_json_body` skips work on ordinary bodies; each is
held here to a straightforward reference on generated bodies, valid JSON or not.
"""

from __future__ import annotations

import json
import math
import random
import re
from itertools import accumulate
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cds_service.errors import BadRequest
from cds_service.hooks.json_limits import (
    _OutOfRangeFloat,
    float_or_refuse,
    has_too_many_digits,
    nesting_depth,
)
from cds_service.hooks.request import decode_json_body
from fhir_mappings.decimals import DecimalLiteral, decode_float

_ESCAPE = re.compile(rb"\\.", re.DOTALL)
_NOT_QUOTE_OR_BRACKET = bytes(byte for byte in range(256) if byte not in b'"[]{}')
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


def reference_depth(body: bytes) -> int:
    """The running count of brackets outside strings, walked one byte at a time (the oracle).

    Escapes dropped, then the text split at every quote: even pieces lie outside strings.
    """
    skeleton = _ESCAPE.sub(b"", body).translate(None, _NOT_QUOTE_OR_BRACKET)
    outside_strings = b"".join(skeleton.split(b'"')[::2])
    return max(accumulate(map(_STEP.__getitem__, outside_strings)), default=0)


def value_depth(value: Any) -> int:
    """How deep arrays and objects nest in a decoded value: `{"a": [1]}` is 2."""
    if isinstance(value, dict):
        return 1 + max(map(value_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(value_depth, value), default=0)
    return 0


# Text that looks like structure: brackets, quotes, backslashes, escapes, non-ASCII.
_tricky_text = st.text(alphabet='[]{}"\\/aé\n\t\u2028😀', max_size=8)
_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | _tricky_text,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(_tricky_text, children, max_size=4)
    ),
    max_leaves=40,
)
_layouts = st.sampled_from(
    [
        {"separators": (",", ":")},
        {"ensure_ascii": False},
        {"indent": 2},
        {"indent": "\t", "ensure_ascii": False, "separators": (" ,", " : ")},
    ]
)


@pytest.mark.slow  # hypothesis
@settings(max_examples=400, deadline=None)
@given(value=_json_values, layout=_layouts)
def test_the_depth_of_json_text_is_the_depth_of_its_value(
    value: Any, layout: dict[str, Any]
) -> None:
    body = json.dumps(value, **layout).encode()
    assert nesting_depth(body) == reference_depth(body) == value_depth(value)


_LOOKALIKES = '[]{}"\\ aé'.encode()  # the bytes that decide the depth, and some that do not


@pytest.mark.slow  # hypothesis
@settings(max_examples=1000, deadline=None)
@given(body=st.binary(max_size=60) | st.lists(st.sampled_from(list(_LOOKALIKES))).map(bytes))
def test_any_body_has_the_depth_the_walk_gives(body: bytes) -> None:
    assert nesting_depth(body) == reference_depth(body)


def _generated_value(rng: random.Random, depth: int) -> Any:
    """A value of up to `depth` levels, some hundreds of bytes per level, with tricky strings."""
    kind = rng.random()
    if depth == 0 or kind < 0.3:
        return rng.choice(["[x]", '"', "\\", "{", "}]", "ok", 1, 2.5, None, True, 'a\\"[b'])
    children = [_generated_value(rng, depth - 1) for _ in range(rng.randint(0, 6))]
    if kind < 0.65:
        return children
    marks = ["", "[", "}", '"']
    return {f"k{index}{rng.choice(marks)}": child for index, child in enumerate(children)}


def _large_bodies() -> list[bytes]:
    """Bodies past the size where peeling may give way to the walk: valid, cut and shuffled."""
    rng = random.Random(13)
    bodies = []
    for _ in range(30):
        value = [_generated_value(rng, rng.randint(3, 12)) for _ in range(40)]
        text = json.dumps(value, ensure_ascii=rng.random() < 0.5).encode()
        bodies.append(text)
        cut = rng.randrange(len(text))
        bodies.append(text[:cut] + text[cut + 1 :])  # one byte gone: a bracket, quote or escape
        bodies.append(text[:cut] + rng.choice([b"[", b"]", b'"', b"\\", b"{"]) + text[cut:])
    return bodies


@pytest.mark.parametrize("body", _large_bodies(), ids=lambda body: f"{len(body)}-bytes")
def test_large_bodies_valid_or_not_have_the_depth_the_walk_gives(body: bytes) -> None:
    assert nesting_depth(body) == reference_depth(body)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"[" * 70_000 + b"]" * 70_000, id="deep-and-narrow"),
        pytest.param((b"[" * 64 + b"]" * 64) * 700, id="narrow-groups-64-deep"),
        pytest.param(b"[[]" * 30_000, id="ever-deeper-unbalanced"),
        pytest.param(b"]" * 9000 + b"[]" * 9000 + b"[" * 80, id="closing-first"),
        pytest.param(b'["' + b"[" * 9000 + b'"]', id="brackets-inside-a-string"),
        pytest.param(b'["\\"' + b"[" * 9000 + b"]", id="escaped-quote-then-brackets"),
        pytest.param(b'["a' + b"[" * 9000, id="unterminated-string"),
        pytest.param(b"", id="empty"),
        pytest.param(b"12", id="a-number"),
        pytest.param(b'"[[["', id="a-string-of-brackets"),
    ],
)
def test_bodies_built_to_defeat_the_peeling_have_the_depth_the_walk_gives(body: bytes) -> None:
    assert nesting_depth(body) == reference_depth(body)


# --- decode_json_body: the shortcuts keep every answer ------------------------------------------


@pytest.mark.parametrize(
    ("body", "refusal"),
    [
        pytest.param(b'{"a": "\xff"}', "request body is not valid UTF-8 (byte 7)", id="not-utf8"),
        pytest.param(
            b"[" * 100 + b'"\xc3"' + b"]" * 100,
            "request body is not valid UTF-8 (byte 101)",
            id="not-utf8-and-too-deep",
        ),
        pytest.param(
            "[" * 65 + '"é"' + "]" * 65,
            "request body is nested too deeply (more than 64 levels)",
            id="utf8-and-too-deep",
        ),
        pytest.param('{"a": NaN}', "NaN is not a JSON number", id="nan"),
        pytest.param('{"a": 1', "request body is not valid JSON: Expecting", id="cut-short"),
    ],
)
def test_refusals_read_as_before(body: str | bytes, refusal: str) -> None:
    raw = body.encode() if isinstance(body, str) else body
    with pytest.raises(BadRequest) as refused:
        decode_json_body(raw)
    assert refusal in refused.value.message


@pytest.mark.parametrize(
    ("body", "value"),
    [
        pytest.param('{"é": "ü😀"}', {"é": "ü😀"}, id="non-ascii"),
        pytest.param('{"a": ["[x]", "\\"]"]}', {"a": ["[x]", '"]']}, id="brackets-in-strings"),
        pytest.param(
            '{"é": 1, "n": "' + "9" * 400 + '"}', {"é": 1, "n": "9" * 400}, id="long-digits"
        ),
    ],
)
def test_ordinary_bodies_decode_to_their_value(body: str, value: Any) -> None:
    assert decode_json_body(body.encode()) == value


# A number no double holds decodes as an infinity of its sign (what reads it finds no finite
# number), by the fast decoder and the careful one alike, and never as a `DecimalLiteral`,
# whose literal would read back as a finite decimal.
@pytest.mark.parametrize(
    ("body", "value"),
    [
        pytest.param('{"a": [1e999]}', {"a": [math.inf]}, id="exponent-past-double"),
        pytest.param('{"a": -1.5e400}', {"a": -math.inf}, id="negative-exponent-past-double"),
        pytest.param('{"a": 1' + "0" * 308 + "}", {"a": math.inf}, id="integer-of-309-digits"),
        pytest.param('{"é": [-1' + "0" * 400 + "]}", {"é": [-math.inf]}, id="non-ascii-body"),
        pytest.param('{"a": 9' + "9" * 5000 + "}", {"a": math.inf}, id="past-pythons-int-limit"),
        pytest.param('{"a": 1e999, "b": 1' + "0" * 308 + "}", {"a": math.inf, "b": math.inf},
                     id="both-in-the-careful-decoder"),
    ],
)  # fmt: skip
def test_numbers_no_double_holds_decode_as_infinities(body: str, value: Any) -> None:
    decoded = decode_json_body(body.encode())
    assert decoded == value
    assert all(type(number) is float for number in _numbers(decoded) if math.isinf(number))


def test_an_integer_of_308_digits_stays_an_integer() -> None:
    assert decode_json_body(b'{"a": ' + b"9" * 308 + b"}") == {"a": int("9" * 308)}


def _numbers(value: Any) -> list[float]:
    if isinstance(value, dict):
        return [n for item in value.values() for n in _numbers(item)]
    if isinstance(value, list):
        return [n for item in value for n in _numbers(item)]
    return [value] if isinstance(value, float) else []


_float_literals = (
    st.floats(allow_nan=False).map(repr)
    | st.decimals(allow_nan=False, allow_infinity=False).map(lambda d: f"{d:e}")
    | st.from_regex(r"-?[1-9][0-9]{0,25}\.[0-9]{1,25}(e[+-]?[0-9]{1,3})?", fullmatch=True)
)


@pytest.mark.slow  # hypothesis
@settings(max_examples=500, deadline=None)
@given(literal=_float_literals)
def test_the_float_hook_reads_a_literal_as_decode_float_does(literal: str) -> None:
    expected = decode_float(literal)
    if expected in (float("inf"), float("-inf")):
        with pytest.raises(_OutOfRangeFloat):
            float_or_refuse(literal)
        return
    number = float_or_refuse(literal)
    assert number == expected
    assert type(number) is type(expected)
    assert getattr(number, "literal", None) == getattr(expected, "literal", None)
    assert isinstance(number, DecimalLiteral) == isinstance(expected, DecimalLiteral)


def _digit_runs() -> list[bytes]:
    """Bodies with runs of digits around the limit, anywhere, between other bytes."""
    rng = random.Random(7)
    bodies = []
    for _ in range(300):
        parts = []
        for _ in range(rng.randint(1, 4)):
            parts.append(bytes(rng.choice(b'a":,[]. -e') for _ in range(rng.randint(0, 70))))
            length = rng.choice([rng.randint(0, 40), rng.randint(280, 330)])
            parts.append(bytes(rng.choice(b"0123456789") for _ in range(length)))
        bodies.append(b"".join(parts))
    return bodies


def test_a_run_of_too_many_digits_is_found_wherever_it_lies() -> None:
    found = [has_too_many_digits(body) for body in _digit_runs()]
    expected = [re.search(rb"[0-9]{309}", body) is not None for body in _digit_runs()]
    assert found == expected
    assert 20 < sum(expected) < 280  # both kinds, and runs of 300-308 digits among the rest
