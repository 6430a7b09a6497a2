"""JSON responses: compact, UTF-8, never a null or an empty optional field."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from flask import Response


def json_response(
    body: Mapping[str, Any], *, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """Return `body` as a JSON response with `status`."""
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    response = Response(text, status=status, mimetype="application/json")
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response
