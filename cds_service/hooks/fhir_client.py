"""Fetch what the prefetch lacks from the EHR's FHIR server, within one time budget.

CDS Hooks 2.0.1 § Prefetch and § FHIR Resource Access: the service queries `fhirServer` with the
`fhirAuthorization` bearer token when the prefetch is incomplete. Keys are fetched concurrently;
every page and retry counts against one deadline per hook call, and the calling thread never
waits past it. The token goes only to `fhirServer`'s origin: redirects are not followed and
`next` links to other origins are not either.
"""

from __future__ import annotations

import dataclasses
import email.utils
import json
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3.exceptions

from cds_service.errors import (
    FhirFetchError,
    FhirResponseInvalid,
    FhirServerNotAllowed,
    FhirServerStatus,
    FhirServerTimeout,
    FhirServerUnreachable,
)
from cds_service.hooks.json_limits import decode_integer, decode_number
from cds_service.hooks.prefetch import FetchedKey, KeyPlan, same_origin
from cds_service.hooks.request import next_link
from cds_service.outbound_http import outbound_session
from cds_service.settings import Settings
from fhir_mappings import FhirMappingError, read_resources

FHIR_JSON = "application/fhir+json"
_CHUNK_BYTES = 64 * 1024


def build_session(settings: Settings) -> requests.Session:
    """Return a pooled session for FHIR servers; built once per app by the factory."""
    return outbound_session(pool_size=settings.fhir_max_connections, accept=FHIR_JSON)


