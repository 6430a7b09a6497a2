"""FHIR decimals read exactly: a JSON number is compared as the decimal it was written as.

FHIR R4 §2.24.0.1 (decimal): "the precision of the decimal value has significance". The
request's numbers are decoded as Python floats, which hold any decimal of up to 15 significant
digits exactly enough that `repr` gives it back; a longer literal is kept beside its float as a
`DecimalLiteral`, so `exact_decimal` returns the number as written either way, and threshold
comparisons (`≥ 3× ULN`) never depend on binary rounding.
"""

from __future__ import annotations

import math
import sys
from decimal import Decimal

__all__ = ["LARGEST_DOUBLE", "DecimalLiteral", "as_double", "exact_decimal"]

# A JSON integer beyond it (plain `json.loads` gives one of any length) is no double.
LARGEST_DOUBLE = sys.float_info.max


class DecimalLiteral(float):
    """A float that remembers the JSON literal it was decoded from (more than 15 digits)."""

    literal: str

    def __new__(cls, literal: str) -> DecimalLiteral:
        """Return the float of `literal`, keeping the literal."""
        number = super().__new__(cls, literal)
        number.literal = literal
        return number


def exact_decimal(number: float) -> Decimal:
    """Return the number as the decimal it was written as (its literal, else its shortest repr)."""
    literal = getattr(number, "literal", None)
    return Decimal(literal if literal is not None else repr(float(number)))


def decode_float(literal: str) -> float:
    """Return the float of a JSON number literal, a `DecimalLiteral` when a float loses digits."""
    number = float(literal)
    if len(literal) <= 16 or Decimal(repr(number)) == Decimal(literal):
        return number  # at most 15 significant digits: `repr` gives the decimal back
    return DecimalLiteral(literal)


def as_double(number: int | float) -> float:
    """Return a JSON number as a double; an integer no double holds gives an infinity of its sign.

    `float()` would raise for such an integer, which plain `json.loads` gives as an int: the
    infinity is read as no finite number, as any other value outside a double's range.
    """
    if isinstance(number, float):
        return number
    try:
        return float(number)
    except OverflowError:
        return math.inf if number > 0 else -math.inf
