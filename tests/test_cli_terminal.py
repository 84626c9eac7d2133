"""The command line fits the terminal: short help and --version, tables that never cut
a number (80 columns, pipes), errors and warnings as one line in CLI terms, the same
--json envelope on every command, and the snapshots a file holds."""

from __future__ import annotations

import json
import re
import warnings

import pytest
from cli_helpers import ENVELOPE, cli_json

import volcal
from volcal.cli import _app, cli_terms, main

SNAP = "deribit_options_snapshot_20260107T092155Z.csv"


def _run(capsys, argv):
    capsys.readouterr()
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_short_help_and_version(capsys) -> None:
    code, out, _ = _run(capsys, ["-h"])
    assert code == 0 and "calibrate" in out and "snapshots" in out and "warmup" in out
    code, out, _ = _run(capsys, ["calibrate", "-h"])
    assert code == 0 and "--currency" in out
    code, out, _ = _run(capsys, ["--version"])
    assert code == 0 and out.strip() == f"volcal {volcal.__version__}"


def test_var_keeps_its_horizon_option(tmp_path, capsys) -> None:
    # -h is help everywhere except where a command uses it itself (var: horizon)
    import numpy as np

    t = np.datetime64("2020-01-01", "D") + np.arange(400)
    p = 100 * np.exp(np.cumsum(np.random.default_rng(1).normal(0, 0.02, 400)))
    f = tmp_path / "p.csv"
    f.write_text("date,close\n" + "".join(f"{d},{x:.5f}\n" for d, x in zip(t, p, strict=True)))
    code, out, _ = _run(capsys, ["var", str(f), "-h", "2d", "--json"])
    assert code == 0 and cli_json(out, "var")["results"][0]["horizon"] == "2d"


@pytest.mark.parametrize("width", [80, 60])
def test_no_table_cuts_a_number(quote_table, capsys, monkeypatch, width) -> None:
    monkeypatch.setattr(_app.console, "width", width)
    code, out, _ = _run(capsys, ["calibrate", str(quote_table), "--json"])
    fit = cli_json(out)
    code, out, _ = _run(capsys, ["calibrate", str(quote_table)])
    assert code == 0
    assert "…" not in out
    assert max(len(line) for line in out.splitlines()) <= width
    cells = set(re.findall(r"[-+]?\d+\.\d+%?", out))
    for s in fit["slices"]:
        # every figure of the fit appears whole (RMSE to 3 decimals, vols to 2)
        assert f"{s['rmse_vol']:.3f}" in cells
        assert f"{100 * s['atm_vol']:.2f}" in cells
        assert f"{100 * s['bf25']:.2f}" in cells
    code, out, _ = _run(capsys, ["quality", str(quote_table)])
    assert code == 0 and "…" not in out


def test_every_json_document_has_the_same_envelope(quote_table, tmp_path, capsys) -> None:
    docs = {}
    for argv in (
        ["quality", str(quote_table), "--json"],
        ["calibrate", str(quote_table), "--json"],
        ["snapshots", str(quote_table), "--json"],
        ["surface", str(quote_table), "--model", "ssvi", "--json"],
    ):
        code, out, err = _run(capsys, argv)
        assert code == 0, err
        doc = json.loads(out)
        assert set(doc) == ENVELOPE
        assert doc["command"] == argv[0] and doc["schema_version"] == 1
        assert "rmse_vol" in doc["units"] and "t" in doc["units"]
        docs[argv[0]] = doc["result"]
    assert docs["snapshots"]["underlyings"][0]["snapshots"]


def test_surface_reports_the_cleaned_chain_it_fitted(quote_table, capsys) -> None:
    _, out, _ = _run(capsys, ["surface", str(quote_table), "--model", "ssvi", "--json"])
    d = cli_json(out, "surface")
    q = d["quality"]
    assert 0 < d["fit"]["n_used"] <= q["n_used"] < q["n_quotes"]
    _code, out, _ = _run(capsys, ["surface", str(quote_table), "--model", "ssvi"])
    assert f"fitted {d['fit']['n_used']} of {q['n_quotes']} quotes" in out
    assert f"{q['n_excluded']} excluded" in out


def test_errors_are_one_line_in_cli_terms(tmp_path, capsys) -> None:
    assert cli_terms("x.csv: file holds BTC and ETH: pass currency=...") == (
        "x.csv: file holds BTC and ETH: pass --currency BTC or ETH"
    )
    assert "--snapshot" in cli_terms("no snapshot time: pass snapshot=...")
    code, _, err = _run(capsys, ["quality", str(tmp_path)])
    assert code == 2
    assert err.strip() == f"error: {tmp_path} is a directory; pass a file"
    code, _, err = _run(capsys, ["calibrate", str(tmp_path / "missing.csv")])
    assert code == 2 and len(err.strip().splitlines()) == 1 and "missing.csv" in err


