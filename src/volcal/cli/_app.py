"""The Typer application object and the shared console helpers of the CLI.

Command modules (``volcal.cli.<topic>``) import ``app`` from here and register their
commands; ``volcal.cli.main`` imports them all and runs the app with error handling
that turns every :class:`~volcal.errors.VolcalError` (and common user mistakes such
as a missing file) into one line on stderr and exit code 2.

Every ``--json`` document has the same four top-level keys (:func:`print_json`):
``schema_version``, ``command``, ``units`` (what the numbers are measured in) and
``result`` (the command's own payload).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import textwrap
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, cast

import typer

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

#: version of the ``--json`` envelope; bumped when a key changes meaning
SCHEMA_VERSION = 1

#: units of the quantities every ``--json`` document may carry (field name -> unit);
#: commands add their own with ``print_json(..., units={...})``
UNITS: dict[str, str] = {
    "vol": "annualised implied volatility as a fraction (0.5 = 50%)",
    "rmse_vol": "vol points (1 vol point = 0.01 in vol)",
    "residual": "model minus market mid implied vol, fraction",
    "inside_spread": "fraction of quotes (0.9 = 90%)",
    "atm_vol, rr25, bf25": "implied vol as a fraction; 25-delta pillars at the delta "
    "convention named in the result",
    "t": "years, ACT/365 from exact UTC timestamps",
    "days": "calendar days",
    "k": "log-moneyness ln(K/F)",
    "strike, forward, price_usd, *_usd": "USD",
    "elapsed_s, wall_s, total_elapsed_s": "seconds (wall time)",
    "snapshot, expiry": "ISO 8601, UTC",
}

app = typer.Typer(
    name="volcal",
    help="Calibrate crypto-option markets: clean implied vols, smiles, models, surfaces, risk.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    # plain Click help: rendering it with Rich costs ~0.1 s of imports on every --help
    rich_markup_mode=None,
)


class _LazyConsole:
    """A Rich ``Console(**options)`` made on first use: a command that prints only JSON
    (``typer.echo``) or nothing never imports ``rich.console`` (~0.03 s). Every attribute
    is the real console's, read and written through."""

    __slots__ = ("_made", "_options")

    def __init__(self, **options: Any) -> None:
        object.__setattr__(self, "_options", options)
        object.__setattr__(self, "_made", [])

    def _console(self) -> Console:
        made: list[Console] = object.__getattribute__(self, "_made")
        if not made:
            from rich.console import Console

            made.append(Console(**object.__getattribute__(self, "_options")))
        return made[0]

    def _maybe_terminal(self) -> bool:
        """``False`` only where Rich's ``is_terminal`` is surely false, without making the
        console: its file is no tty and no environment variable forces the answer."""
        if object.__getattribute__(self, "_made"):
            return bool(self._console().is_terminal)
        stream = (
            sys.stderr if object.__getattribute__(self, "_options").get("stderr") else sys.stdout
        )
        isatty = getattr(stream, "isatty", None)
        try:
            tty = bool(isatty()) if isatty is not None else False
        except ValueError:  # a closed stream
            tty = False
        forced = os.environ.get("TTY_COMPATIBLE") == "1" or "FORCE_COLOR" in os.environ
        return tty or forced

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # e.g. ``__dict__``: the proxy's own (it has none)
            raise AttributeError(name)
        return getattr(self._console(), name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._console(), name, value)

    def __enter__(self) -> Console:  # Rich's Live enters its console
        return self._console().__enter__()

    def __exit__(self, *exc: Any) -> None:
        self._console().__exit__(*exc)

    def __delattr__(self, name: str) -> None:
        delattr(self._console(), name)


console = cast("Console", _LazyConsole())
err_console = cast("Console", _LazyConsole(stderr=True))


class _NoStatus:
    """What :func:`status` yields when stderr is not a terminal: ``update`` does nothing."""

    def update(self, *args: Any, **kwargs: Any) -> None:
        """Nothing to redraw."""


@contextlib.contextmanager
def status(con: Console, text: str) -> Iterator[Any]:
    """``con.status(text)`` (a Rich spinner while the block runs) if ``con`` is a
    terminal.

    On a pipe or a file Rich draws a transient status as nothing at all; skipping it
    there saves importing its live display (~0.01 s of every run of a command whose
    stderr is not a terminal)."""
    if isinstance(con, _LazyConsole) and not con._maybe_terminal():
        yield _NoStatus()  # (the console not made just to learn that)
        return
    if not con.is_terminal:
        yield _NoStatus()
        return
    with con.status(text) as shown:
        yield shown


