"""Positions and portfolios of options, dated futures and perpetuals.

A :class:`Portfolio` is an immutable list of :class:`Position` objects, each identified by a
Deribit instrument name and parsed once, here:

* ``BTC-27MAR26-100000-C`` / ``-P``: an inverse (coin-settled) option, expiry 08:00 UTC;
* ``BTC-27MAR26``: an inverse dated future; ``BTC-PERPETUAL``: the inverse perpetual;
* ``BTC_USDC-27MAR26-100000-C``, ``BTC_USDC-PERPETUAL``: linear (USDC-settled) instruments;
  a ``d`` in a strike is the decimal point (``XRP_USDC-27MAR26-0d625-C``).

Units
-----
``size`` is in units of the underlying coin for every instrument: options on one coin each,
futures and perpetuals in coin notional (Deribit reports inverse futures in USD; divide by the
price, ``size_currency`` in its API). Negative size = short. An inverse future of coin size
``q`` entered at ``E`` has USD P&L ``q (F - E)`` and coin P&L ``q (F - E) / F`` - the USD P&L
of a linear future of the same size, so one coin size describes both exactly.

``entry_price`` (optional) is in the instrument's quote units: coin per option for inverse
options, USD per option for linear options, USD per coin for futures.

Errors name the position (its index and instrument) so a user can fix the file.

>>> pf = Portfolio.from_records([{"instrument": "BTC-27MAR26-100000-C", "size": -1.0},
...                              {"instrument": "BTC-PERPETUAL", "size": 0.5}])
>>> [p.kind for p in pf], pf.underlying
(['option', 'perpetual'], 'BTC')
"""

from __future__ import annotations

import io
import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from volcal._io import read_text
from volcal.errors import DataError

Kind = Literal["option", "future", "perpetual"]

_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
    )
}
_DATE = re.compile(r"^(\d{1,2})([A-Z]{3})(\d{2})$")
_STRIKE = re.compile(r"^\d+(?:D\d+)?$|^\d+(?:\.\d+)?$")


@dataclass(frozen=True)
class Instrument:
    """A parsed instrument name.

    Attributes
    ----------
    name : str
    kind : {"option", "future", "perpetual"}
    underlying : str
        Coin, e.g. ``"BTC"`` (``BTC_USDC`` instruments have underlying ``"BTC"``).
    settlement : {"inverse", "linear"}
    expiry : pandas.Timestamp or None
        UTC expiry (08:00, Deribit's settlement time); None for a perpetual.
    strike : float
        NaN for futures and perpetuals.
    is_call : bool
        False for futures and perpetuals.
    """

    name: str
    kind: Kind
    underlying: str
    settlement: Literal["inverse", "linear"]
    expiry: pd.Timestamp | None
    strike: float = math.nan
    is_call: bool = False


def parse_instrument(name: str) -> Instrument:
    """Parse a Deribit instrument name (see the module docs for the accepted forms).

    Raises
    ------
    DataError
        When the name is not one of the accepted forms.

    Examples
    --------
    >>> i = parse_instrument("ETH-26JUN26-3000-P")
    >>> i.kind, i.underlying, i.strike, i.is_call, str(i.expiry)
    ('option', 'ETH', 3000.0, False, '2026-06-26 08:00:00+00:00')
    """
    if not isinstance(name, str) or not name.strip():
        raise DataError(f"instrument name must be a non-empty string, got {name!r}")
    text = name.strip().upper()
    parts = text.split("-")
    base = parts[0]
    settlement: Literal["inverse", "linear"] = "inverse"
    if "_" in base:
        coin, _, quote = base.partition("_")
        if quote not in ("USDC", "USDT", "USD"):
            raise DataError(f"unknown instrument {name!r}: cannot read quote currency {quote!r}")
        settlement = "linear"
    else:
        coin = base
    if not coin.isalnum():
        raise DataError(f"unknown instrument {name!r}: cannot read the underlying")
    if len(parts) == 2 and parts[1] == "PERPETUAL":
        return Instrument(text, "perpetual", coin, settlement, None)
    if len(parts) not in (2, 4):
        raise DataError(
            f"unknown instrument {name!r}: expected e.g. BTC-27MAR26-100000-C, BTC-27MAR26 "
            "or BTC-PERPETUAL"
        )
    expiry = _parse_date(parts[1], name)
    if len(parts) == 2:
        return Instrument(text, "future", coin, settlement, expiry)
    strike_s, cp = parts[2], parts[3]
    if not _STRIKE.match(strike_s) or cp not in ("C", "P"):
        raise DataError(f"unknown instrument {name!r}: cannot read strike/type {strike_s}-{cp}")
    strike = float(strike_s.replace("D", ".")) if "D" in strike_s else float(strike_s)
    if not strike > 0:
        raise DataError(f"unknown instrument {name!r}: strike must be positive")
    return Instrument(text, "option", coin, settlement, expiry, strike, cp == "C")


