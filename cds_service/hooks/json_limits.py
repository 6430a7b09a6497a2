"""Limits on decoded JSON that keep hostile bodies from costing more than they are worth."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from itertools import accumulate
from typing import Any

import msgspec

from cds_service.settings import DEFAULT_MAX_JSON_DEPTH, MAX_JSON_DEPTH_LIMIT
from fhir_mappings import shorten
from fhir_mappings.decimals import decode_float

__all__ = [
    "DEFAULT_MAX_JSON_DEPTH",
    "MAX_INTEGER_DIGITS",
    "MAX_JSON_DEPTH_LIMIT",
    "UnusableValue",
    "decode_integer",
    "decode_number",
    "find_path",
    "float_or_refuse",
    "has_too_many_digits",
    "load_checked",
    "nesting_depth",
    "printable",
]


_ESCAPE = re.compile(rb"\\.", re.DOTALL)  # a backslash and the character it escapes
_ALL_BUT_QUOTES_AND_BRACKETS = bytes(byte for byte in range(256) if byte not in b'"[]{}')
_OBJECTS_AS_ARRAYS = bytes.maketrans(b"{}", b"[]")  # depth does not tell them apart
_SIGNED_STEPS = bytes.maketrans(b"[]", b"\x01\xff")  # +1 and -1 as signed bytes
# Peeling gives way to the exact walk once a pass over a long skeleton removes under an eighth
# of it, or the passes have copied more than 4 times the skeleton: real bodies lose a third or
# more in each early pass (about 2.5 times the skeleton copied in all), while a deep narrow one
# (`[[[[...]]]]`) would need a pass per level. So an unusual body costs at most a few passes
# more than the walk alone.
_PEELED_AT_LEAST = 8
_PEELING_BUDGET = 4
_SHORT = 4096


def nesting_depth(body: bytes) -> int:
    """Return how deep arrays and objects nest in a JSON body, without parsing it.

    Exact for valid JSON: escapes are dropped first (so `\\"` cannot end a string), then
    everything but quotes and brackets; what lies between quotes is string content and does
    not count. For any other body it is the highest running count of opening less closing
    brackets outside strings (what a walk over them gives). An ordinary body is measured in a
    few passes in C, so it is refused for its depth before the parser spends anything on it.
    Multi-byte UTF-8 sequences never contain these ASCII bytes.
    """
    skeleton = _skeleton(body)
    # Each pass removes every innermost pair, which is exactly one level of a balanced
    # skeleton; one that stops shrinking before it is empty is unbalanced (invalid JSON).
    depth, remaining, budget = 0, skeleton, _PEELING_BUDGET * len(skeleton) + _SHORT
    while remaining:
        peeled = remaining.replace(b"[]", b"")
        budget -= len(remaining)
        removed = len(remaining) - len(peeled)
        if (
            not removed
            or budget < 0
            or (len(remaining) > _SHORT and removed * _PEELED_AT_LEAST < len(remaining))
        ):
            return _walked_depth(skeleton)
        depth, remaining = depth + 1, peeled
    return depth


def _skeleton(body: bytes) -> bytes:
    """Return the brackets of `body` outside strings, objects written as arrays (`[]`)."""
    if b"\\" in body:
        body = _ESCAPE.sub(b"", body)
    quotes_and_brackets = body.translate(_OBJECTS_AS_ARRAYS, _ALL_BUT_QUOTES_AND_BRACKETS)
    # Two adjacent quotes delimit nothing, whichever string they open or close: dropping them
    # keeps every other byte on its side of every string, and leaves only the strings that
    # hold brackets (a LOINC display, a UCUM unit) to be cut out.
    skeleton = quotes_and_brackets.replace(b'""', b"")
    if b'"' in skeleton:
        skeleton = b"".join(skeleton.split(b'"')[::2])
    return skeleton


def _walked_depth(skeleton: bytes) -> int:
    """Return the highest running count of `[` less `]` in `skeleton` (the slow, exact walk)."""
    return max(accumulate(memoryview(skeleton.translate(_SIGNED_STEPS)).cast("b")), default=0)


# Numbers: the service computes in IEEE 754 doubles. An integer literal of more than 308 digits
# (308 always fit below the largest double, 1.797e308; 309 may not) and a float literal past
# that double (`1e999`) are decoded as an infinity of their sign, as a JSON decoder does with
# such a float: what reads one then finds no finite number, so a result holding it is unusable
# (and its card says so), a field that must be an integer refuses it, and an element no rule
# reads stays unread.
MAX_INTEGER_DIGITS = 308

# A JSON escape of a UTF-16 surrogate (\ud800-\udfff). Only a body holding one can decode to
# text with a lone surrogate, which no UTF-8 database column can store (RFC 8259 § 8.2).
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


class UnusableValue(ValueError):
    """A decoded JSON value the service cannot represent, with its dotted path."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


SURROGATE_PROBLEM = (
    "text holds a lone UTF-16 surrogate (an escape in \\ud800-\\udfff without its pair), "
    "which is not Unicode text"
)


