"""The Typer application object and the shared console helpers of the CLI.

Command modules (``volcal.cli.<topic>``) import ``app`` from here and register their
commands; ``volcal.cli.main`` imports them all and runs the app with error handling
that turns every :class:`~volcal.errors.VolcalError` (and common user mistakes such
as a missing file) into one line on stderr and exit code 2.
"""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.console import Console

app = typer.Typer(
    name="volcal",
    help="Calibrate crypto-option markets: clean implied vols, smiles, models, surfaces, risk.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

console = Console()
err_console = Console(stderr=True)


def print_json(obj: Any) -> None:
    """Print one JSON document on stdout (no Rich markup, machine-readable)."""
    typer.echo(json.dumps(obj, indent=2, allow_nan=False, default=str))


def fmt_num(x: Any, scale: float = 1.0, digits: int = 2) -> str:
    """A number for a table cell: ``x * scale`` with ``digits`` decimals, ``-`` if absent."""
    try:
        v = float(x) * scale
    except (TypeError, ValueError):
        return "-"
    return "-" if v != v else f"{v:.{digits}f}"
