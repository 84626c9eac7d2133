"""``volcal history``: series, stability table, DVOL comparison and the HTML report,
checked against the stored numbers (a small store of synthetic chains along time)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from cli_helpers import cli_json

import volcal
import volcal.store as vs
from volcal.cli import main
from volcal.history.analytics import dvol_at, history, read_dvol
from volcal.synthetic import synthetic_chain

TIMES = ("2026-03-02T09:00:00Z", "2026-03-02T15:00:00Z", "2026-03-03T09:00:00Z",
         "2026-03-04T09:30:00Z")  # fmt: skip


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("hist") / "h.duckdb"
    with vs.open(path) as st:
        prev = None
        for i, t in enumerate(TIMES):
            ch = volcal.clean(synthetic_chain(snapshot=t, seed=10 + i, days=(7, 30, 60, 120)))
            sid = st.add_snapshot(ch, metrics={"vol_index_30d": 50.0 + i})
            fit = volcal.calibrate(ch, "heston", start=prev)
            st.add_calibration(fit, sid, settings={}, warm_start=prev)
            reg = volcal.calibrate(ch, "heston", prior=prev, strength=0.5) if prev else fit
            st.add_calibration(reg, sid, settings={"strength": 0.5}, warm_start=prev)
            st.add_calibration(volcal.calibrate(ch, "svi"), sid, settings={})
            prev = fit.params
    return path


def test_series_and_stability_match_the_store(store):
    h = history(store, "heston")
    assert h.params == ("kappa", "rho", "theta", "v0", "xi")
    assert len(h.series) == 2 * len(TIMES)
    assert set(h.series["settings_label"]) == {"default", "strength=0.5"}
    with vs.open(store, read_only=True) as st:
        cal = st.calibrations(model="heston", settings_hash=vs.settings_hash({}))
    s = h.series[h.series["settings_label"] == "default"].sort_values("snapshot_time")
    assert np.array_equal(s["p_kappa"].to_numpy(), cal["p_kappa"].to_numpy())
    # stability = median of |x_t - x_{t-1}| / |x_{t-1}| over the ok fits
    v = s["p_kappa"].to_numpy()
    expect = float(np.median(np.abs(np.diff(v)) / np.abs(v[:-1])))
    row = h.stability[(h.stability["parameter"] == "kappa")
                      & (h.stability["settings"] == "default")].iloc[0]  # fmt: skip
    assert row["median_rel_change"] == pytest.approx(expect, rel=1e-12)
    assert row["steps"] == len(TIMES) - 1
    # regularization toward the previous fit moves the parameters less
    reg = h.stability[(h.stability["parameter"] == "kappa")
                      & (h.stability["settings"] == "strength=0.5")].iloc[0]  # fmt: skip
    assert reg["median_rel_change"] <= row["median_rel_change"]
    # the 30-day observables come from the stored conventions
    assert s["atm_30d"].between(0.2, 1.5).all()
    last = h.latest_term()
    lt = last[last["settings"] == "default"]
    assert list(lt["tenor_days"]) == list(vs.records.CONVENTION_TENORS)
    assert lt[lt["tenor_days"] == 30]["atm"].iloc[0] == s["atm_30d"].iloc[-1]
    json.dumps(h.to_dict(), allow_nan=False)


def test_dvol_comparison(store, tmp_path):
    hours = pd.date_range("2026-03-01", "2026-03-05", freq="h", tz="UTC")
    # DVOL rises 0.01 vol points per hour from 48: the index (50 + i) minus it is known
    dv = pd.DataFrame(
        {"timestamp": hours.astype(str), "iv": (48.0 + 0.01 * np.arange(len(hours))) / 100}
    )
    f = tmp_path / "dvol.csv"
    dv.to_csv(f, index=False)
    s = read_dvol(f)
    t = pd.Timestamp(TIMES[3])
    hrs = (t - hours[0]) / pd.Timedelta(hours=1)
    assert dvol_at(s, [t])[0] == pytest.approx(48.0 + 0.01 * hrs, abs=1e-9)
    h = history(store, "heston", dvol=f)
    gaps = []
    for i, ts in enumerate(TIMES):
        hrs = (pd.Timestamp(ts) - hours[0]) / pd.Timedelta(hours=1)
        gaps.append(50.0 + i - (48.0 + 0.01 * hrs))
    assert h.dvol_stats["n"] == len(TIMES)
    assert h.dvol_stats["bias"] == pytest.approx(np.mean(gaps), abs=1e-9)
    assert h.dvol_stats["mean_abs_gap"] == pytest.approx(np.mean(np.abs(gaps)), abs=1e-9)
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(volcal.errors.DataError, match="timestamp and iv"):
        read_dvol(bad)


def test_report_draws_the_series(store, tmp_path):
    from volcal.report.history import history_figures, write_history_report

    h = history(store, "heston")
    figs = history_figures(h)
    assert {"parameters", "atm", "rr25", "bf25", "quality", "index"} <= set(figs)
    s = h.series[h.series["settings_label"] == "default"].sort_values("snapshot_time")
    tr = next(t for t in figs["parameters"].data if t.name == "BTC default kappa")
    assert np.array_equal(np.asarray(tr.y, dtype=float), s["p_kappa"].to_numpy())
    band = next(t for t in figs["parameters"].data if t.name == "BTC default kappa 95% band")
    hi = np.asarray(band.y[: len(s)], dtype=float)
    assert np.allclose(hi, s["p_kappa"] + 1.96 * s["se_kappa"])
    atm = next(t for t in figs["atm"].data if t.name == "BTC default 30d")
    assert np.allclose(np.asarray(atm.y, dtype=float), 100 * s["atm_30d"].to_numpy())
    out = write_history_report(h, tmp_path / "h.html")
    text = out.read_text()
    assert text.startswith("<!DOCTYPE html>") and "Stability" in text


def test_cli_history(store, tmp_path, capsys):
    assert main(["history", str(store), "--model", "heston"]) == 0
    out = capsys.readouterr().out
    assert "stability" in out and "kappa" in out and "term structure of the last fit" in out
    assert main(["history", str(store), "--model", "svi", "--csv"]) == 0
    df = pd.read_csv(__import__("io").StringIO(capsys.readouterr().out))
    assert len(df) == len(TIMES) and "atm_30d" in df.columns
    report = tmp_path / "r.html"
    assert main(["history", str(store), "-m", "heston", "--report", str(report), "--json"]) == 0
    assert cli_json(capsys.readouterr().out)["model"] == "heston" and report.exists()
    assert main(["history", str(store), "--model", "bates"]) == 2
    assert "no stored bates calibrations" in capsys.readouterr().err
    assert main(["history", str(tmp_path / "none.duckdb")]) == 2
    assert "no store at" in capsys.readouterr().err


def test_audit_regularized_warm_fit_and_tolerance(store, tmp_path):
    import shutil

    import duckdb

    from volcal.store.audit import audit

    h = history(store, "heston")
    reg = h.series[(h.series["settings_label"] == "strength=0.5") & h.series["warm_start"].notna()]
    cid = reg["id"].iloc[-1]
    res = audit(store, cid)  # prior = the stored warm start, strength from the settings
    assert res.verdict == "bit-for-bit", res.summary()
    # a last-bits difference is within the stated tolerance, a larger one is not
    copy = tmp_path / "t.duckdb"
    shutil.copy(store, copy)
    con = duckdb.connect(str(copy))
    p = json.loads(con.execute("SELECT params FROM calibrations WHERE id = ?", [cid]).fetchone()[0])
    p["kappa"] *= 1 + 1e-9
    con.execute("UPDATE calibrations SET params = ? WHERE id = ?", [json.dumps(p), cid])
    con.close()
    near = audit(copy, cid)
    assert near.verdict == "within tolerance" and near.worst_param == "kappa"
    assert near.max_rel_diff == pytest.approx(1e-9, rel=1e-3)
    assert audit(copy, cid, rtol=1e-12).verdict == "not reproduced"
