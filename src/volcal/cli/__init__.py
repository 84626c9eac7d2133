"""The ``volcal`` command line (Typer + Rich).

Each topic registers its commands in its own module; this module wires them and runs
the app so that a user mistake prints one line and exits non-zero, never a traceback.
"""

from __future__ import annotations

import importlib
import sys

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
    "volcal.cli.store",
    "volcal.cli.stream",
    "volcal.cli.serve",
)


def _load_commands() -> None:
    for mod in _COMMAND_MODULES:
        importlib.import_module(mod)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``volcal`` script; returns the exit code.

    Typer handles usage errors itself (exit 2 with its usage message); errors volcal
    raises on purpose, and a missing or unreadable file, become one line on stderr.
    """
    _load_commands()
    try:
        app(args=argv, prog_name="volcal", standalone_mode=True)
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except VolcalError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        return 2
    except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
        err_console.print(
            f"[bold red]error:[/] {exc.strerror}: {exc.filename}", highlight=False, soft_wrap=True
        )
        return 2
    return 0


def run() -> None:  # pragma: no cover - thin wrapper for `python -m volcal`
    sys.exit(main())


__all__ = ["app", "main", "run"]
