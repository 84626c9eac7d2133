"""README stays true: its Python examples and its command lines run as written on the
shared snapshot (``SNAPSHOT`` and ``PRICES.csv`` stand for real files of ../shared/data)."""

from __future__ import annotations

import re
import shlex
import warnings
from pathlib import Path

import pytest

from volcal.cli import main

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")
SNAP = "deribit_options_snapshot_20260107T092155Z.csv"
# not run here: fetch needs the network (none in the test environment); warmup is what
# `make test` runs before the suite
NOT_RUN = ("volcal fetch", "volcal warmup")


def _commands() -> list[str]:
    out = []
    for block in re.findall(r"```bash\n(.*?)```", README, re.S):
        for line in block.splitlines():
            cmd = line.split("  #")[0].strip()
            if cmd.startswith("volcal ") and not cmd.startswith(NOT_RUN):
                out.append(cmd)
    return out


def test_readme_has_examples() -> None:
    assert len(re.findall(r"```python\n", README)) >= 3
    assert len(_commands()) >= 12


@pytest.mark.data
def test_readme_python_examples_run(snapshot_dir: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(snapshot_dir)
    ns: dict = {}
    with warnings.catch_warnings():
        # the examples' own warnings (a far-wing pillar, a bound) are not failures here
        warnings.simplefilter("ignore")
        for i, block in enumerate(re.findall(r"```python\n(.*?)```", README, re.S)):
            exec(compile(block, f"README.md python block {i + 1}", "exec"), ns)
    assert "fit" in ns and "clean" in ns


@pytest.mark.data
@pytest.mark.parametrize("command", _commands())
def test_readme_command_runs(command, raw_data: Path, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)  # reports written by the examples land here
    monkeypatch.setenv("VOLCAL_DATA_DIR", str(raw_data.parent))
    (tmp_path / "examples").symlink_to(REPO / "examples")
    snapshot = raw_data / "svcj-deribit-snapshots" / SNAP
    prices = raw_data / "btctree-btc-power" / "btc_daily.csv"
    argv = [
        str(snapshot) if a == "SNAPSHOT" else str(prices) if a == "PRICES.csv" else a
        for a in shlex.split(command)[1:]
    ]
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 0, f"{command}: {err}"
    assert "Traceback" not in err
