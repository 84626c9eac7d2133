"""CLI: var / backtest / calibrate-margin / collateral through volcal.cli.main."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from cli_helpers import cli_json

from volcal.cli import main


@pytest.fixture
def prices_csv(tmp_path: Path) -> Path:
    rng = np.random.default_rng(21)
    n = 900
    t = np.datetime64("2020-01-01", "D") + np.arange(n)
    p = 100 * np.exp(np.cumsum(rng.normal(0, 0.03, n)))
    lines = ["date,close"] + [f"{d},{x:.6f}" for d, x in zip(t, p, strict=True)]
    lines.insert(50, lines[50])  # one duplicated row: reported, not silently used
    path = tmp_path / "prices.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_var_json(prices_csv: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["var", str(prices_csv), "--method", "hs,evt", "-h", "1d", "-h", "2d", "--json"])
    out = capsys.readouterr()
    assert code == 0
    doc = cli_json(out.out)
    assert doc["series"]["duplicates"] == 1
    assert [(r["horizon"], r["method"]) for r in doc["results"]] == [
        ("1d", "hs"),
        ("1d", "evt"),
        ("2d", "hs"),
        ("2d", "evt"),
    ]
    assert "duplicate" in out.err


def test_backtest_table_and_report(
    prices_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rep = tmp_path / "bt.html"
    code = main(
        [
            "backtest",
            str(prices_csv),
            "--method",
            "fhs",
            "--p",
            "0.01",
            "--window",
            "300",
            "--refit-every",
            "100",
            "--report",
            str(rep),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "rolling 99.00% VaR backtest" in out and "fhs" in out
    page = rep.read_text()
    # self-contained: plotly.js inline, no external script
    assert "<table" in page and "Plotly" in page and "<script src=" not in page


def test_calibrate_margin_and_collateral_json(
    prices_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(
            [
                "calibrate-margin",
                str(prices_csv),
                "--target",
                "0.99",
                "--horizon",
                "1d",
                "--window",
                "250",
                "--json",
            ]
        )
        == 0
    )
    doc = cli_json(capsys.readouterr().out)
    cal = doc["calibration"]
    assert cal["long"]["n_test"] + cal["long"]["n_train"] == 649
    assert 0 < cal["shock_down"] < 0.3
    assert (
        main(["collateral", str(prices_csv), "--method", "hs", "--slippage", "0.01", "--json"]) == 0
    )
    col = cli_json(capsys.readouterr().out)["collateral"]
    assert col["liquidation_threshold"] == pytest.approx((1 - col["var"]) * 0.99 / 1.05 - 0.02)


def test_user_errors_are_one_line(
    prices_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["var", str(prices_csv), "--method", "garch"]) == 2
    assert "hs, fhs, evt" in capsys.readouterr().err
    assert main(["var", str(prices_csv), "--strict"]) == 2
    assert "duplicate" in capsys.readouterr().err
    assert main(["calibrate-margin", str(prices_csv), "--horizon", "36h"]) == 2
    assert "multiple" in capsys.readouterr().err
    assert main(["var", str(tmp_path / "nope.csv")]) == 2
    assert main(["collateral", str(prices_csv), "--adv", "1e9"]) == 2
    assert "--size" in capsys.readouterr().err


def test_rate_curve_fit_and_targets(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # a noisy history from a known Aave-like curve: base 0, slope1 4 %, slope2 75 %, kink 80 %
    rng = np.random.default_rng(5)
    u = rng.uniform(0.05, 0.98, 300)
    rate = np.where(u <= 0.8, 0.04 * u / 0.8, 0.04 + 0.75 * (u - 0.8) / 0.2)
    rate = rate + rng.normal(0, 0.002, u.size)
    hist = tmp_path / "rates.csv"
    hist.write_text(
        "utilisation,rate\n" + "\n".join(f"{a},{b}" for a, b in zip(u, rate, strict=True))
    )
    assert main(["rate-curve", str(hist), "--json"]) == 0
    doc = cli_json(capsys.readouterr().out)
    m = doc["model"]
    assert abs(m["u_opt"] - 0.8) < 0.01 and abs(m["slope2"] - 0.75) < 0.03
    assert abs(m["slope1"] - 0.04) < 0.005 and doc["fit"]["n"] == 300
    # through targets: R(0) = 0, R(0.9) = 5 %, R(1) = 100 %
    args = ["--base", "0", "--at-optimal", "0.05", "--at-full", "1.0", "--u-opt", "0.9"]
    assert main(["rate-curve", *args, "--json"]) == 0
    curve = {round(r["utilisation"], 2): r for r in cli_json(capsys.readouterr().out)["curve"]}
    assert curve[0.9]["borrow"] == pytest.approx(0.05) and curve[1.0]["borrow"] == pytest.approx(
        1.0
    )
    assert curve[1.0]["supply"] == pytest.approx(1.0 * 0.9)  # reserve factor 10 %
    assert main(["rate-curve", *args]) == 0
    assert "kink" in capsys.readouterr().out
    # user mistakes: one line, exit 2
    assert main(["rate-curve", "--base", "0"]) == 2
    assert "--at-optimal" in capsys.readouterr().err
    bad = tmp_path / "bad.csv"
    bad.write_text("u,r\n0.1,0.01\n")
    assert main(["rate-curve", str(bad)]) == 2
    assert "utilisation" in capsys.readouterr().err
