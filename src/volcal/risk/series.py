"""Price and return series for VaR, backtests and risk-parameter calibration.

A :class:`PriceSeries` is a frozen, validated, regularly sampled price history (close
prices, an index such as DVOL, ...). Building one never uses bad rows silently: duplicate
timestamps, non-positive or non-finite prices, timestamps off the sampling grid and gaps
are counted in a :class:`SeriesReport` and handled explicitly (dropped rows, returns that
would span a gap excluded), or, with ``strict=True``, raised as :class:`DataError`.

Returns over a horizon ``h = k * freq`` are computed on the sampling grid only between two
observed points exactly ``k`` steps apart,

.. math:: r_t = \\ln(P_t / P_{t-h}),

so a return never silently spans a gap. ``read_prices`` reads the price histories in
``../shared/data/raw`` (Binance/Yahoo daily, Bitstamp with its URL banner, Binance hourly
with a UTC offset, DVOL files in descending order) and any plain ``time,price`` CSV.

Examples
--------
>>> import numpy as np
>>> t = np.arange("2024-01-01", "2024-01-06", dtype="datetime64[D]")
>>> s = PriceSeries.from_arrays(t, [100.0, 101.0, 99.0, 103.0, 104.0], name="demo")
>>> s.freq_label, len(s)
('1d', 5)
>>> r = s.returns("2d", overlapping=False)
>>> np.round(r.values, 6).tolist()
[-0.01005, 0.049271]
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from volcal._io import read_text
from volcal._typing import ArrayLike, DateArray, FloatArray
from volcal.errors import DataError, ParameterError

_NS = np.timedelta64(1, "ns")
_UNITS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_HORIZON_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|min|m|h|d|w)\s*$", re.IGNORECASE)


def parse_horizon(horizon: str | np.timedelta64 | Any) -> np.timedelta64:
    """Parse a horizon such as ``"1h"``, ``"4h"``, ``"1d"``, ``"2w"``, ``"30m"``.

    Parameters
    ----------
    horizon : str, numpy.timedelta64 or datetime.timedelta
        Units: ``s``, ``m``/``min``, ``h``, ``d``, ``w``.

    Returns
    -------
    numpy.timedelta64
        The horizon in seconds (``timedelta64[s]``), strictly positive.

    Examples
    --------
    >>> parse_horizon("36h") == np.timedelta64(36 * 3600, "s")
    np.True_
    """
    if isinstance(horizon, np.timedelta64):
        td = horizon.astype("timedelta64[s]")
    elif hasattr(horizon, "total_seconds"):
        td = np.timedelta64(round(horizon.total_seconds()), "s")
    elif isinstance(horizon, str):
        m = _HORIZON_RE.match(horizon)
        if m is None:
            raise ParameterError(
                f"horizon {horizon!r} is not understood: use e.g. '1h', '4h', '1d', '2w'"
            )
        seconds = float(m.group(1)) * _UNITS[m.group(2).lower()]
        if seconds != round(seconds):
            raise ParameterError(f"horizon {horizon!r} is not a whole number of seconds")
        td = np.timedelta64(round(seconds), "s")
    else:
        raise ParameterError(f"horizon {horizon!r} must be a string like '1d' or a timedelta")
    if td <= np.timedelta64(0, "s"):
        raise ParameterError(f"horizon {horizon!r} must be positive")
    return td


def format_timedelta(td: np.timedelta64) -> str:
    """Short label of a duration: ``86400 s -> '1d'``, ``3600 s -> '1h'``.

    Examples
    --------
    >>> format_timedelta(np.timedelta64(7200, "s"))
    '2h'
    """
    seconds = int(td / np.timedelta64(1, "s"))
    for unit, size in (("w", 7 * 86400), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _iso(t: np.datetime64) -> str:
    return str(np.datetime_as_string(t.astype("datetime64[s]"), unit="s")) + "Z"


@dataclass(frozen=True)
class SeriesReport:
    """What validation found in a price series and what was done about it.

    Attributes
    ----------
    name : str
        Series name.
    n_input, n_used : int
        Rows read and rows kept.
    freq : str
        Sampling interval (modal spacing of the timestamps), e.g. ``"1d"``.
    start, end : str
        First and last kept timestamp (ISO, UTC).
    was_sorted : bool
        False when the input was not in ascending time order (it was sorted).
    duplicates : int
        Rows dropped because their timestamp repeats an earlier row (the last one is kept).
    conflicting_duplicates : int
        Of those, rows whose price differed from the kept row.
    non_positive, non_finite : int
        Rows dropped for a price <= 0 or a missing/NaN/inf price.
    off_grid : int
        Rows dropped because their timestamp is not on the ``freq`` grid from the first row.
    gaps : int
        Runs of missing grid points between kept rows.
    missing_points : int
        Total missing grid points; returns spanning them are excluded, never bridged.
    largest_gap : str
        Longest run of missing time, e.g. ``"3d"`` (``""`` when there is none).
    gap_examples : tuple of (str, str)
        Up to five gaps as (last point before, first point after).
    """

    name: str
    n_input: int
    n_used: int
    freq: str
    start: str
    end: str
    was_sorted: bool
    duplicates: int
    conflicting_duplicates: int
    non_positive: int
    non_finite: int
    off_grid: int
    gaps: int
    missing_points: int
    largest_gap: str
    gap_examples: tuple[tuple[str, str], ...] = ()

    @property
    def clean(self) -> bool:
        """True when nothing had to be dropped, sorted or excluded."""
        return self.was_sorted and self.issues() == ()

    def issues(self) -> tuple[str, ...]:
        """One line per problem found and the action taken."""
        out: list[str] = []
        if not self.was_sorted:
            out.append("input not in ascending time order: sorted")
        if self.duplicates:
            out.append(
                f"{self.duplicates} duplicate timestamps dropped (kept the last row;"
                f" {self.conflicting_duplicates} had a different price)"
            )
        if self.non_positive:
            out.append(f"{self.non_positive} non-positive prices dropped")
        if self.non_finite:
            out.append(f"{self.non_finite} missing/non-finite prices dropped")
        if self.off_grid:
            out.append(f"{self.off_grid} timestamps off the {self.freq} grid dropped")
        if self.gaps:
            out.append(
                f"{self.gaps} gaps ({self.missing_points} missing points, largest"
                f" {self.largest_gap}): returns across them are excluded"
            )
        return tuple(out)

    def summary(self) -> str:
        """Human-readable multi-line summary."""
        head = (
            f"{self.name}: {self.n_used}/{self.n_input} rows used, every {self.freq},"
            f" {self.start} .. {self.end}"
        )
        issues = self.issues()
        return head + ("\n  " + "\n  ".join(issues) if issues else "\n  clean")

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict."""
        return {
            "name": self.name,
            "n_input": self.n_input,
            "n_used": self.n_used,
            "freq": self.freq,
            "start": self.start,
            "end": self.end,
            "was_sorted": self.was_sorted,
            "duplicates": self.duplicates,
            "conflicting_duplicates": self.conflicting_duplicates,
            "non_positive": self.non_positive,
            "non_finite": self.non_finite,
            "off_grid": self.off_grid,
            "gaps": self.gaps,
            "missing_points": self.missing_points,
            "largest_gap": self.largest_gap,
            "gap_examples": [list(g) for g in self.gap_examples],
            "clean": self.clean,
            "issues": list(self.issues()),
        }


