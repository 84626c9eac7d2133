"""One HTTP client and one retrying GET for every venue's public REST API.

Deribit, OKX, Bybit and Binance fetchers all go through :func:`make_client` and
:func:`get_json`: a timeout per request, exponential backoff (``backoff x 2**i`` seconds)
after a timeout, a transport error, HTTP 5xx or HTTP 429 (``Retry-After`` respected, at
most 60 s), and a venue-specific ``check`` of the JSON body that may ask for a retry
(a rate-limit code inside a 200 answer) or raise. When the retries are used up a
:class:`~volcal.errors.FetchError` names the venue, the call and the last failure.

``httpx`` is imported only when a fetch runs.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from volcal.errors import FetchError

if TYPE_CHECKING:  # pragma: no cover
    import httpx

MAX_RETRY_AFTER = 60.0

#: ``check(body, status_code, reason) -> None`` (accept), a string (retry, with that
#: reason) or raise :class:`FetchError`.
BodyCheck = Callable[[Any, int, str], "str | None"]


def make_client(timeout: float) -> httpx.Client:
    """The shared ``httpx.Client`` settings (timeout, User-Agent)."""
    import httpx

    return httpx.Client(timeout=timeout, headers={"User-Agent": "volcal"})


def retry_after(resp: httpx.Response) -> float | None:
    """Seconds of a ``Retry-After`` header (capped), or ``None``."""
    val = resp.headers.get("Retry-After")
    if val is None:
        return None
    try:
        return min(max(float(val), 0.0), MAX_RETRY_AFTER)
    except ValueError:
        return None


def get_json(
    client: httpx.Client,
    url: str,
    params: dict[str, Any],
    *,
    venue: str,
    what: str,
    check: BodyCheck,
    timeout: float,
    retries: int,
    backoff: float,
    sleep: Callable[[float], None],
) -> Any:
    """GET ``url`` with retries; returns the parsed JSON body ``check`` accepted."""
    import httpx

    last = "no attempt"
    for attempt in range(retries + 1):
        wait = backoff * 2.0**attempt
        try:
            resp = client.get(url, params=params, timeout=timeout)
        except httpx.TimeoutException:
            last = f"timed out after {timeout:g} s"
        except httpx.TransportError as exc:
            last = f"connection failed ({type(exc).__name__}: {exc})"
        else:
            if resp.status_code == 429:
                last = "HTTP 429 too many requests"
                ra = retry_after(resp)
                wait = ra if ra is not None else wait
            elif resp.status_code >= 500:
                last = f"HTTP {resp.status_code}"
            else:
                try:
                    body = resp.json()
                except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                    raise FetchError(f"{venue} {what}: malformed JSON in response ({exc})") from exc
                verdict = check(body, resp.status_code, resp.reason_phrase)
                if verdict is None:
                    return body
                last = verdict
        if attempt < retries:
            sleep(wait)
    raise FetchError(f"{venue} {what}: {last} (gave up after {retries + 1} attempts)")


def fetch_responses(
    venue: str,
    calls: dict[str, tuple[str, dict[str, Any]]],
    *,
    check: Callable[[str], BodyCheck],
    client: httpx.Client | None,
    base_url: str,
    timeout: float,
    retries: int,
    backoff: float,
    progress: Callable[[str], None] | None,
    sleep: Callable[[float], None],
) -> dict[str, Any]:
    """Run ``calls`` (key -> (path, params)) on one client; the raw bodies by key."""
    if retries < 0 or timeout <= 0:
        raise FetchError(f"need retries >= 0 and timeout > 0, got {retries}, {timeout}")
    own = client is None
    cl = make_client(timeout) if client is None else client
    out: dict[str, Any] = {}
    try:
        for key, (path, params) in calls.items():
            what = f"{path}?{'&'.join(f'{k}={v}' for k, v in params.items())}"
            if progress is not None:
                progress(what)
            out[key] = get_json(
                cl,
                f"{base_url.rstrip('/')}{path}",
                params,
                venue=venue,
                what=what,
                check=check(what),
                timeout=timeout,
                retries=retries,
                backoff=backoff,
                sleep=sleep,
            )
    finally:
        if own:
            cl.close()
    return out


__all__ = ["BodyCheck", "fetch_responses", "get_json", "make_client", "retry_after"]
