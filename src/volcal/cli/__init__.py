"""The ``volcal`` command line (Typer + Rich).

Each topic registers its commands in its own module; this module wires them and runs
the app so that a user mistake prints one line and exits non-zero, never a traceback,
and a library warning prints as one ``warning:`` line on stderr (no source line).
"""

from __future__ import annotations

import importlib
import re
import sys
import warnings
from pathlib import Path
from typing import Any

from volcal.cli._app import app, err_console
from volcal.errors import VolcalError

# command modules, imported for their registrations (order = order in --help)
_COMMAND_MODULES = (
    "volcal.cli.demo",
    "volcal.cli.chain",
    "volcal.cli.compare",
    "volcal.cli.fetch",
    "volcal.cli.riskparams",
    "volcal.cli.risk",
    "volcal.cli.surface",
    "volcal.cli.venues",
    "volcal.cli.store",
    "volcal.cli.stream",
    "volcal.cli.serve",
)

#: command name -> the module of _COMMAND_MODULES that registers it: a command line that
#: names one of these imports only that module (the others and their Click commands cost
#: ~0.05 s of start-up); any other command line (``--help``, a mistyped or unlisted
#: command) imports them all, so a command missing here still works. Tests check every
#: entry against the registrations.
_COMMAND_HOME = {
    **dict.fromkeys(("quality", "calibrate", "snapshots"), "volcal.cli.chain"),
    **dict.fromkeys(("demo", "warmup"), "volcal.cli.demo"),
    "compare": "volcal.cli.compare",
    "fetch": "volcal.cli.fetch",
    **dict.fromkeys(
        ("var", "backtest", "calibrate-margin", "collateral", "rate-curve"),
        "volcal.cli.riskparams",
    ),
    **dict.fromkeys(("risk", "margin", "hedge"), "volcal.cli.risk"),
    "surface": "volcal.cli.surface",
    "venues": "volcal.cli.venues",
    **dict.fromkeys(("backfill", "audit", "history"), "volcal.cli.store"),
    **dict.fromkeys(("stream", "record"), "volcal.cli.stream"),
    "serve": "volcal.cli.serve",
}

# library argument names -> the command-line options that set them
_CLI_TERMS = (
    (
        re.compile(r"holds (\w+) and (\w+): pass currency=\.\.\."),
        r"holds \1 and \2: pass --currency \1 or \2",
    ),
    (re.compile(r"pass currency=(\.\.\.)?"), "pass --currency"),
    (re.compile(r"pass snapshot=(\.\.\.)?"), "pass --snapshot TIME"),
)


def cli_terms(message: str) -> str:
    """A library message in the command line's terms (``--currency``, not ``currency=``)."""
    for pattern, repl in _CLI_TERMS:
        message = pattern.sub(repl, message)
    return message


def _load_commands(name: str | None = None) -> None:
    """Import the command modules: only the one registering command ``name`` when
    :data:`_COMMAND_HOME` lists it, else all of them."""
    home = _COMMAND_HOME.get(name) if name is not None else None
    for mod in (home,) if home is not None else _COMMAND_MODULES:
        importlib.import_module(mod)


def _command_name(argv: list[str]) -> str | None:
    """The command ``argv`` runs (its first word that is no option: the root takes no
    option with a value), None for ``volcal --help`` / ``--version``."""
    return next((w for w in argv if not w.startswith("-")), None)


def _command(argv: list[str]) -> Any:
    """The Click command of ``app`` (what ``app()`` runs) with the commands ``argv`` may
    run, their plain parameters converted without pydantic (:mod:`volcal.cli._coerce`:
    ~0.1 s off every command's start-up). ``app`` has no pretty tracebacks to install, so
    running this is running ``app``."""
    import typer.main

    from volcal.cli import _coerce

    name = _command_name(argv)
    _load_commands(name)
    command = typer.main.get_command(app)
    if name is not None and name not in getattr(command, "commands", {}):  # table wrong
        _load_commands()
        command = typer.main.get_command(app)
    _coerce.install(command, argv)
    return command


def _one_line_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    text = " ".join(str(message).split())
    err_console.print(f"[yellow]warning:[/] {cli_terms(text)}", highlight=False, soft_wrap=True)


def _error(text: str) -> int:
    err_console.print(f"[bold red]error:[/] {cli_terms(text)}", highlight=False, soft_wrap=True)
    return 2


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``volcal`` script; returns the exit code.

    Typer handles usage errors itself (exit 2 with its usage message); errors volcal
    raises on purpose, and a missing or unreadable file, become one line on stderr.
    """
    command = _command(sys.argv[1:] if argv is None else argv)
    with warnings.catch_warnings():
        # scoped to this call: shown once each, as one line (restored on return)
        warnings.showwarning = _one_line_warning
        warnings.simplefilter("default")
        try:
            command.main(args=argv, prog_name="volcal", standalone_mode=True)
        except SystemExit as exc:
            code = exc.code
            return code if isinstance(code, int) else (0 if code is None else 1)
        except VolcalError as exc:
            return _error(str(exc))
        except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
            name = exc.filename
            if name is not None and Path(name).is_dir():
                return _error(f"{name} is a directory; pass a file")
            return _error(f"{exc.strerror}: {name}")
    return 0


#: commands whose process ends without the interpreter's finalisation once they are done
#: (:func:`run`): they leave no thread, child process, connection or open file behind
#: (their files are written and closed before they return). Tearing down pandas and
#: numba's registries would cost ~0.2-0.4 s of such a command's wall time.
_FAST_EXIT = frozenset({"calibrate", "quality", "snapshots", "surface"})


def _fast_exit(argv: list[str], code: int) -> None:
    """End the process now (``os._exit``) if ``argv`` runs a :data:`_FAST_EXIT` command:
    standard streams flushed, ``atexit`` functions run, then no module teardown. Returns
    (the interpreter then exits as usual) when anything is unusual: another thread, a
    stream that cannot be flushed (e.g. a closed pipe: the interpreter reports that as it
    always does), or no ``atexit._run_exitfuncs``."""
    import atexit
    import os
    import threading

    run_exitfuncs = getattr(atexit, "_run_exitfuncs", None)
    if _command_name(argv) not in _FAST_EXIT or run_exitfuncs is None:
        return
    if threading.active_count() > 1:
        return
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        return
    run_exitfuncs()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        return
    os._exit(code)


def run() -> None:  # pragma: no cover - thin wrapper for `python -m volcal`
    code = main()
    _fast_exit(sys.argv[1:], code)
    sys.exit(code)


__all__ = ["app", "cli_terms", "main", "run"]
