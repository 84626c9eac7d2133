"""The CLI's pydantic-free parameter conversion (volcal.cli._coerce) against Typer's own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer.main

from volcal.cli import _coerce, _load_commands, app, main

_coercion = pytest.importorskip("typer._coercion")
_click = pytest.importorskip("typer._click")

# command-line text a user may type for each leaf type, good and bad
SAMPLES: dict[Any, list[Any]] = {
    str: ["abc", "", "-x", "ünï code", "1.5"],
    int: ["3", "-2", "+7", "007", "3.0", "1_000", " 4", "abc", "", "9" * 30],
    float: ["1.5", "-2e-3", ".5", "5.", "1E3", "+0", "nan", "inf", "-Infinity", "1,5", "abc", ""],
    bool: [True, False, "true", "no", "maybe"],
}


def _tree() -> Any:
    _load_commands()
    return typer.main.get_command(app)


def _params(command: Any) -> list[tuple[Any, Any]]:
    out, stack = [], [command]
    while stack:
        cmd = stack.pop()
        stack.extend(getattr(cmd, "commands", {}).values())
        out += [(cmd, p) for p in cmd.params if hasattr(p, "type_descriptor")]
    return out


def _outcome(rp: Any, value: Any, param: Any, ctx: Any) -> tuple[str, Any]:
    try:
        return "ok", rp.coerce(value, param=param, ctx=ctx)
    except _click.exceptions.BadParameter as exc:
        return "error", exc.format_message()


def test_every_parameter_of_the_cli_gets_the_plain_converter() -> None:
    command = _tree()
    params = _params(command)
    n = _coerce.install(command)
    # every parameter of volcal's commands is a plain one, plus one --help per command
    assert n >= len(params) > 100
    assert all(type(p._runtime_param).__name__ == "PlainRuntimeParam" for _, p in params)


def test_conversions_equal_typers_own(tmp_path: Path) -> None:
    """Same value or same error message as Typer's pydantic adapter, for every
    parameter and every sample (paths: an existing file, a directory, a missing one)."""
    existing = tmp_path / "chain.csv"
    existing.write_text("x\n")
    paths = [str(existing), str(tmp_path), str(tmp_path / "missing.csv"), "-", "rel/a b.csv"]
    command = _tree()
    _coerce.install(command)
    checked = 0
    for cmd, param in _params(command):
        desc = param.type_descriptor
        leaf = _coerce._plain_leaf(desc.annotation, desc.parameter_info)
        assert leaf is not None
        samples = paths if leaf is Path else SAMPLES[leaf]
        if desc.is_list:
            samples = [(s,) for s in samples] + [tuple(samples[:2]), ()]
        ctx = _click.Context(cmd)
        theirs = _coercion.build_runtime_param(desc)
        for value in [*samples, None]:
            ours = _outcome(param._runtime_param, value, param, ctx)
            want = _outcome(theirs, value, param, ctx)
            # repr: nan == nan, and int 3 is not float 3.0
            assert repr(ours) == repr(want), (cmd.name, param.name, value)
            checked += 1
    assert checked > 500


def test_only_the_command_run_is_prepared() -> None:
    command = _tree()
    n_root = _coerce.install(command, [])  # `volcal` / `volcal --help`: the group's own
    assert 0 < n_root <= 3
    calibrate = command.commands["calibrate"]
    n = _coerce.install(command, ["calibrate", "x.csv", "--model", "heston"])
    assert n == len(calibrate.params) + 1  # its options and arguments, and its --help
    assert command.commands["quality"].params[0]._runtime_param is None  # untouched


def test_a_command_runs_without_importing_pydantic(tmp_path: Path) -> None:
    """What the converter is for: a command's start-up does not import pydantic (~0.1 s)."""
    code = (
        "import sys\n"
        "from volcal.cli import main\n"
        f"code = main(['calibrate', {str(tmp_path / 'missing.csv')!r}, '--model', 'heston'])\n"
        "print(code, 'pydantic' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.split() == ["2", "False"]
    assert "No such file" in out.stderr


def test_bad_values_keep_typers_messages(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", "x.csv", "--max-time", "soon"]) == 2
    err = capsys.readouterr().err
    # Typer's (pydantic's) wording: the value went to Typer's own converter
    assert "Invalid value for '--max-time': Input should be a valid number" in err
