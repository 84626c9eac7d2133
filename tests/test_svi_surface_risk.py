"""The arbitrage-free SVI surface as the fitted vol source of the risk layer."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from test_svi_surface import DAYS, chain_of, true_surface

import volcal
from volcal.errors import CalibrationWarning, ParameterError
from volcal.models.svi import SVISurface
from volcal.risk.valuation import Market, SurfaceVols, SVIVols


@pytest.fixture(scope="module")
def chain():
    return chain_of(true_surface().smiles, DAYS, noise=0.002, seed=1)


def test_surface_vols_are_the_arbitrage_free_fit(chain) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CalibrationWarning)
        m = Market.from_chain(chain, vols="surface")
        fit = volcal.calibrate(chain, "svi_surface")
    assert m.vol_label == "svi_surface" and isinstance(m.vols, SurfaceVols)
    surf = fit.params
    assert isinstance(surf, SVISurface)
    # at a listed expiry: that slice; between expiries: the surface's own interpolation
    for t in (surf.t[2], 0.5 * (surf.t[2] + surf.t[3]), 1.5 * surf.t[-1]):
        strikes = float(m.curve(t)) * np.exp(np.array([-0.3, 0.0, 0.2]))
        k = np.log(strikes / m.curve(t))
        np.testing.assert_allclose(
            m.iv(strikes, t), np.sqrt(surf.total_variance(k, t) / t), rtol=1e-12
        )
    # the same from the CalibrationResult, and the free slices still by option
    assert isinstance(Market.from_chain(chain, vols=fit).vols, SurfaceVols)
    free = Market.from_chain(chain, vols="svi")
    assert free.vol_label == "svi" and isinstance(free.vols, SVIVols)
    with pytest.raises(ParameterError, match="'surface'"):
        Market.from_chain(chain, vols="nope")


# ---------------------------------------------------------------------- hedging default
def test_hedging_defaults_to_sticky_delta_on_the_arbitrage_free_surface() -> None:
    """Snapshots whose smile is a fixed function of ln(K/F) (sticky moneyness): the
    default evaluation is marks (sticky strike) against the surface's sticky delta, the
    surface hedge wins, and the free slices are still available by name."""
    import inspect

    from risk_helpers import synthetic_chain

    from volcal.risk import hedging_errors

    assert inspect.signature(hedging_errors).parameters["models"].default == (
        "black",
        "svi_surface",
    )
    snaps = ["2026-01-07T08:00Z", "2026-01-07T14:00Z", "2026-01-07T20:00Z"]
    chains = [
        synthetic_chain(index=i, snapshot=s)
        for i, s in zip((95_000.0, 96_000.0, 94_000.0), snaps, strict=True)
    ]
    ev = hedging_errors(chains)
    assert ev.models == ("black", "svi_surface")
    tab = ev.table(("model",)).set_index("model")
    assert tab.loc["svi_surface", "rms_hedged_usd"] < 0.6 * tab.loc["black", "rms_hedged_usd"]
    both = hedging_errors(chains, ("svi", "svi_surface")).table(("model",)).set_index("model")
    assert both.loc["svi_surface", "n"] >= both.loc["svi", "n"] > 50
    # on this smooth smile the constraints barely move the slices: the same hedge quality
    ratio = both.loc["svi_surface", "rms_hedged_usd"] / both.loc["svi", "rms_hedged_usd"]
    assert 0.8 < ratio < 1.25


def test_surface_sticky_delta_is_the_derivative_of_the_value_with_the_smile_moving() -> None:
    """Delta_sticky-delta = dV/dF with sigma = sigma(ln(K/F), T) of the fitted surface
    moving with F: central differences of Black at the surface's vol agree."""
    from risk_helpers import synthetic_chain

    from volcal.black import price
    from volcal.risk.hedging import _surface_sticky_delta

    ch = synthetic_chain()
    rows = np.flatnonzero(np.isfinite(ch.mark) & (ch.t * 365 > 2))[::7]
    f = ch.underlying_price[rows]
    d = _surface_sticky_delta(ch, rows, f)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CalibrationWarning)
        surf = volcal.calibrate(ch, "svi_surface").params
    strike, t, call = ch.strike[rows], ch.t[rows], ch.is_call[rows]

    def value(ff):
        w = surf.total_variance(np.log(strike / ff), t)
        return price(ff, strike, t, np.sqrt(w / t), call)

    h = 1e-4 * f
    num = (value(f + h) - value(f - h)) / (2 * h)
    assert np.all(np.isfinite(d))
    np.testing.assert_allclose(d, num, atol=1e-6, rtol=1e-5)


def test_cli_vols_surface_and_bad_vols(tmp_path, capsys) -> None:
    """``--vols surface`` values the book on the arbitrage-free surface; an unknown
    source is a one-line error with exit code 2."""
    import json

    import pandas as pd
    from cli_helpers import cli_json
    from risk_helpers import synthetic_chain

    from volcal.cli import main

    lin = synthetic_chain("linear")
    pd.DataFrame(
        {
            "instrument": lin.instrument,
            "underlying": "BTC",
            "expiry": pd.to_datetime(lin.expiry).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "strike": lin.strike,
            "is_call": lin.is_call,
            "bid": lin.bid,
            "ask": lin.ask,
            "mark": lin.mark,
            "forward": lin.forward,
            "mark_iv": lin.mark_iv,
        }
    ).to_csv(tmp_path / "chain.csv", index=False)
    book = tmp_path / "book.json"
    book.write_text(json.dumps([{"instrument": "BTC_USDC-27MAR26-105000-C", "size": -2}]))
    common = ["--chain", str(tmp_path / "chain.csv"), "--snapshot", "2026-01-07T08:00Z"]
    margins = {}
    for vols in ("mark", "surface", "svi"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CalibrationWarning)
            assert main(["margin", str(book), *common, "--vols", vols, "--json"]) == 0
        margins[vols] = cli_json(capsys.readouterr().out)["initial_usd"]
    # the synthetic marks are Black at a smooth smile: every source gives about the same
    assert margins["surface"] == pytest.approx(margins["mark"], rel=0.05)
    assert main(["risk", str(book), *common, "--vols", "nope"]) == 2
    err = capsys.readouterr().err
    assert "--vols must be mark, surface or svi" in err and "Traceback" not in err