def _parse_date(s: str, name: str) -> pd.Timestamp:
    m = _DATE.match(s)
    if m is None or m.group(2) not in _MONTHS:
        raise DataError(f"unknown instrument {name!r}: cannot read expiry {s!r} (e.g. 27MAR26)")
    try:
        return pd.Timestamp(
            year=2000 + int(m.group(3)),
            month=_MONTHS[m.group(2)],
            day=int(m.group(1)),
            hour=8,
            tz="UTC",
        )
    except ValueError as exc:
        raise DataError(f"unknown instrument {name!r}: {s!r} is not a date") from exc


@dataclass(frozen=True)
class Position:
    """One position: an instrument, a signed size in coin and an optional entry price."""

    instrument: Instrument
    size: float
    entry_price: float = math.nan

    @property
    def name(self) -> str:
        return self.instrument.name

    @property
    def kind(self) -> Kind:
        return self.instrument.kind

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"instrument": self.name, "size": self.size}
        if math.isfinite(self.entry_price):
            out["entry_price"] = self.entry_price
        return out


def _label(i: int, name: Any) -> str:
    return f"position {i} ({name})"


def _number(value: Any, what: str, where: str, *, required: bool) -> float:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise DataError(f"{where}: {what} is missing")
        return math.nan
    try:
        x = float(value)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{where}: {what} {value!r} is not a number") from exc
    if required and not math.isfinite(x):
        raise DataError(f"{where}: {what} is {x} (must be a finite number)")
    return x