class FhirClient:
    """Fetches prefetch keys from one hook call's FHIR server, concurrently, under a deadline."""

    def __init__(
        self,
        session: requests.Session,
        settings: Settings,
        *,
        executor: ThreadPoolExecutor | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        observe: Callable[[str, float, bool], None] | None = None,
    ) -> None:
        self._session = session
        self._settings = settings
        self._executor = executor or ThreadPoolExecutor(
            max_workers=settings.fhir_max_connections, thread_name_prefix="fhir-fetch"
        )
        self._monotonic = monotonic
        self._sleep = sleep
        self._observe = observe  # (key, seconds, failed) for metrics

    def check_server(self, base_url: str) -> None:
        """Raise FhirServerNotAllowed unless `base_url` may receive the EHR's token."""
        parts = urlsplit(base_url)
        if parts.scheme == "http" and not self._settings.allow_http_fhir_server:
            raise FhirServerNotAllowed(
                "fhirServer must use https (plain http needs "
                f"{Settings.variable('allow_http_fhir_server')}=true)"
            )
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise FhirServerNotAllowed("fhirServer is not an http(s) URL")
        allowlist = self._settings.fhir_server_allowlist
        if allowlist and base_url.rstrip("/") not in allowlist:
            raise FhirServerNotAllowed(
                f"fhirServer is not in {Settings.variable('fhir_server_allowlist')}"
            )

    def fetch(
        self, plans: Sequence[KeyPlan], *, base_url: str, token: str | None
    ) -> dict[str, FetchedKey]:
        """Fetch every plan concurrently; a key not done by the deadline is a failure."""
        deadline = self._monotonic() + self._settings.fhir_deadline_seconds
        futures: dict[str, Future[FetchedKey]] = {
            plan.key: self._executor.submit(self._fetch_key, plan, base_url, token, deadline)
            for plan in plans
        }
        wait(futures.values(), timeout=max(0.0, deadline - self._monotonic()))
        results: dict[str, FetchedKey] = {}
        for key, future in futures.items():
            if future.done():
                results[key] = future.result()
            else:
                # The worker gives up at its own timeout; this thread does not wait for it.
                future.cancel()
                results[key] = FetchedKey(
                    failure="no answer from the FHIR server within "
                    f"{self._settings.fhir_deadline_seconds:g} s",
                    seconds=self._settings.fhir_deadline_seconds,
                )
            if self._observe is not None:
                self._observe(key, results[key].seconds, results[key].failure is not None)
        return results

    def _fetch_key(
        self, plan: KeyPlan, base_url: str, token: str | None, deadline: float
    ) -> FetchedKey:
        started = self._monotonic()
        try:
            fetched = self._fetch_pages(plan, base_url, token, deadline)
        except FhirFetchError as error:
            fetched = FetchedKey(failure=str(error))
        return dataclasses.replace(fetched, seconds=self._monotonic() - started)

    def _fetch_pages(
        self, plan: KeyPlan, base_url: str, token: str | None, deadline: float
    ) -> FetchedKey:
        assert plan.url is not None
        limits = self._settings
        items = list(plan.items)
        notes: list[str] = []
        url: str | None = _absolute(plan.url, base_url)
        expected = _expected_type(plan.url)
        pages = 1 if plan.items else 0  # a prefetched first page counts
        while url is not None:
            if pages >= limits.fhir_max_pages:
                notes.append(
                    f"stopped after {limits.fhir_max_pages} pages "
                    f"({Settings.variable('fhir_max_pages')})"
                )
                break
            if not same_origin(url, base_url):
                notes.append("a next link to another server was not followed")
                break
            body = self._get_json(url, token, deadline)
            if body.get("resourceType") != expected:
                raise FhirResponseInvalid(
                    f"the FHIR server answered with {_type_name(body)}, not a {expected}"
                )
            try:
                items.extend(read_resources(body, f"fhirServer.{plan.key}.page[{pages}]"))
            except FhirMappingError as error:
                raise FhirResponseInvalid(
                    f"the FHIR server's answer is not valid: {error}"
                ) from None
            pages += 1
            if len(items) > limits.fhir_max_resources:
                del items[limits.fhir_max_resources :]
                notes.append(
                    f"stopped at {limits.fhir_max_resources} resources "
                    f"({Settings.variable('fhir_max_resources')})"
                )
                break
            url = next_link(body) if expected == "Bundle" else None
        return FetchedKey(items=tuple(items), notes=tuple(notes))

    def _get_json(self, url: str, token: str | None, deadline: float) -> dict[str, Any]:
        """GET one URL with retries on connection failures and 502/503/504, never past deadline."""
        attempt = 0
        while True:
            try:
                return self._get_once(url, token, deadline)
            except FhirFetchError as error:
                delay = _retry_delay(error, attempt, self._settings.fhir_backoff_seconds)
                if (
                    not error.retryable
                    or attempt >= self._settings.fhir_max_retries
                    or self._monotonic() + delay >= deadline
                ):
                    raise
            self._sleep(delay)
            attempt += 1

    def _get_once(self, url: str, token: str | None, deadline: float) -> dict[str, Any]:
        remaining = deadline - self._monotonic()
        if remaining <= 0:
            raise FhirServerTimeout(
                f"the FHIR budget of {self._settings.fhir_deadline_seconds:g} s was used up"
            )
        timeout = (
            min(self._settings.fhir_connect_timeout_seconds, remaining),
            min(self._settings.fhir_read_timeout_seconds, remaining),
        )
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            response = self._session.get(
                url, headers=headers, timeout=timeout, stream=True, allow_redirects=False
            )
            try:
                _check_status(response)
                content = self._read_limited(response, deadline)
            finally:
                response.close()
        except requests.RequestException as error:
            raise map_requests_error(error) from None
        try:
            # Numbers as in request bodies: one no double holds is an infinite one, so a
            # result holding it is unusable (a card says so) rather than a failed fetch.
            body = json.loads(content, parse_int=decode_integer, parse_float=decode_number)
        except (ValueError, RecursionError):
            raise FhirResponseInvalid("the FHIR server's answer is not JSON") from None
        if not isinstance(body, dict):
            raise FhirResponseInvalid("the FHIR server's answer is not a JSON object")
        return body

    def _read_limited(self, response: requests.Response, deadline: float) -> bytes:
        limit = self._settings.fhir_max_response_bytes
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit:
            raise FhirResponseInvalid(f"the FHIR server's answer is larger than {limit} bytes")
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_content(chunk_size=_CHUNK_BYTES):
            size += len(chunk)
            if size > limit:
                raise FhirResponseInvalid(f"the FHIR server's answer is larger than {limit} bytes")
            if self._monotonic() > deadline:
                raise FhirServerTimeout(
                    "the FHIR server was still sending after "
                    f"{self._settings.fhir_deadline_seconds:g} s"
                )
            chunks.append(chunk)
        return b"".join(chunks)


def _check_status(response: requests.Response) -> None:
    status = response.status_code
    if status == 200:
        return
    reason = {
        401: "the EHR's access token was refused (401)",
        403: "the EHR's access token does not allow this query (403)",
        404: "the FHIR server does not know this resource or query (404)",
        429: "the FHIR server is rate limiting (429)",
    }.get(status)
    if reason is None:
        if 300 <= status < 400:
            reason = f"the FHIR server redirected ({status}); redirects are not followed"
        elif status >= 500:
            reason = f"the FHIR server failed ({status})"
        else:
            reason = f"the FHIR server refused the query ({status})"
    raise FhirServerStatus(
        reason, status=status, retry_after=_retry_after(response.headers.get("Retry-After"))
    )


