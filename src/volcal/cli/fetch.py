"""``volcal fetch deribit BTC -o FILE``: save a live Deribit chain as raw JSON."""

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
