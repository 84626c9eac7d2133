"""Live option chains from Deribit's public REST API v2.

Four public calls make one chain (no authentication):

* ``public/get_book_summary_by_currency?kind=option`` -- the quotes,
* ``public/get_book_summary_by_currency?kind=future`` -- futures marks,
* ``public/get_instruments?kind=option`` -- exact expiry timestamps,
* ``public/get_index_price`` -- the index.

Each call has a timeout and is retried with exponential backoff (``backoff x 2**i``
seconds) after a timeout, a transport error, HTTP 5xx, HTTP 429 or Deribit's
rate-limit error (code 10028); on 429 a ``Retry-After`` header is respected. When the
retries are used up a :class:`~volcal.errors.FetchError` says which call failed and
why. The raw answers are kept as one JSON document (``format: volcal.deribit-raw``)
that :func:`volcal.read_chain` reads back to the same chain.

``httpx`` is imported only when a fetch runs.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from volcal.errors import FetchError
from volcal.feeds.deribit_json import DOC_FORMAT, DOC_VERSION, read_json_doc
from volcal.market.chain import OptionChain

if TYPE_CHECKING:  # pragma: no cover
    import httpx

BASE_URL = "https://www.deribit.com/api/v2"
DEFAULT_TIMEOUT = 10.0
DEFAULT_RETRIES = 3
DEFAULT_BACKOFF = 0.5
#: Deribit JSON-RPC error code for "too_many_requests".
RATE_LIMIT_CODE = 10028


def _make_client(timeout: float) -> httpx.Client:
    from volcal.feeds._http import make_client

    return make_client(timeout)


def _check(what: str) -> Callable[[Any, int, str], str | None]:
    """Deribit's JSON-RPC envelope: rate-limit code 10028 retries, errors raise."""

    def check(body: Any, status: int, reason: str) -> str | None:
        err = body.get("error") if isinstance(body, dict) else None
        if isinstance(err, dict) and err.get("code") == RATE_LIMIT_CODE:
            return "Deribit rate limit (10028 too_many_requests)"
        if err is not None or status >= 400:
            msg = err.get("message") if isinstance(err, dict) else reason
            raise FetchError(f"deribit {what}: HTTP {status}, {msg}")
        if not isinstance(body, dict) or "result" not in body:
            raise FetchError(f"deribit {what}: response has no 'result'")
        return None

    return check


def _get(
    client: httpx.Client,
    url: str,
    params: dict[str, Any],
    *,
    what: str,
    timeout: float,
    retries: int,
    backoff: float,
    sleep: Callable[[float], None],
) -> dict[str, Any]:
    """GET one JSON-RPC method with retries (the shared client of every venue)."""
    from volcal.feeds._http import get_json

    body: dict[str, Any] = get_json(
        client,
        url,
        params,
        venue="deribit",
        what=what,
        check=_check(what),
        timeout=timeout,
        retries=retries,
        backoff=backoff,
        sleep=sleep,
    )
    return body


def fetch_raw(
    currency: str = "BTC",
    *,
    client: httpx.Client | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    retries: int = DEFAULT_RETRIES,
    backoff: float = DEFAULT_BACKOFF,
    base_url: str = BASE_URL,
    progress: Callable[[str], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Fetch the raw answers for one currency as a ``volcal.deribit-raw`` document.

    Parameters are those of :func:`fetch_chain`. The document is JSON-serialisable
    and holds the untouched JSON-RPC envelopes under ``responses``.
    """
    cur = str(currency).upper()
    own = client is None
    cl = _make_client(timeout) if client is None else client
    calls = {
        "index": ("public/get_index_price", {"index_name": f"{cur.lower()}_usd"}),
        "instruments": (
            "public/get_instruments",
            {"currency": cur, "kind": "option", "expired": "false"},
        ),
        "options": ("public/get_book_summary_by_currency", {"currency": cur, "kind": "option"}),
        "futures": ("public/get_book_summary_by_currency", {"currency": cur, "kind": "future"}),
    }
    responses: dict[str, Any] = {}
    try:
        for key, (method, params) in calls.items():
            if progress is not None:
                progress(f"{method} {params.get('kind', params.get('index_name', ''))}")
            responses[key] = _get(
                cl,
                f"{base_url.rstrip('/')}/{method}",
                params,
                what=f"{method}({', '.join(f'{k}={v}' for k, v in params.items())})",
                timeout=timeout,
                retries=retries,
                backoff=backoff,
                sleep=sleep,
            )
    finally:
        if own:
            cl.close()
    return {
        "format": DOC_FORMAT,
        "version": DOC_VERSION,
        "currency": cur,
        "fetched_at": pd.Timestamp.now(tz="UTC").isoformat(),
        "base_url": base_url,
        "responses": responses,
    }


def fetch_chain(
    currency: str = "BTC",
    *,
    client: httpx.Client | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    retries: int = DEFAULT_RETRIES,
    backoff: float = DEFAULT_BACKOFF,
    base_url: str = BASE_URL,
    save: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> OptionChain:
    """Fetch the live option chain of ``currency`` from Deribit.

    Parameters
    ----------
    currency : str
        ``"BTC"``, ``"ETH"``...
    client : httpx.Client, optional
        Client to use (e.g. with a mock transport); a new one is made and closed
        otherwise.
    timeout : float
        Seconds per request.
    retries : int
        Extra attempts per request; waits ``backoff x 2**attempt`` seconds between
        them (or ``Retry-After`` on HTTP 429, at most 60 s).
    base_url : str
        API root (``https://test.deribit.com/api/v2`` for the test venue).
    save : path, optional
        Write the raw answers as one JSON document there (readable by
        :func:`volcal.read_chain`).
    progress : callable, optional
        Called with a short text before each request (the CLI shows it).
    sleep : callable
        Used to wait between attempts (tests pass a recorder).

    Returns
    -------
    OptionChain
        As :func:`volcal.read_chain` gives it for the saved document.

    Raises
    ------
    FetchError
        A request still failing after the retries, an error answer, malformed JSON.

    Examples
    --------
    >>> chain = fetch_chain("BTC", save="btc.json")          # doctest: +SKIP
    >>> chain == volcal.read_chain("btc.json")              # doctest: +SKIP
    """
    if retries < 0 or timeout <= 0:
        raise FetchError(f"need retries >= 0 and timeout > 0, got {retries}, {timeout}")
    doc = fetch_raw(
        currency,
        client=client,
        timeout=timeout,
        retries=retries,
        backoff=backoff,
        base_url=base_url,
        progress=progress,
        sleep=sleep,
    )
    if save is not None:
        Path(save).write_text(json.dumps(doc, allow_nan=False), encoding="utf-8")
    where = Path(save).name if save is not None else f"deribit {doc['currency']} (live)"
    return read_json_doc(doc, where, None, doc["currency"], None, None)


__all__ = ["BASE_URL", "RATE_LIMIT_CODE", "fetch_chain", "fetch_raw"]