def test_a_library_warning_is_one_line(quote_table, capsys, monkeypatch) -> None:
    from volcal.errors import CalibrationWarning

    real = volcal.calibrate

    def warns(*args, **kwargs):
        warnings.warn("xi at its upper bound\n  (10)", CalibrationWarning, stacklevel=2)
        return real(*args, **kwargs)

    monkeypatch.setattr(volcal, "calibrate", warns)
    code, _, err = _run(capsys, ["calibrate", str(quote_table)])
    assert code == 0
    lines = [x for x in err.splitlines() if x.strip()]
    assert lines == ["warning: xi at its upper bound (10)"]


def test_missing_data_dir_is_an_error(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("VOLCAL_DATA_DIR", str(tmp_path / "nowhere"))
    code, _, err = _run(capsys, ["demo", "--report", str(tmp_path / "d.html")])
    assert code == 2
    assert "VOLCAL_DATA_DIR" in err and "does not exist" in err and len(err.splitlines()) == 1


@pytest.mark.data
def test_real_snapshot_with_two_underlyings_names_the_option(snapshot_dir, capsys) -> None:
    path = snapshot_dir / SNAP
    code, out, err = _run(capsys, ["calibrate", str(path), "--model", "heston", "--json"])
    assert code == 2 and out == ""
    assert err.strip() == f"error: {SNAP}: file holds BTC and ETH: pass --currency BTC or ETH"
    code, out, _ = _run(capsys, ["snapshots", str(path), "--json"])
    listing = cli_json(out, "snapshots")["underlyings"]
    assert [u["underlying"] for u in listing] == ["BTC", "ETH"]


@pytest.mark.data
def test_snapshots_lists_a_multi_snapshot_file(raw_data, capsys) -> None:
    path = raw_data / "r1quant-deribit-iv" / "full_data_sample.csv"
    code, out, _ = _run(capsys, ["snapshots", str(path), "--json"])
    (entry,) = cli_json(out, "snapshots")["underlyings"]
    snaps = entry["snapshots"]
    assert len(snaps) > 10 and snaps == sorted(snaps) and entry["default"] == snaps[-1]
    code, out, _ = _run(capsys, ["snapshots", str(path)])
    assert code == 0 and snaps[0][:19] in out and "--snapshot" in out
    # every listed snapshot reads
    chain = volcal.read_chain(path, snapshot=snaps[0])
    assert chain.snapshot.isoformat() == snaps[0]


@pytest.mark.data
def test_demo_names_the_full_path_of_its_snapshot(raw_data, tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("VOLCAL_DATA_DIR", str(raw_data.parent))
    report = tmp_path / "demo.html"
    code, out, _ = _run(capsys, ["demo", "--source", "data", "--report", str(report)])
    assert code == 0
    full = str((raw_data / "svcj-deribit-snapshots" / SNAP).resolve())
    # whole on one line, so it can be copied
    assert f"data: real Deribit snapshot {full} (BTC)" in out.splitlines()
    assert f"report written to {report.resolve()}" in out.splitlines()


def _terminal(monkeypatch, *modules):
    import io

    from rich.console import Console

    buf = io.StringIO()
    con = Console(file=buf, force_terminal=True, width=100)
    for mod in modules:
        monkeypatch.setattr(mod, "err_console", con)
    return buf


def test_long_commands_show_progress_on_stderr(quote_table, tmp_path, capsys, monkeypatch):
    import numpy as np

    import volcal.cli.chain as chain_cli
    import volcal.cli.riskparams as rp_cli
    import volcal.cli.surface as surface_cli

    buf = _terminal(monkeypatch, chain_cli, surface_cli, rp_cli)
    code, out, _ = _run(capsys, ["calibrate", str(quote_table), "--json"])
    assert code == 0 and cli_json(out, "calibrate")  # stdout stays one JSON document
    assert "calibrating svi" in buf.getvalue()
    code, _, _ = _run(capsys, ["surface", str(quote_table), "--model", "ssvi", "--json"])
    # (each step's label shows at the next refresh; the first one always does)
    assert code == 0 and f"reading and cleaning {quote_table.name}" in buf.getvalue()
    t = np.datetime64("2020-01-01", "D") + np.arange(400)
    p = 100 * np.exp(np.cumsum(np.random.default_rng(2).normal(0, 0.02, 400)))
    f = tmp_path / "p.csv"
    f.write_text("date,close\n" + "".join(f"{d},{x:.5f}\n" for d, x in zip(t, p, strict=True)))
    code, out, _ = _run(capsys, ["backtest", str(f), "--window", "250", "--json"])
    assert code == 0 and cli_json(out, "backtest")
    assert "HS backtest" in buf.getvalue()