def load_checked(text: str | None, body: bytes, *, parse_constant: Any) -> Any:
    """Decode the UTF-8 JSON `body`, refusing text the service cannot hold.

    `text` is the body decoded, or None: it is then decoded only if the standard library's
    decoder is needed (the body must be valid UTF-8).

    Raises `json.JSONDecodeError` for invalid JSON and `UnusableValue` naming the first string
    (or key) with a lone surrogate. A number no double holds is decoded as an infinite one
    (`decode_number`, `decode_integer`). The common case is decoded by msgspec (about twice as
    fast as the standard library), its float literals through `decode_float` (exact decimals);
    a body it refuses, or one holding a run of more digits than a double holds (a number's or
    a string's), is decoded again here, so every refusal reads as before and every number is
    decoded alike.
    """
    value = _decode_fast(body)
    if value is not _CAREFUL:
        return value
    value = json.loads(
        body.decode("utf-8") if text is None else text,
        parse_int=decode_integer,
        parse_float=decode_number,
        parse_constant=parse_constant,
    )
    if _SURROGATE_ESCAPE.search(body):
        path = find_path(value, _has_lone_surrogate)
        if path is not None:
            raise UnusableValue(path, SURROGATE_PROBLEM)
    return value


def decode_number(literal: str) -> float:
    """`decode_float`, but a literal past the largest double is a plain infinite float.

    Not a `DecimalLiteral`: an infinity must never be read back as the finite decimal written.
    """
    number = decode_float(literal)
    return math.copysign(math.inf, number) if math.isinf(number) else number


def decode_integer(literal: str) -> int | float:
    """An integer literal as an int, or an infinite float when no double holds it."""
    if len(literal) - literal.startswith("-") > MAX_INTEGER_DIGITS:
        return -math.inf if literal.startswith("-") else math.inf
    return int(literal)


_CAREFUL = object()  # the body needs the standard library's decoder and its messages
# A run of more digits than any double holds, found in C in linear time: every digit becomes
# "0", so the run shows as that many zeros (a regex of {309} digits backtracks on long runs).
_EVERY_DIGIT_TO_ZERO = bytes.maketrans(b"0123456789", b"0" * 10)
_TOO_MANY_DIGITS = b"0" * (MAX_INTEGER_DIGITS + 1)
# Such a run covers at least 309 // 30 = 10 consecutive bytes of every 30th: a body whose every
# 30th byte holds no 10 digits in a row holds no such run, which 1/30 of the bytes tell.
_SAMPLE_STRIDE = 30
_SAMPLED_RUN = b"0" * ((MAX_INTEGER_DIGITS + 1) // _SAMPLE_STRIDE)


class _OutOfRangeFloat(ValueError):
    """A float literal past the largest double, which the lab lane's decoding refuses."""


def float_or_refuse(literal: str) -> float:
    """`decode_float`, refusing a literal past the largest double (the lab lane then declines)."""
    number = decode_float(literal)
    if math.isinf(number):
        raise _OutOfRangeFloat(literal[:20])
    return number


_FAST_DECODER = msgspec.json.Decoder(float_hook=decode_number)


def _decode_fast(body: bytes) -> Any:
    """Return the decoded body, or `_CAREFUL` when the careful decoder must see it.

    msgspec refuses lone surrogates, NaN and Infinity itself; an integer of more digits than
    any double holds (which msgspec would give as an int, or refuse past 4,300 digits) is
    found on the raw bytes (in C) before decoding.
    """
    if has_too_many_digits(body):
        return _CAREFUL
    try:
        return _FAST_DECODER.decode(body)
    except msgspec.DecodeError:
        return _CAREFUL


def has_too_many_digits(body: bytes) -> bool:
    """Return True when `body` holds a run of more digits than any double holds."""
    return _SAMPLED_RUN in body[::_SAMPLE_STRIDE].translate(_EVERY_DIGIT_TO_ZERO) and (
        _TOO_MANY_DIGITS in body.translate(_EVERY_DIGIT_TO_ZERO)
    )


def _has_lone_surrogate(item: Any) -> bool:
    if not isinstance(item, str):
        return False
    try:
        item.encode("utf-8")
    except UnicodeEncodeError:
        return True  # the JSON decoder joins valid pairs, so any surrogate left is lone
    return False


def find_path(value: Any, matches: Callable[[Any], bool]) -> str | None:
    """Return the dotted path of the first value (or object key) in `value` that `matches`.

    Paths read like the service's other errors: `prefetch.labs.entry[3].resource.id`; the
    top level is `request body`. Iterative, so any depth the decoder accepted is safe.
    """
    pending: list[tuple[Any, str]] = [(value, "")]
    while pending:
        item, path = pending.pop()
        if matches(item):
            return path or "request body"
        if isinstance(item, dict):
            for key, child in item.items():
                child_path = f"{path}.{printable(key)}" if path else printable(key)
                if matches(key):
                    return child_path
                pending.append((child, child_path))
        elif isinstance(item, list):
            pending.extend((child, f"{path}[{index}]") for index, child in enumerate(item))
    return None


def printable(text: str, limit: int = 60) -> str:
    """Return client text safe to quote in an error: printable, encodable and short."""
    cleaned = "".join(
        char if char.isprintable() and not "\ud800" <= char <= "\udfff" else "?" for char in text
    )
    return shorten(cleaned, limit)
