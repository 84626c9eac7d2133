"""Readers against the real Deribit snapshot files in ../shared/data (svcj snapshots).

Every one of the 57 full-chain snapshots is read once per currency (cached per module)
and checked against the raw rows: quote count, instrument/expiry/strike/prices, the
quoted underlying, and time to expiry against the file's own ``time_to_maturity``
column (which the file computes ACT/365.25; volcal uses ACT/365, so
``t x 365 / 365.25`` must equal it).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import volcal
from volcal.errors import DataError
from volcal.market.flags import Flag

_ROOT = Path(
    os.environ.get("VOLCAL_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data")
)
_SNAP_NAMES = sorted(
    p.name
    for p in (_ROOT / "raw" / "svcj-deribit-snapshots").glob("deribit_options_snapshot_*.csv")
) or ["(data missing)"]

_CACHE: dict[tuple[str, str], tuple[volcal.OptionChain, pd.DataFrame]] = {}


def _load(snapshot_dir: Path, name: str, cur: str) -> tuple[volcal.OptionChain, pd.DataFrame]:
    key = (name, cur)
    if key not in _CACHE:
        path = snapshot_dir / name
        raw = pd.read_csv(path)
        _CACHE[key] = (
            volcal.read_chain(path, cur),
            raw[raw["currency"] == cur].reset_index(drop=True),
        )
    return _CACHE[key]


def test_snapshot_count(snapshot_dir: Path) -> None:
    assert len(list(snapshot_dir.glob("deribit_options_snapshot_*.csv"))) == 57


@pytest.mark.data
@pytest.mark.parametrize("cur", ["BTC", "ETH"])
@pytest.mark.parametrize("name", _SNAP_NAMES)
def test_svcj_snapshot_matches_raw(snapshot_dir: Path, name: str, cur: str) -> None:
    chain, raw = _load(snapshot_dir, name, cur)
    assert len(chain) == len(raw) > 0
    assert chain.underlying == cur and chain.settlement == "inverse" and chain.venue == "deribit"
    assert chain.snapshot == pd.Timestamp(raw["timestamp"].iloc[0])
    # every row kept, in file order
    np.testing.assert_array_equal(chain.instrument, raw["instrument_name"].to_numpy(dtype=object))
    np.testing.assert_array_equal(chain.strike, raw["strike"].to_numpy(float))
    np.testing.assert_array_equal(chain.is_call, (raw["option_type"] == "call").to_numpy())
    for mine, col in [
        (chain.bid, "bid_price"),
        (chain.ask, "ask_price"),
        (chain.mark, "mark_price"),
    ]:
        np.testing.assert_array_equal(mine, raw[col].to_numpy(float))
    fut = raw["futures_price"].fillna(raw["underlying"]).to_numpy(float)
    np.testing.assert_array_equal(chain.underlying_price, fut)
    np.testing.assert_array_equal(chain.forward, fut)
    np.testing.assert_array_equal(chain.mark_iv, raw["implied_volatility"].to_numpy(float))
    np.testing.assert_array_equal(chain.open_interest, raw["open_interest"].to_numpy(float))
    exp = (
        pd.to_datetime(raw["expiry_datetime"], utc=True)
        .dt.tz_localize(None)
        .to_numpy("datetime64[ns]")
    )
    np.testing.assert_array_equal(chain.expiry, exp)
    # the file's time_to_maturity is ACT/365.25 of the same timestamps
    np.testing.assert_allclose(
        chain.t * 365.0 / 365.25, raw["time_to_maturity"], rtol=0, atol=1e-12
    )
    # spot check one row by name, independent of ordering
    i = len(raw) // 2
    row = raw.iloc[i]
    j = int(np.flatnonzero(chain.instrument == row["instrument_name"])[0])
    assert chain.strike[j] == row["strike"]
    assert pd.Timestamp(chain.expiry[j]).tz_localize("UTC") == pd.Timestamp(row["expiry_datetime"])
    assert chain.usd("mark")[j] == pytest.approx(row["mark_price"] * fut[i], rel=1e-15)
    # flags: a missing bid is flagged, never dropped
    nobid = raw["bid_price"].isna().to_numpy()
    assert np.all((chain.flags[nobid] & Flag.MISSING_BID) != 0)
    assert np.all((chain.flags[~nobid] & Flag.MISSING_BID) == 0)
    assert not np.any(chain.flags & Flag.EXPIRED)


def test_svcj_mixed_file_needs_currency(snapshot_dir: Path) -> None:
    path = snapshot_dir / _SNAP_NAMES[0]
    with pytest.raises(
        DataError,
        match=r"^deribit_options_snapshot_\w+\.csv: file holds BTC and ETH: pass currency=\.\.\.$",
    ):
        volcal.read_chain(path)
    with pytest.raises(DataError, match="no SOL options in file"):
        volcal.read_chain(path, "SOL")
