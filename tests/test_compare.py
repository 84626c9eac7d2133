"""Model comparison: ``volcal.compare_models``, the ``compare`` command and its report."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import cli_json

import volcal
from volcal.calibration.compare import bucket_labels, compare_models
from volcal.cli import main
from volcal.errors import CalibrationWarning, ParameterError
from volcal.synthetic import synthetic_chain

MODELS = ["svi", "heston", "merton"]


@pytest.fixture(scope="module")
def chain():
    """A cleaned synthetic Heston chain (9 expiries, 2 days to 1 year, bid-ask noise)."""
    return volcal.clean(synthetic_chain(seed=3))


@pytest.fixture(scope="module")
def cmp(chain):
    return compare_models(chain, MODELS)


def test_buckets_partition_the_quotes_and_recombine_to_the_totals(cmp):
    assert cmp.bucket_labels == ("<7d", "7-30d", "30-90d", ">90d")
    for f in cmp.fits:
        r = f.result
        assert r is not None and r.status == "ok"
        n = np.array([b["n"] for b in f.buckets.values()])
        assert n.sum() == r.n_used and np.all(n > 0)
        rmse = np.array([b["rmse_vol"] for b in f.buckets.values()])
        inside = np.array([b["inside_spread"] for b in f.buckets.values()])
        # the bucket figures are a partition of the overall ones
        assert np.sqrt(np.sum(n * rmse**2) / n.sum()) == pytest.approx(r.rmse_vol, rel=1e-12)
        assert np.sum(n * inside) / n.sum() == pytest.approx(r.inside_spread, rel=1e-12)
        # and each bucket is the RMSE of exactly its quotes
        days = 365 * r.quotes.t
        short = days < 7
        assert f.buckets["<7d"]["rmse_vol"] == pytest.approx(
            100 * np.sqrt(np.mean(r.residuals[short] ** 2)), rel=1e-12
        )
        assert f.wall_s >= r.elapsed_s > 0


def test_the_generating_model_wins(cmp):
    """The chain is Heston with bid-ask noise: Heston and the per-expiry SVI fit inside the
    spread; Merton (constant-parameter jumps) cannot produce the term structure."""
    t = cmp.table()
    assert list(t.index) == MODELS
    assert t.loc["heston", "inside_spread"] > 0.95
    assert t.loc["svi", "inside_spread"] > 0.95
    assert t.loc["merton", "rmse_vol"] > 3 * t.loc["heston", "rmse_vol"]
    assert cmp["heston"].result.params.rho < 0
    text = cmp.summary()
    assert all(m in text for m in MODELS) and "30-90d" in text


def test_to_dict_is_json_safe_and_complete(cmp):
    d = json.loads(json.dumps(cmp.to_dict(), allow_nan=False))
    assert d["underlying"] == "BTC" and d["buckets"] == list(cmp.bucket_labels)
    for m in d["models"]:
        assert {"model", "status", "rmse_vol", "inside_spread", "n_used", "elapsed_s"} <= set(m)
        assert set(m["buckets"]) == set(d["buckets"])
        assert m["slices"] and {"expiry", "rmse_vol", "rr25", "bf25", "atm_vol"} <= set(
            m["slices"][0]
        )
    heston = next(m for m in d["models"] if m["model"] == "heston")
    assert set(heston["params"]) >= {"v0", "kappa", "theta", "xi", "rho"}


def test_a_model_that_cannot_be_fitted_is_reported_not_raised(chain):
    from volcal.calibration.quotes import as_quotes

    q = as_quotes(chain)
    few = q.subset(np.arange(len(q)) < 9)  # 9 quotes: SVCJ has 10 parameters
    calls = []
    with pytest.warns(CalibrationWarning, match="svcj error"):
        out = compare_models(
            few, ["heston", "svcj"], progress=lambda m, i, n: calls.append((m, i, n))
        )
    assert out["svcj"].result is None and "cannot determine" in out["svcj"].error
    assert out["svcj"].to_dict()["status"] == "error"
    assert out["heston"].result is not None
    assert calls == [("heston", 0, 2), ("svcj", 1, 2), ("", 2, 2)]
    assert "error" in out.summary()


def test_bad_arguments_raise_parameter_errors(chain):
    with pytest.raises(ParameterError, match="unknown model"):
        compare_models(chain, ["heston", "sabrina"])
    with pytest.raises(ParameterError, match="twice"):
        compare_models(chain, ["heston", "heston"])
    with pytest.raises(ParameterError, match="increasing"):
        compare_models(chain, ["svi"], buckets=[30, 7])
    with pytest.raises(ParameterError, match="no model"):
        compare_models(chain, [])
    assert bucket_labels([1, 2.5]) == ("<1d", "1-2.5d", ">2.5d")
    assert bucket_labels([]) == ("all",)


# -------------------------------------------------------------------------------- CLI
@pytest.fixture(scope="module")
def table(quote_table: Path) -> Path:
    return quote_table


def test_compare_json_and_self_contained_report(
    table: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rep = tmp_path / "cmp.html"
    capsys.readouterr()
    assert (
        main(["compare", str(table), "--models", "svi,heston", "--json", "--report", str(rep)]) == 0
    )
    d = cli_json(capsys.readouterr().out)
    assert [m["model"] for m in d["models"]] == ["svi", "heston"]
    assert d["buckets"] == ["<7d", "7-30d", "30-90d", ">90d"]
    assert d["report"] == str(rep) and d["total_elapsed_s"] > 0
    page = rep.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"<script[^>]*\bsrc=", page)  # plotly inlined: works offline
    assert page.count("<script") >= 2  # plotly.js once + the figure
    n_exp = len(d["models"][0]["slices"])
    # one bid-ask trace, one mark trace and one smile per model for every expiry
    assert page.count('"name":"heston"') == n_exp
    assert page.count('"name":"bid-ask vol"') == n_exp
    assert "Fit by expiry bucket" in page and "25-delta RR" in page


def test_compare_table_and_custom_buckets(table: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["compare", str(table), "--models", "svi,sabr", "--buckets", "14,60"]) == 0
    out = capsys.readouterr().out
    assert "<14d" in out and "14-60d" in out and ">60d" in out
    assert "svi" in out and "sabr" in out and "model comparison" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--models", "heston,nope"], "unknown model 'nope'"),
        (["--models", ","], "--models is empty"),
        (["--buckets", "7,x"], "--buckets must be"),
        (["--buckets", "30,7"], "increasing"),
        (["--max-time", "0"], "--max-time"),
    ],
)
def test_user_mistakes_give_one_line(
    table: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    capsys.readouterr()
    assert main(["compare", str(table), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "Traceback" not in err and len(err.splitlines()) == 1


def test_missing_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["compare", str(tmp_path / "nope.csv")]) == 2
    err = capsys.readouterr().err
    assert "nope.csv" in err and len(err.strip().splitlines()) == 1


@pytest.mark.data
def test_compare_real_snapshot(snapshot_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A real ETH chain with the stochastic-vol models: the jump model fits short expiries
    better than Heston (the reason to offer it), and every model is priced by the grid."""
    snap = snapshot_dir / "deribit_options_snapshot_20260819T094232Z.csv"
    capsys.readouterr()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        code = main(["compare", str(snap), "-c", "ETH", "--models", "svi,heston,bates", "--json"])
    assert code == 0
    d = cli_json(capsys.readouterr().out)
    by = {m["model"]: m for m in d["models"]}
    assert all(m["status"] in ("ok", "max_iter") for m in by.values())
    assert by["bates"]["buckets"]["<7d"]["rmse_vol"] < by["heston"]["buckets"]["<7d"]["rmse_vol"]
    assert by["svi"]["rmse_vol"] < by["bates"]["rmse_vol"] < by["heston"]["rmse_vol"]
