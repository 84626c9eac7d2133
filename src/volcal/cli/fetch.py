"""``volcal fetch deribit|okx|bybit|binance BTC -o FILE``: save a live chain as raw JSON
(the venue's untouched answers; ``volcal.read_chain(FILE)`` reads it back)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from volcal.cli._app import app, console, err_console

fetch_app = typer.Typer(help="Fetch live option chains from a venue.", no_args_is_help=True)
app.add_typer(fetch_app, name="fetch")


@fetch_app.command("deribit")
def fetch_deribit(
    output: Annotated[Path, typer.Option("-o", "--output", help="JSON file for the raw answers.")],
    currency: Annotated[str, typer.Argument(help="Underlying: BTC, ETH, ...")] = "BTC",
    timeout: Annotated[float, typer.Option(help="Seconds per request.")] = 10.0,
    retries: Annotated[int, typer.Option(help="Retries per request (backoff).")] = 3,
) -> None:
    """Fetch the Deribit option chain of CURRENCY and save the raw answers to FILE.

    The file is read back with ``volcal.read_chain(FILE)``.
    """
    from volcal.feeds.deribit import fetch_chain

    with err_console.status(f"fetching {currency.upper()} options from Deribit...") as status:

        def progress(step: str) -> None:
            status.update(f"deribit {currency.upper()}: {step}")

        chain = fetch_chain(
            currency, timeout=timeout, retries=retries, save=output, progress=progress
        )
    console.print(chain.summary(), highlight=False)
    console.print(f"saved raw answers to {output}", highlight=False)


def _fetch_venue(venue: str, currency: str, output: Path, timeout: float, retries: int) -> None:
    import importlib

    mod = importlib.import_module(f"volcal.feeds.{venue}")
    with err_console.status(f"fetching {currency.upper()} options from {venue}...") as status:

        def progress(step: str) -> None:
            status.update(f"{venue} {currency.upper()}: {step}")

        chain = mod.fetch_chain(
            currency, timeout=timeout, retries=retries, save=output, progress=progress
        )
    console.print(chain.summary(), highlight=False)
    console.print(f"saved raw answers to {output}", highlight=False)


_OUT = Annotated[Path, typer.Option("-o", "--output", help="JSON file for the raw answers.")]
_CUR = Annotated[str, typer.Argument(help="Underlying: BTC, ETH, ...")]
_TIMEOUT = Annotated[float, typer.Option(help="Seconds per request.")]
_RETRIES = Annotated[int, typer.Option(help="Retries per request (backoff).")]


@fetch_app.command("okx")
def fetch_okx(
    output: _OUT, currency: _CUR = "BTC", timeout: _TIMEOUT = 10.0, retries: _RETRIES = 3
) -> None:
    """Fetch the OKX option chain (tickers, opt-summary, instruments, index) to FILE."""
    _fetch_venue("okx", currency, output, timeout, retries)


@fetch_app.command("bybit")
def fetch_bybit(
    output: _OUT, currency: _CUR = "BTC", timeout: _TIMEOUT = 10.0, retries: _RETRIES = 3
) -> None:
    """Fetch the Bybit option chain (tickers, instruments-info) to FILE."""
    _fetch_venue("bybit", currency, output, timeout, retries)


@fetch_app.command("binance")
def fetch_binance(
    output: _OUT, currency: _CUR = "BTC", timeout: _TIMEOUT = 10.0, retries: _RETRIES = 3
) -> None:
    """Fetch the Binance European options chain (ticker, mark, exchangeInfo, index)."""
    _fetch_venue("binance", currency, output, timeout, retries)
