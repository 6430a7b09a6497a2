"""CORS for browser-based CDS clients, preflight answers and protective response headers.

CDS Hooks 2.0.1 § Cross-Origin Resource Sharing requires CORS and defers to the OWASP HTML5
Security Cheat Sheet: allowed origins are a list (`MIPOMERSEN_CDS_CORS_ORIGINS`; `*` by default,
which is safe here because callers authenticate with a JWT in the `Authorization` header, never
with cookies, so no credentials mode is ever allowed). A preflight (`OPTIONS`) is answered before
authentication, since browsers never send `Authorization` on it. Every response, errors included,
is marked uncacheable and not to be sniffed: bodies are patient-specific guidance.
"""

from __future__ import annotations

from flask import Flask, Response, request

from cds_service.settings import Settings

__all__ = ["PREFLIGHT_MAX_AGE_SECONDS", "SECURITY_HEADERS", "install_http_hardening"]

PREFLIGHT_MAX_AGE_SECONDS = 600
ALLOWED_REQUEST_HEADERS = "Authorization, Content-Type"
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    # A JSON API never needs to load anything or be framed (OWASP REST Security Cheat Sheet).
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
}
_CSP = "content-security-policy"


def install_http_hardening(app: Flask, settings: Settings) -> None:
    """Answer preflights and add CORS and security headers to every response of `app`."""
    origins = frozenset(settings.cors_origins)
    app.before_request(_answer_options)
    app.after_request(lambda response: _add_headers(response, origins))


def _answer_options() -> Response | None:
    """Answer OPTIONS on a known path with 204 and `Allow` (CORS headers follow)."""
    if request.method != "OPTIONS" or request.url_rule is None:
        return None
    response = Response(status=204)
    del response.headers["Content-Type"]  # no content, no media type
    response.headers["Allow"] = ", ".join(sorted(request.url_rule.methods or ()))
    return response


def _add_headers(response: Response, origins: frozenset[str]) -> Response:
    # Looked up without `in headers` / `headers.get`: werkzeug answers a missing header by
    # raising and catching a KeyError, which most requests would pay twice.
    sets_own_policy = any(name.lower() == _CSP for name in response.headers.keys())
    for name, value in SECURITY_HEADERS.items():
        if name == "Content-Security-Policy" and sets_own_policy:
            continue  # a page (the playground) sets its own policy
        response.headers[name] = value
    any_origin = "*" in origins
    if not any_origin:
        response.vary.add("Origin")
    origin = request.environ.get("HTTP_ORIGIN")  # what request.headers.get("Origin") reads
    if origin is None or not (any_origin or origin.lower() in origins):
        return response
    response.headers["Access-Control-Allow-Origin"] = "*" if any_origin else origin
    response.headers["Access-Control-Expose-Headers"] = "WWW-Authenticate"
    allowed_methods = response.headers.get("Allow")
    is_preflight = (
        request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers
    )
    if is_preflight and allowed_methods:
        response.headers["Access-Control-Allow-Methods"] = allowed_methods
        response.headers["Access-Control-Allow-Headers"] = ALLOWED_REQUEST_HEADERS
        response.headers["Access-Control-Max-Age"] = str(PREFLIGHT_MAX_AGE_SECONDS)
    return response
