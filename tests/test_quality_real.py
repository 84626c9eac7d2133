"""Every priced chain in ../shared/data loads, cleans and gets an arbitrage-free SVI fit.

Bounds (from ``python benchmarks/sweep_svi.py`` over all 114 BTC/ETH snapshot chains:
overall RMSE median 0.47, max 1.17 vol points; inside-spread share median 97 %, min
79 %; worst single expiry 3.1 vol points): a good SVI fit of a liquid Deribit chain is
within about half a vol point of the mids and inside most bid-ask intervals. The test
bounds leave room above the worst observed value (RMSE <= 1.5, inside >= 70 %, worst
expiry <= 4 vol points) so they catch a regression, not noise.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest

import volcal
from volcal.errors import CalibrationWarning, DataError
from volcal.quality import quality_report

_ROOT = Path(
    os.environ.get("VOLCAL_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data")
)
_SNAPS = sorted(
    p.name
    for p in (_ROOT / "raw" / "svcj-deribit-snapshots").glob("deribit_options_snapshot_*.csv")
) or ["(data missing)"]


@pytest.mark.parametrize("name", _SNAPS)
def test_every_snapshot_cleans_and_fits(snapshot_dir: Path, name: str) -> None:
    for cur in ("BTC", "ETH"):
        raw = volcal.read_chain(snapshot_dir / name, currency=cur)
        chain = volcal.clean(raw)
        rep = quality_report(chain)
        assert len(chain) == len(raw)  # nothing dropped
        assert rep.n_used + rep.n_excluded == len(raw)
        # out-of-the-money quotes are most of what is used: at least 35 % of the chain
        assert rep.n_used >= 0.35 * len(raw), rep.summary()
        assert rep.count("outlier") <= 0.02 * len(raw), rep.summary()
        with warnings.catch_warnings():
            warnings.simplefilter("error", CalibrationWarning)
            fit = volcal.calibrate(chain, "svi")
        assert fit.status == "ok", fit.message
        assert fit.rmse_vol <= 1.5, (cur, fit.summary())
        assert fit.inside_spread >= 0.70, (cur, fit.summary())
        assert max(s.rmse_vol for s in fit.slices) <= 4.0, (cur, fit.summary())
        assert all(s.is_arbitrage_free() for s in fit.params.smiles)
        atm = np.array([s.atm_vol for s in fit.slices])
        assert np.all((atm > 0.05) & (atm < 3.0))


@pytest.mark.parametrize(
    ("folder", "name"),
    [
        ("schepal-deribit", "options_data.csv"),
        ("schepal-deribit", "btc_options_data.csv"),
        ("lucas-btc-vrp", "deribit_option_snapshots.csv"),
        ("tessicin-deribit", "deribit_options.csv"),
        ("maksm05-deribit-fixtures", "snapshot_btc_surface.json"),
    ],
)
def test_other_priced_chains_fit(raw_data: Path, folder: str, name: str) -> None:
    chain = volcal.clean(volcal.read_chain(raw_data / folder / name))
    fit = volcal.calibrate(chain, "svi")
    assert fit.status == "ok"
    assert fit.rmse_vol <= 1.5 and fit.inside_spread >= 0.85


def test_tiny_chains_say_what_is_wrong(raw_data: Path) -> None:
    # five quotes, none two-sided and tight enough: a one-line error naming the reasons
    book = raw_data / "maksm05-deribit-fixtures" / "deribit_book_summary_btc_option.json"
    chain = volcal.clean(volcal.read_chain(book))
    with pytest.raises(DataError, match=r"no usable quotes .*missing_bid"):
        volcal.calibrate(chain, "svi")
    # two usable quotes on one expiry: a flat smile, said to be degraded
    few = volcal.clean(volcal.read_chain(raw_data / "tessicin-deribit" / "btc_options.csv"))
    with pytest.warns(CalibrationWarning, match="fewer than 3 strikes"):
        fit = volcal.calibrate(few, "svi")
    assert fit.status == "degraded"
