"""The one way the service reaches other servers: a pooled `requests.Session` that trusts nothing.

Both outbound callers use it: the FHIR client (the EHR's `fhirServer`) and the JWKS cache (a
trusted issuer's keys). Neither follows redirects (each request passes `allow_redirects=False`
and treats a 3xx as a failure), and the session ignores proxies, `.netrc` and CA bundles from
the environment, so nothing can add or redirect credentials behind the service's back.
"""

from __future__ import annotations

import requests
from requests.adapters import HTTPAdapter


def outbound_session(*, pool_size: int, accept: str) -> requests.Session:
    """Return a pooled session sending `Accept: accept`; the caller owns retries and timeouts."""
    session = requests.Session()
    session.trust_env = False
    adapter = HTTPAdapter(
        pool_connections=pool_size,
        pool_maxsize=pool_size,
        max_retries=0,  # retries are the caller's, bounded by its own deadline
    )
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers.update({"Accept": accept})
    return session