@dataclass(frozen=True)
class Portfolio:
    """An immutable list of positions in one underlying.

    Build with :meth:`from_records`, :meth:`from_json` or :meth:`from_csv`; each checks every
    position and names the offending one in its error. All positions must share one
    underlying coin (a portfolio is margined per currency, as Deribit's segregated
    portfolio margin does); inverse and linear instruments may be mixed.
    """

    positions: tuple[Position, ...]
    name: str = "portfolio"
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.positions:
            raise DataError(f"{self.name}: the portfolio has no positions")
        coins = {p.instrument.underlying for p in self.positions}
        if len(coins) > 1:
            first = self.positions[0].instrument.underlying
            i, bad = next(
                (i, p) for i, p in enumerate(self.positions) if p.instrument.underlying != first
            )
            raise DataError(
                f"{_label(i, bad.name)}: underlying {bad.instrument.underlying} differs from "
                f"{first} of the first position (one portfolio per currency)"
            )
        object.__setattr__(self, "positions", tuple(self.positions))

    # ------------------------------------------------------------------ building
    @classmethod
    def from_records(
        cls, records: Iterable[Mapping[str, Any]], name: str = "portfolio"
    ) -> Portfolio:
        """Positions from dicts with keys ``instrument``, ``size`` and optionally
        ``entry_price``.

        Raises
        ------
        DataError
            Unparseable instrument name, missing/NaN/infinite/zero size, non-numeric entry
            price, or mixed underlyings - naming the position.
        """
        out = []
        for i, rec in enumerate(records):
            if not isinstance(rec, Mapping):
                raise DataError(f"position {i}: expected a record with 'instrument' and 'size'")
            inst_name = rec.get("instrument", rec.get("instrument_name"))
            where = _label(i, inst_name)
            if inst_name is None:
                raise DataError(f"position {i}: 'instrument' is missing")
            try:
                inst = parse_instrument(str(inst_name))
            except DataError as exc:
                raise DataError(f"{where}: {exc}") from exc
            size = _number(rec.get("size"), "size", where, required=True)
            if size == 0.0:
                raise DataError(f"{where}: size is zero")
            entry = _number(rec.get("entry_price"), "entry_price", where, required=False)
            if not (math.isnan(entry) or (math.isfinite(entry) and entry >= 0.0)):
                raise DataError(f"{where}: entry_price {entry} must be finite and >= 0")
            out.append(Position(inst, size, entry))
        return cls(tuple(out), name=name)

    @classmethod
    def from_json(cls, source: str | Path) -> Portfolio:
        """Read a JSON file: a list of records, or ``{"positions": [...], "name": ...}``."""
        path = Path(source)
        try:
            doc = json.loads(read_text(path))
        except json.JSONDecodeError as exc:
            raise DataError(f"{path.name}: not valid JSON ({exc.msg}, line {exc.lineno})") from exc
        name = path.stem
        if isinstance(doc, Mapping):
            name = str(doc.get("name", name))
            doc = doc.get("positions")
        if not isinstance(doc, list):
            raise DataError(f"{path.name}: expected a list of positions or {{'positions': [...]}}")
        return cls.from_records(doc, name=name)

    @classmethod
    def from_csv(cls, source: str | Path) -> Portfolio:
        """Read a CSV with columns ``instrument``, ``size`` and optionally ``entry_price``."""
        path = Path(source)
        try:
            df = pd.read_csv(io.StringIO(read_text(path)), dtype=str, keep_default_na=False)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise DataError(f"{path.name}: cannot read CSV ({exc})") from exc
        cols = {c.strip().lower(): c for c in df.columns}
        if "instrument" not in cols and "instrument_name" not in cols:
            raise DataError(f"{path.name}: needs an 'instrument' column")
        if "size" not in cols:
            raise DataError(f"{path.name}: needs a 'size' column")
        df = df.rename(columns={v: k for k, v in cols.items()})
        records = [{str(k): v for k, v in r.items()} for r in df.to_dict(orient="records")]
        return cls.from_records(records, name=path.stem)

    @classmethod
    def read(cls, source: str | Path) -> Portfolio:
        """Read a portfolio file, JSON or CSV by extension."""
        path = Path(source)
        if not path.is_file():
            raise DataError(f"portfolio file not found: {path}")
        if path.suffix.lower() == ".json":
            return cls.from_json(path)
        if path.suffix.lower() in (".csv", ".txt"):
            return cls.from_csv(path)
        raise DataError(f"{path.name}: portfolio files are .json or .csv")

    # ------------------------------------------------------------------ views
    def __len__(self) -> int:
        return len(self.positions)

    def __iter__(self) -> Iterator[Position]:
        return iter(self.positions)

    @property
    def underlying(self) -> str:
        return self.positions[0].instrument.underlying

    @property
    def sizes(self) -> np.ndarray:
        return np.array([p.size for p in self.positions], dtype=np.float64)

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.positions]

    def scaled(self, factor: float) -> Portfolio:
        """Every size multiplied by ``factor`` (non-zero)."""
        if not (math.isfinite(factor) and factor != 0.0):
            raise DataError(f"scale factor must be finite and non-zero, got {factor}")
        pos = tuple(Position(p.instrument, p.size * factor, p.entry_price) for p in self)
        return Portfolio(pos, name=self.name)

    def __add__(self, other: Portfolio) -> Portfolio:
        return Portfolio(self.positions + other.positions, name=f"{self.name}+{other.name}")

    def summary(self) -> str:
        kinds = {k: sum(p.kind == k for p in self) for k in ("option", "future", "perpetual")}
        lines = [
            f"Portfolio {self.name!r}: {len(self)} positions in {self.underlying} "
            f"({', '.join(f'{v} {k}s' for k, v in kinds.items() if v)})"
        ]
        lines += [f"  {p.name:<28} {p.size:+.6g}" for p in self.positions[:20]]
        if len(self) > 20:
            lines.append(f"  ... {len(self) - 20} more")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "positions": [p.to_dict() for p in self.positions]}


__all__ = ["Instrument", "Portfolio", "Position", "parse_instrument"]