def _version(value: bool) -> None:
    if value:
        from volcal import __version__

        typer.echo(f"volcal {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False,
        "--version",
        "-V",
        callback=_version,
        is_eager=True,
        help="Print the version and exit.",
    ),
) -> None:
    """Calibrate crypto-option markets: clean implied vols, smiles, models, surfaces, risk."""


def _command_name() -> str | None:
    """Name of the running command (Typer may vendor its own click: try both)."""
    import importlib

    for name in ("typer._click.globals", "click"):
        try:
            mod = importlib.import_module(name)
        except ImportError:  # pragma: no cover - depends on the Typer version
            continue
        ctx = mod.get_current_context(silent=True)
        if ctx is not None:
            return str(ctx.info_name)
    return None


def json_document(result: Any, *, units: dict[str, str] | None = None) -> dict[str, Any]:
    """The ``--json`` envelope around a command's ``result`` (see the module docs)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "command": _command_name(),
        "units": {**UNITS, **(units or {})},
        "result": result,
    }


def print_json(result: Any, *, units: dict[str, str] | None = None) -> None:
    """Print one JSON document on stdout (no Rich markup, machine-readable): the
    command's ``result`` in the envelope of :func:`json_document`."""
    typer.echo(
        json.dumps(json_document(result, units=units), indent=2, allow_nan=False, default=str)
    )


def fmt_num(x: Any, scale: float = 1.0, digits: int = 2) -> str:
    """A number for a table cell: ``x * scale`` with ``digits`` decimals, ``-`` if absent."""
    try:
        v = float(x) * scale
    except (TypeError, ValueError):
        return "-"
    return "-" if v != v else f"{v:.{digits}f}"


def _cell_text(cell: Any) -> str:
    return cell.plain if hasattr(cell, "plain") else str(cell)


def _looks_numeric(text: str) -> bool:
    t = text.strip().rstrip("%*xs").replace(",", "").replace("+", "").replace("±", "")
    if t in ("", "-"):
        return True
    try:
        float(t.split()[0] if t.split() else t)
    except ValueError:
        return False
    return True


def print_table(table: Table, out: Console | None = None) -> None:
    """Print a Rich table without ever cutting a number.

    Columns of numbers never wrap or shrink below their widest cell; text columns may
    wrap. When the numbers alone do not fit the console (an 80-column terminal, a pipe),
    the table is printed as several tables of fewer columns, each repeating the first
    (label) column.
    """
    from rich.table import Table

    con = out or console
    cols = table.columns
    cells = [[_cell_text(c) for c in col._cells] for col in cols]
    need = []
    for col, cs in zip(cols, cells, strict=True):
        widest = max([len(x) for x in cs] or [1])
        head = _cell_text(col.header)
        col.overflow = "fold"
        if all(_looks_numeric(x) for x in cs):
            # never wrapped nor shrunk; a long header goes on several lines instead
            col.no_wrap = True
            col.min_width = widest
            if len(head) > widest and isinstance(col.header, str):
                longest = max(len(w) for w in head.split())
                col.header = "\n".join(textwrap.wrap(head, max(widest, longest)))
            lines = _cell_text(col.header).split("\n")
            need.append(max([widest, *(len(x) for x in lines)]) + 3)
        else:
            col.min_width = min(widest, 16)
            longest = max((len(w) for w in head.split()), default=1)
            need.append(max(col.min_width, longest) + 3)
    width = con.width
    if sum(need) + 1 <= width or len(cols) <= 2:
        con.print(table)
        return
    # split: the first column, then as many others as fit, repeated
    groups: list[list[int]] = []
    cur: list[int] = []
    used = need[0] + 1
    for j in range(1, len(cols)):
        if cur and used + need[j] > width:
            groups.append(cur)
            cur, used = [], need[0] + 1
        cur.append(j)
        used += need[j]
    if cur:
        groups.append(cur)
    n_rows = table.row_count
    for g, idx in enumerate(groups):
        part = Table(
            title=(table.title if g == 0 else None),
            title_justify=table.title_justify,
            show_lines=table.show_lines,
        )
        for j in (0, *idx):
            c = cols[j]
            part.add_column(
                c.header,
                justify=c.justify,
                no_wrap=c.no_wrap,
                overflow=c.overflow,
                min_width=c.min_width,
            )
        ends = {r for r in range(n_rows) if r < len(table.rows) and table.rows[r].end_section}
        for r in range(n_rows):
            part.add_row(*[cols[j]._cells[r] for j in (0, *idx)], end_section=r in ends)
        con.print(part)