@dataclass(frozen=True)
class ReturnSeries:
    """Log (or simple) returns over a fixed horizon, never spanning a gap.

    Attributes
    ----------
    name : str
        Name of the price series.
    times : numpy.ndarray of datetime64[ns]
        End time of each return.
    values : numpy.ndarray of float
        The returns ``ln(P_t / P_{t-h})`` (or ``P_t / P_{t-h} - 1``).
    horizon, freq : numpy.timedelta64
        Return horizon and sampling interval of the prices (``horizon = steps * freq``).
    steps : int
        Horizon in sampling steps.
    kind : str
        ``"log"`` or ``"simple"``.
    overlapping : bool
        True when a return starts at every grid point, False for one every ``steps``.
    n_gap_excluded : int
        Returns that could not be formed because a start or end point is missing.
    """

    name: str
    times: DateArray
    values: FloatArray
    horizon: np.timedelta64
    freq: np.timedelta64
    steps: int
    kind: str
    overlapping: bool
    n_gap_excluded: int

    def __len__(self) -> int:
        return int(self.values.size)

    @property
    def horizon_label(self) -> str:
        """Horizon as a short label, e.g. ``"1d"``."""
        return format_timedelta(self.horizon)

    def summary(self) -> str:
        """One-line description with mean, standard deviation and extremes."""
        v = self.values
        return (
            f"{self.name} {self.kind} returns over {self.horizon_label}"
            f" ({'overlapping' if self.overlapping else 'non-overlapping'}): n={v.size},"
            f" mean={v.mean():.5f}, std={v.std(ddof=1):.5f}, min={v.min():.4f},"
            f" max={v.max():.4f}, excluded across gaps={self.n_gap_excluded}"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (summary statistics, not the data)."""
        v = self.values
        return {
            "name": self.name,
            "horizon": self.horizon_label,
            "kind": self.kind,
            "overlapping": self.overlapping,
            "n": int(v.size),
            "mean": float(v.mean()),
            "std": float(v.std(ddof=1)) if v.size > 1 else 0.0,
            "min": float(v.min()),
            "max": float(v.max()),
            "n_gap_excluded": self.n_gap_excluded,
            "start": _iso(self.times[0]),
            "end": _iso(self.times[-1]),
        }


@dataclass(frozen=True)
class PriceSeries:
    """A validated, regularly sampled price history (frozen).

    Build it with :meth:`from_arrays` or :func:`read_prices`; the constructor expects
    already-validated arrays.

    Attributes
    ----------
    name : str
        Label used in reports.
    times : numpy.ndarray of datetime64[ns]
        Strictly increasing timestamps on the grid ``t0 + i * freq`` (UTC, naive).
    prices : numpy.ndarray of float
        Strictly positive, finite prices.
    freq : numpy.timedelta64
        Sampling interval.
    report : SeriesReport
        Validation report.
    """

    name: str
    times: DateArray
    prices: FloatArray
    freq: np.timedelta64
    report: SeriesReport = field(repr=False)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_arrays(
        cls,
        times: ArrayLike,
        prices: ArrayLike,
        *,
        name: str = "series",
        freq: str | np.timedelta64 | None = None,
        strict: bool = False,
        min_points: int = 3,
    ) -> PriceSeries:
        """Validate timestamps and prices into a :class:`PriceSeries`.

        Parameters
        ----------
        times : array_like of datetime64 or str
            Observation times (UTC); any order.
        prices : array_like of float
            Prices (close, index level, ...).
        name : str
            Label used in reports and errors.
        freq : str or numpy.timedelta64, optional
            Sampling interval; default: the most common spacing of the timestamps.
        strict : bool
            Raise :class:`DataError` on any duplicate, non-positive/non-finite price,
            off-grid timestamp or gap instead of reporting and handling it.
        min_points : int
            Fewest usable points accepted.

        Raises
        ------
        DataError
            Length mismatch, unparsable times, too few usable points, or (``strict``) any
            defect.
        """
        t = np.asarray(times)
        try:
            t = t.astype("datetime64[ns]")
        except (ValueError, TypeError) as exc:
            raise DataError(f"{name}: timestamps cannot be parsed as datetimes ({exc})") from exc
        try:
            p = np.asarray(prices, dtype=np.float64)
        except (ValueError, TypeError) as exc:
            raise DataError(f"{name}: prices are not numeric ({exc})") from exc
        if t.ndim != 1 or p.ndim != 1 or t.size != p.size:
            raise DataError(
                f"{name}: times and prices must be 1-D of equal length, got {t.shape} and {p.shape}"
            )
        n_input = int(t.size)
        if np.isnat(t).any():
            raise DataError(f"{name}: {int(np.isnat(t).sum())} missing timestamps")

        order = np.argsort(t, kind="stable")
        was_sorted = bool(np.all(order == np.arange(n_input)))
        t, p = t[order], p[order]

        # duplicates: keep the last row of every timestamp
        last_of_run = np.ones(n_input, dtype=bool)
        if n_input > 1:
            last_of_run[:-1] = t[1:] != t[:-1]
        n_dup = int(n_input - last_of_run.sum())
        n_conflict = 0
        if n_dup:
            new_run = np.ones(n_input, dtype=bool)
            new_run[1:] = t[1:] != t[:-1]
            group = np.cumsum(new_run) - 1
            kept_price = p[last_of_run][group]
            n_conflict = int(np.sum((~last_of_run) & (p != kept_price)))
        t, p = t[last_of_run], p[last_of_run]

        finite = np.isfinite(p)
        positive = p > 0
        n_nonfinite = int((~finite).sum())
        n_nonpos = int((finite & ~positive).sum())
        keep = finite & positive
        t, p = t[keep], p[keep]

        if t.size < max(min_points, 2):
            raise DataError(
                f"{name}: only {t.size} usable points (of {n_input}); need at least"
                f" {max(min_points, 2)}"
            )
        diffs = np.diff(t)
        if freq is None:
            vals, counts = np.unique(diffs, return_counts=True)
            step = vals[np.argmax(counts)].astype("timedelta64[ns]")
        else:
            step = parse_horizon(freq).astype("timedelta64[ns]")
        if step <= np.timedelta64(0, "ns"):
            raise DataError(f"{name}: cannot infer a positive sampling interval")

        offset = (t - t[0]).astype(np.int64)
        step_ns = int(step / _NS)
        on_grid = offset % step_ns == 0
        n_off = int((~on_grid).sum())
        t, p = t[on_grid], p[on_grid]
        idx = (t - t[0]).astype(np.int64) // step_ns
        jumps = np.diff(idx)
        gap_pos = np.flatnonzero(jumps > 1)
        missing = int(np.sum(jumps[gap_pos] - 1))
        largest = format_timedelta((int(jumps[gap_pos].max()) - 1) * step) if gap_pos.size else ""
        examples = tuple((_iso(t[i]), _iso(t[i + 1])) for i in gap_pos[:5])

        freq_label = format_timedelta(step.astype("timedelta64[s]"))
        report = SeriesReport(
            name=name,
            n_input=n_input,
            n_used=int(t.size),
            freq=freq_label,
            start=_iso(t[0]),
            end=_iso(t[-1]),
            was_sorted=was_sorted,
            duplicates=n_dup,
            conflicting_duplicates=n_conflict,
            non_positive=n_nonpos,
            non_finite=n_nonfinite,
            off_grid=n_off,
            gaps=int(gap_pos.size),
            missing_points=missing,
            largest_gap=largest,
            gap_examples=examples,
        )
        if strict:
            bad = [s for s in report.issues() if not s.startswith("input not in ascending")]
            if bad:
                raise DataError(f"{name}: " + "; ".join(bad))
        if t.size < max(min_points, 2):
            raise DataError(f"{name}: only {t.size} usable points on the {freq_label} grid")
        t.flags.writeable = False
        p.flags.writeable = False
        return cls(name=name, times=t, prices=p, freq=step, report=report)

    # ------------------------------------------------------------------ views
    def __len__(self) -> int:
        return int(self.prices.size)

    @property
    def freq_label(self) -> str:
        """Sampling interval as a short label, e.g. ``"1h"``."""
        return format_timedelta(self.freq.astype("timedelta64[s]"))

    def steps(self, horizon: str | np.timedelta64 | int) -> int:
        """Number of sampling steps in ``horizon`` (an int is taken as steps).

        Raises
        ------
        ParameterError
            If the horizon is not a positive whole multiple of the sampling interval.
        """
        if isinstance(horizon, int | np.integer) and not isinstance(horizon, bool):
            if horizon < 1:
                raise ParameterError(f"{self.name}: horizon of {horizon} steps must be >= 1")
            return int(horizon)
        h = parse_horizon(horizon).astype("timedelta64[ns]")
        k, rem = divmod(int(h / _NS), int(self.freq / _NS))
        if rem or k < 1:
            raise ParameterError(
                f"{self.name}: horizon {format_timedelta(h.astype('timedelta64[s]'))} is not a"
                f" whole multiple of the sampling interval {self.freq_label}"
            )
        return k

    def grid(self) -> tuple[DateArray, FloatArray]:
        """Prices on the full regular grid, NaN where a point is missing.

        Returns
        -------
        times, prices : ndarray
            ``times[i] = t0 + i * freq``.
        """
        step_ns = int(self.freq / _NS)
        idx = (self.times - self.times[0]).astype(np.int64) // step_ns
        g = np.full(int(idx[-1]) + 1, np.nan)
        g[idx] = self.prices
        tg = self.times[0] + np.arange(g.size) * self.freq
        return tg, g

    def between(self, start: str | None = None, end: str | None = None) -> PriceSeries:
        """Sub-series with ``start <= t <= end`` (ISO dates), re-validated."""
        mask = np.ones(len(self), dtype=bool)
        if start:
            mask &= self.times >= np.datetime64(start, "ns")
        if end:
            mask &= self.times <= np.datetime64(end, "ns")
        return PriceSeries.from_arrays(
            self.times[mask], self.prices[mask], name=self.name, freq=self.freq
        )

    def tail(self, n: int) -> PriceSeries:
        """The last ``n`` observations as a new series."""
        return PriceSeries.from_arrays(
            self.times[-n:], self.prices[-n:], name=self.name, freq=self.freq
        )

    def returns(
        self,
        horizon: str | np.timedelta64 | int | None = None,
        *,
        overlapping: bool = True,
        kind: str = "log",
        min_obs: int = 2,
    ) -> ReturnSeries:
        """Returns over ``horizon`` between observed grid points exactly that far apart.

        .. math:: r_t = \\ln(P_t / P_{t-h})\\quad(\\text{kind="log"}),\\qquad
                  r_t = P_t / P_{t-h} - 1\\quad(\\text{kind="simple"})

        Parameters
        ----------
        horizon : str, timedelta64 or int, optional
            Return horizon (default: one sampling step); an int counts steps.
        overlapping : bool
            One return per grid point (True) or one every ``h`` (False, independent
            windows as backtests need).
        kind : {"log", "simple"}
        min_obs : int
            Fewest returns accepted.

        Raises
        ------
        DataError
            If fewer than ``min_obs`` returns can be formed (series too short for the
            horizon, or too gappy).
        """
        if kind not in ("log", "simple"):
            raise ParameterError(f"return kind {kind!r} must be 'log' or 'simple'")
        k = 1 if horizon is None else self.steps(horizon)
        tg, g = self.grid()
        if g.size <= k:
            raise DataError(
                f"{self.name}: {g.size} points span less than the horizon of {k} steps"
                f" ({format_timedelta(k * self.freq.astype('timedelta64[s]'))})"
            )
        start = g[:-k]
        end = g[k:]
        ends = tg[k:]
        if not overlapping:
            start, end, ends = start[::k], end[::k], ends[::k]
        ok = np.isfinite(start) & np.isfinite(end)
        ratio = end[ok] / start[ok]
        values = np.log(ratio) if kind == "log" else ratio - 1.0
        if values.size < min_obs:
            raise DataError(
                f"{self.name}: only {values.size} returns over"
                f" {format_timedelta(k * self.freq.astype('timedelta64[s]'))} can be formed;"
                f" need at least {min_obs}"
            )
        return ReturnSeries(
            name=self.name,
            times=ends[ok],
            values=values,
            horizon=(k * self.freq).astype("timedelta64[s]"),
            freq=self.freq.astype("timedelta64[s]"),
            steps=k,
            kind=kind,
            overlapping=overlapping,
            n_gap_excluded=int((~ok).sum()),
        )

    def summary(self) -> str:
        """The validation report as text."""
        return self.report.summary()

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict: the validation report plus last price."""
        return {**self.report.to_dict(), "last_price": float(self.prices[-1])}


# ---------------------------------------------------------------------- readers
_TIME_COLUMNS = ("unix", "timestamp", "open_time", "datetime", "date", "time")
_PRICE_COLUMNS = ("close", "price", "iv", "dvol", "value", "adj close")


def read_prices(
    path: str | Path,
    *,
    column: str | None = None,
    time_column: str | None = None,
    name: str | None = None,
    strict: bool = False,
    freq: str | None = None,
) -> PriceSeries:
    """Read a price history CSV into a :class:`PriceSeries`.

    Handles the histories in ``../shared/data/raw``: Binance/Yahoo daily OHLCV (``date``),
    Bitstamp (a URL banner line, then ``unix,date,...``; ``unix`` seconds are used),
    Binance hourly (``open_time`` with a UTC offset), DVOL (``date`` or ``timestamp`` with
    ``iv``, possibly newest first), and any plain CSV with a time column and a price column.

    Parameters
    ----------
    path : str or Path
        CSV file.
    column : str, optional
        Price column (default: the first of ``close, price, iv, dvol, value`` present,
        case-insensitive, else the only numeric non-time column).
    time_column : str, optional
        Time column (default: the first of ``unix, timestamp, open_time, datetime, date,
        time`` present).
    name : str, optional
        Series label (default: file stem and column).
    strict, freq
        Passed to :meth:`PriceSeries.from_arrays`.

    Raises
    ------
    DataError
        Unreadable file, missing columns, unparsable timestamps, too few usable rows.

    Examples
    --------
    >>> s = read_prices("btc_daily.csv")                       # doctest: +SKIP
    >>> s.returns("1d").summary()                              # doctest: +SKIP
    """
    import pandas as pd

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(2, "No such file", str(p))
    text = read_text(p, errors="replace")
    first = text.split("\n", 1)[0]
    skip = 1 if (first.lower().startswith("http") or "," not in first) else 0
    try:
        df = pd.read_csv(io.StringIO(text), skiprows=skip)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"{p.name}: not a readable CSV ({exc})") from exc
    lower = {str(c).strip().lower(): c for c in df.columns}

    if time_column is not None:
        if time_column not in df.columns:
            raise DataError(f"{p.name}: no time column {time_column!r} in {list(df.columns)}")
        tcol = time_column
    else:
        found = [lower[c] for c in _TIME_COLUMNS if c in lower]
        if not found:
            raise DataError(f"{p.name}: no time column (looked for {', '.join(_TIME_COLUMNS)})")
        tcol = found[0]
    if column is not None:
        if column in df.columns:
            pcol = column
        elif column.lower() in lower:
            pcol = lower[column.lower()]
        else:
            raise DataError(f"{p.name}: no price column {column!r} in {list(df.columns)}")
    else:
        cands = [lower[c] for c in _PRICE_COLUMNS if c in lower]
        if not cands:
            numeric = [
                c
                for c in df.columns
                if c != tcol
                and str(c).lower() not in _TIME_COLUMNS
                and pd.api.types.is_numeric_dtype(df[c])
            ]
            if len(numeric) != 1:
                raise DataError(
                    f"{p.name}: cannot tell the price column; pass column= (columns:"
                    f" {list(df.columns)})"
                )
            cands = numeric
        pcol = cands[0]

    raw_t = df[tcol]
    try:
        if str(tcol).lower() == "unix":
            num = pd.to_numeric(raw_t, errors="raise").to_numpy(dtype=np.float64)
            big = bool(np.nanmax(num) > 1e11)
            times = pd.to_datetime(pd.Series(num), unit="ms" if big else "s", utc=True)
        else:
            times = pd.to_datetime(raw_t, utc=True, format="mixed")
    except (ValueError, TypeError) as exc:
        raise DataError(f"{p.name}: column {tcol!r} has unparsable timestamps ({exc})") from exc
    t = np.asarray(
        pd.DatetimeIndex(times).tz_convert("UTC").tz_localize(None), dtype="datetime64[ns]"
    )
    prices = pd.to_numeric(df[pcol], errors="coerce").to_numpy(dtype=np.float64)
    label = name or f"{p.stem}:{pcol}"
    return PriceSeries.from_arrays(t, prices, name=label, strict=strict, freq=freq)


__all__ = [
    "PriceSeries",
    "ReturnSeries",
    "SeriesReport",
    "format_timedelta",
    "parse_horizon",
    "read_prices",
]