def _retry_after(value: str | None) -> float | None:
    """Return the delay a Retry-After header asks for, in seconds (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())


def _retry_delay(error: FhirFetchError, attempt: int, backoff: float) -> float:
    if isinstance(error, FhirServerStatus) and error.retry_after is not None:
        return error.retry_after
    return backoff * 2.0**attempt


def _absolute(url: str, base_url: str) -> str:
    if urlsplit(url).scheme:
        return url
    return f"{base_url.rstrip('/')}/{url.lstrip('/')}"


def _expected_type(template_url: str) -> str:
    """Return the resource type a query returns: a Bundle for searches, else the type read."""
    path = urlsplit(template_url).path
    if "?" in template_url or urlsplit(template_url).scheme:
        return "Bundle"
    segments = [segment for segment in path.split("/") if segment]
    return segments[-2] if len(segments) >= 2 else "Bundle"


def _type_name(body: Mapping[str, Any]) -> str:
    kind = body.get("resourceType")
    return f"a {kind}" if isinstance(kind, str) and kind.isalnum() else "something else"


def _connection_error(error: requests.RequestException) -> FhirFetchError:
    # urllib3 read timeouts while streaming the body surface as ConnectionError.
    cause = error.args[0] if error.args else None
    if isinstance(cause, urllib3.exceptions.ReadTimeoutError):
        return FhirServerTimeout("the FHIR server stopped sending within the read timeout")
    return FhirServerUnreachable("could not connect to the FHIR server")


def _tls_error(_: requests.RequestException) -> FhirFetchError:
    error = FhirServerUnreachable("TLS with the FHIR server failed (certificate or protocol)")
    error.retryable = False
    return error


# Most specific first; a test proves every subclass of RequestException is matched before the
# generic last row, so no requests failure escapes as an unexpected error.
_REQUESTS_ERRORS: tuple[
    tuple[type[requests.RequestException], Callable[[requests.RequestException], FhirFetchError]],
    ...,
] = (
    (
        requests.exceptions.ConnectTimeout,
        lambda _: FhirServerUnreachable(
            "could not connect to the FHIR server within the connect timeout"
        ),
    ),
    (
        requests.exceptions.ReadTimeout,
        lambda _: FhirServerTimeout("the FHIR server did not answer within the read timeout"),
    ),
    (requests.exceptions.Timeout, lambda _: FhirServerTimeout("the FHIR server timed out")),
    (requests.exceptions.SSLError, _tls_error),
    (requests.exceptions.ProxyError, lambda _: FhirServerUnreachable("a proxy error occurred")),
    (requests.exceptions.ConnectionError, _connection_error),
    (
        requests.exceptions.TooManyRedirects,
        lambda _: FhirResponseInvalid("the FHIR server redirected too often"),
    ),
    (
        requests.exceptions.InvalidJSONError,
        lambda _: FhirResponseInvalid("the FHIR server's answer is not JSON"),
    ),
    (
        requests.exceptions.ChunkedEncodingError,
        lambda _: FhirResponseInvalid("the FHIR server's answer was cut off"),
    ),
    (
        requests.exceptions.ContentDecodingError,
        lambda _: FhirResponseInvalid("the FHIR server's answer could not be decompressed"),
    ),
    (
        requests.exceptions.StreamConsumedError,
        lambda _: FhirResponseInvalid("the FHIR server's answer could not be read"),
    ),
    (
        requests.exceptions.RetryError,
        lambda _: FhirServerUnreachable("the FHIR server could not be reached after retries"),
    ),
    (
        requests.exceptions.UnrewindableBodyError,
        lambda _: FhirResponseInvalid("the request to the FHIR server could not be repeated"),
    ),
    (
        requests.exceptions.InvalidHeader,
        lambda _: FhirResponseInvalid("the request to the FHIR server has an invalid header"),
    ),
    (
        requests.exceptions.InvalidProxyURL,
        lambda _: FhirServerNotAllowed("the proxy URL is not valid"),
    ),
    (
        requests.exceptions.MissingSchema,
        lambda _: FhirServerNotAllowed("a FHIR server URL has no scheme"),
    ),
    (
        requests.exceptions.InvalidSchema,
        lambda _: FhirServerNotAllowed("a FHIR server URL has an unsupported scheme"),
    ),
    (
        requests.exceptions.InvalidURL,
        lambda _: FhirServerNotAllowed("a FHIR server URL is not valid"),
    ),
    (
        requests.exceptions.URLRequired,
        lambda _: FhirServerNotAllowed("a FHIR server URL is missing"),
    ),
    (
        requests.exceptions.HTTPError,
        lambda _: FhirResponseInvalid("the FHIR server answered with an HTTP error"),
    ),
    (
        requests.RequestException,
        lambda _: FhirServerUnreachable("the request to the FHIR server failed"),
    ),
)


def map_requests_error(error: requests.RequestException) -> FhirFetchError:
    """Return the service's own error for any `requests` failure."""
    for kind, make in _REQUESTS_ERRORS:
        if isinstance(error, kind):
            return make(error)
    raise AssertionError("unreachable: RequestException is the last row")  # pragma: no cover
