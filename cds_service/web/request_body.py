"""Read a request body whole, up to MIPOMERSEN_CDS_MAX_BODY_BYTES, however it was sent.

Werkzeug enforces the limit on `Content-Length`, but a chunked body (no `Content-Length`) is
cut at the limit and the rest silently ignored, so a truncated document would be parsed. Here
one byte more than the limit is read: if it arrives, the body is refused with 413 and nothing
of it is parsed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cds_service.errors import ContentTooLarge
from cds_service.settings import Settings

__all__ = ["read_body"]

_CHUNK_BYTES = 64 * 1024


def read_body(environ: Mapping[str, Any], *, limit: int) -> bytes:
    """Return the body of the WSGI request `environ`, or raise `ContentTooLarge` past `limit`."""
    declared = _content_length(environ)
    if declared is not None and declared > limit:
        raise _too_large(limit)
    if declared is None and not environ.get("wsgi.input_terminated"):
        return b""  # no length and a server that does not end the stream: nothing is safe
    stream = environ["wsgi.input"]
    wanted = limit + 1 if declared is None else declared
    chunks: list[bytes] = []
    received = 0
    # A declared length (at most `limit`) is asked for at once, as `request.get_data()` does;
    # without one, the stream is read in chunks until it ends or passes the limit.
    step = _CHUNK_BYTES if declared is None else declared
    while received < wanted:
        chunk = stream.read(min(step, wanted - received))
        if not chunk:
            break
        chunks.append(chunk)
        received += len(chunk)
    if received > limit:
        raise _too_large(limit)
    return b"".join(chunks)


def _content_length(environ: Mapping[str, Any]) -> int | None:
    value = environ.get("CONTENT_LENGTH")
    if not value:
        return None
    try:
        length = int(value)
    except ValueError:
        return None  # the server (gunicorn, werkzeug) refuses a malformed length first
    return max(length, 0)


def _too_large(limit: int) -> ContentTooLarge:
    return ContentTooLarge(
        f"request body is larger than this service accepts ({limit} bytes, "
        f"{Settings.variable('max_body_bytes')})"
    )
