"""``read_chain``: one entry point for every supported chain format.

The format is detected from the content (the CSV header, the JSON structure, the
Parquet magic bytes), not from the file name. Errors are one-line
:class:`~volcal.errors.DataError` messages that name the file and what is wrong.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

from volcal._io import read_bytes
from volcal.errors import DataError
from volcal.feeds._common import fail, source_name
from volcal.feeds.csv_formats import CSV_LAYOUTS, CSV_READERS, read_svcj_snapshot_text
from volcal.feeds.frame import FRAME_REQUIRED, read_frame, to_pandas
from volcal.market.chain import OptionChain, Settlement

if TYPE_CHECKING:
    import pandas as pd


def _layout_scores(
    columns: list[str],
) -> tuple[set[str], dict[str, tuple[str, ...]], dict[str, float]]:
    cols = {c.strip() for c in columns}
    layouts: dict[str, tuple[str, ...]] = {**CSV_LAYOUTS, "quote-table": FRAME_REQUIRED}
    score = {k: len(set(req) & cols) / len(req) for k, req in layouts.items()}
    return cols, layouts, score


def looks_like_chain_csv(columns: list[str]) -> bool:
    """Whether a CSV header is one of the chain layouts, complete or damaged (at least
    half of a layout's columns): what :func:`detect_csv_layout` does not call an
    unknown format. Folder searches use it to pass over other tables (futures marks,
    file indexes) kept next to the snapshots."""
    return max(_layout_scores(columns)[2].values()) >= 0.5


def detect_csv_layout(columns: list[str], where: str) -> str:
    """The CSV layout whose columns are all present (``"quote-table"`` for generic).

    When no layout is complete, the closest one (at least half its columns present)
    gives a "missing column(s)" error; otherwise the format is unknown.
    """
    cols, layouts, score = _layout_scores(columns)
    complete = [k for k, req in layouts.items() if set(req) <= cols]
    if complete:
        return max(complete, key=lambda k: len(layouts[k]))
    best = max(score, key=lambda k: score[k])
    if score[best] >= 0.5:
        miss = [c for c in layouts[best] if c not in cols]
        raise fail(where, f"{best} layout is missing column(s) {', '.join(map(repr, miss))}")
    head = ", ".join(list(cols)[:6])
    raise fail(where, f"unknown chain format (CSV columns: {head}...)")


def _read_csv_text(text: str, where: str) -> pd.DataFrame:
    import pandas as pd

    lines = text.splitlines()
    header = next(csv.reader([lines[0]]))
    last = next(csv.reader([lines[-1]])) if len(lines) > 1 else header
    if len(lines) > 1 and len(last) < len(header):
        raise fail(
            where,
            f"truncated file: last line has {len(last)} of {len(header)} fields",
        )
    try:
        return pd.read_csv(io.StringIO(text), low_memory=False)
    except (pd.errors.ParserError, ValueError) as exc:
        msg = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise fail(where, f"malformed CSV: {msg}") from exc


def _read_path(
    path: Path, currency: str | None, snapshot: Any, settlement: Settlement | None
) -> OptionChain:
    where = path.name
    raw = read_bytes(path)
    if raw[:4] == b"PAR1":
        import pandas as pd

        try:
            df = pd.read_parquet(io.BytesIO(raw))
        except Exception as exc:  # pyarrow raises several unrelated classes
            raise fail(where, f"unreadable Parquet file: {exc}") from exc
        return _read_table(df, where, currency, snapshot, settlement)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise fail(
            where, "not a text, JSON or Parquet file (plain, gzip or zstd compressed)"
        ) from exc
    body = text.strip()
    if not body:
        raise fail(where, "file is empty")
    if body[0] in "{[":
        from volcal.feeds.deribit_json import _load_json

        doc = _load_json(body, where)
        return read_json_any(doc, where, path, currency, snapshot, settlement)
    # a Deribit snapshot file as published: read without pandas (the same chain)
    chain = read_svcj_snapshot_text(body, where, currency, snapshot, settlement)
    if chain is not None:
        return chain
    df = _read_csv_text(body, where)
    return _read_table(df, where, currency, snapshot, settlement)


def read_json_any(
    doc: Any,
    where: str,
    path: Path | None,
    currency: str | None,
    snapshot: Any,
    settlement: Settlement | None,
) -> OptionChain:
    """Dispatch a parsed JSON document: OKX, Bybit, Binance, quantflow, else Deribit."""
    from volcal.feeds import binance, bybit, okx, quantflow

    if okx.classify(doc) is not None:
        return okx.read_okx(doc, where, currency, snapshot, settlement)
    if bybit.classify(doc) is not None:
        return bybit.read_bybit(doc, where, currency, snapshot, settlement)
    if binance.classify(doc) is not None:
        return binance.read_binance(doc, where, currency, snapshot, settlement)
    if quantflow.classify(doc):
        return quantflow.read_quantflow(doc, where, currency, snapshot, settlement)
    from volcal.feeds.deribit_json import read_json_doc

    return read_json_doc(doc, where, path, currency, snapshot, settlement)


def _read_table(
    df: pd.DataFrame, where: str, currency: str | None, snapshot: Any, settlement: Settlement | None
) -> OptionChain:
    from volcal.feeds.tardis import is_tardis, read_tardis

    if is_tardis([str(c) for c in df.columns]):
        if len(df) == 0:
            raise fail(where, "no option quotes (empty chain)")
        return read_tardis(df, where, currency, snapshot, settlement)
    layout = detect_csv_layout([str(c) for c in df.columns], where)
    if len(df) == 0:
        raise fail(where, "no option quotes (empty chain)")
    if layout == "quote-table":
        return read_frame(df, where, currency, snapshot, settlement)
    return CSV_READERS[layout](df, where, currency, snapshot, settlement)


def read_chain(
    source: Any,
    currency: str | None = None,
    *,
    snapshot: Any = None,
    settlement: Settlement | None = None,
) -> OptionChain:
    """Read an option chain from a file or a table; the format is found from content.

    Parameters
    ----------
    source : str, Path, pandas.DataFrame, polars.DataFrame or dict
        A chain file (Deribit snapshot/order-book/ticker CSVs, Deribit REST JSON, the
        fetcher's JSON document, a normalised surface snapshot JSON, OKX / Bybit /
        Binance REST answers or the fetchers' documents, a Tardis ``options_chain``
        CSV, a quantflow ``VolSurfaceInputs`` JSON, a generic quote CSV/Parquet), a
        quote table, or an already parsed JSON document.
    currency : str, optional
        Underlying to select (``"BTC"``, ``"ETH"``) when the source holds several;
        required then, otherwise optional (checked when given).
    snapshot : time-like, optional
        Which snapshot to take from a file that holds several (default: the latest,
        recorded in ``chain.meta["snapshot_choice"]``); the snapshot time of layouts
        that carry none; the reference time of a table with ``t``.
    settlement : {"inverse", "linear"}, optional
        Override the settlement a format implies (Deribit files are inverse; generic
        tables are linear).

    Returns
    -------
    OptionChain
        Every row of the source is kept; what a reader can see on one quote alone is
        flagged (``invalid``, ``expired``, ``missing_bid``, ``missing_ask``,
        ``zero_price``).

    Raises
    ------
    DataError
        Malformed or truncated file, missing columns, non-numeric cells, empty chain,
        several underlyings without ``currency=``, or an unknown format.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"strike": [100.0], "is_call": [True], "bid": [4.0],
    ...                    "ask": [4.2], "forward": 100.0, "t": 0.5})
    >>> len(read_chain(df))
    1
    """
    if settlement is not None and settlement not in ("inverse", "linear"):
        raise DataError(f"settlement must be 'inverse' or 'linear', got {settlement!r}")
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(2, "No such file", str(path))
        return _read_path(path, currency, snapshot, settlement)
    if isinstance(source, (dict, list)):
        return read_json_any(source, "JSON document", None, currency, snapshot, settlement)
    df = to_pandas(source)
    if df is None:
        raise DataError(f"cannot read a chain from {source_name(source)}")
    where = "DataFrame"
    if len(df) == 0:
        raise fail(where, "no option quotes (empty chain)")
    return _read_table(df, where, currency, snapshot, settlement)


__all__ = ["detect_csv_layout", "looks_like_chain_csv", "read_chain"]
