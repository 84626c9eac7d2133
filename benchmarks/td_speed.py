"""Time-dependent calibration speed: this checkout against an earlier commit's td.py.

Run from the repository root (a git checkout; real data from ../shared/data)::

    python benchmarks/td_speed.py [--ref 9c8e3d1] [--quick]

The reference is ``src/volcal/calibration/td.py`` of commit ``--ref`` (default: the
forward-difference bootstrap through the generic engine path), loaded next to the
current one in the same process, so both run on the same inputs, interleaved, min of
3 repeats. Per chain and model: a warm bootstrap started at the chain's own fit
(``start=fit.params``, the steady state of a live recalibration), and one evaluation
of residuals plus Jacobian of the last bootstrap step (longest expiry, every earlier
interval fixed). The ratios are what to read on a shared machine.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

import volcal
import volcal.calibration.td as new
from volcal.calibration.calibrate import _OBJ_PHI_TOL, _OBJ_TAIL_TOL, as_quotes
from volcal.errors import CalibrationWarning, DataWarning
from volcal.pricing.cos import COSPricer

ROOT = Path(__file__).resolve().parents[1]
SNAPS = ROOT.parent / "shared" / "data" / "raw" / "svcj-deribit-snapshots"
CHAINS = (("20251230T173115Z", "BTC"), ("20260822T153351Z", "ETH"))


def _load_ref(ref: str) -> tuple[Any, bool]:
    """The reference td.py as a module, and whether it knows per-interval jumps (older
    ones read ``BatesTD``'s former global jumps, whose layout the models no longer have)."""
    src = subprocess.run(
        ["git", "show", f"{ref}:src/volcal/calibration/td.py"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = Path(tempfile.mkdtemp()) / "td_ref.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("td_ref", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load td.py of {ref}")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod, "_globals" not in src


def _best(fn: Any, reps: int) -> float:
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return min(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ref", default="9c8e3d1", help="commit of the reference td.py")
    ap.add_argument("--quick", action="store_true", help="first chain, heston_td only")
    args = ap.parse_args()
    old, ref_jumps = _load_ref(args.ref)
    warnings.simplefilter("ignore", CalibrationWarning)
    chains = CHAINS[:1] if args.quick else CHAINS
    models = ("heston_td",) if args.quick else ("heston_td", "bates_td")
    print(f"reference: td.py of {args.ref}; same process, interleaved, min of 3")
    print("| chain | model | warm ref ms | warm new ms | ratio | RMSE ref / new | eval ref ms "
          "| eval new ms | ratio |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for snap, cur in chains:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DataWarning)
            chain = volcal.read_chain(SNAPS / f"deribit_options_snapshot_{snap}.csv", currency=cur)
            q = as_quotes(volcal.clean(chain))
        for m in models:
            if m == "bates_td" and not ref_jumps:
                print(f"| {snap} {cur} | bates_td | (reference has global jumps: skipped) |")
                continue
            start = new.calibrate_td(q, m, multistart=False).params
            fits: dict[str, Any] = {}
            times: dict[str, list[float]] = {"ref": [], "new": []}
            for _ in range(3):
                for name, mod in (("ref", old), ("new", new)):
                    t0 = time.perf_counter()
                    fits[name] = mod.calibrate_td(q, m, start=start)
                    times[name].append(time.perf_counter() - t0)
            w_ref, w_new = min(times["ref"]), min(times["new"])
            n = start.n_intervals
            j = n - 1
            free = np.array([1 + p * n + j for p in range(4)])
            mask = q.slice_index == j
            sw = np.sqrt(q.weights("spread"))
            lo, hi = start.bounds()
            p_ref = old._Problem(start, free, mask, q, sw, lo, hi, [], COSPricer())
            p_new = new._Problem(
                start, free, mask, q, sw, lo, hi, [], COSPricer(phi_tol=_OBJ_PHI_TOL, tail_tol=_OBJ_TAIL_TOL)
            )  # fmt: skip
            y = p_ref.to_y(start.to_vector())
            e_ref = _best(lambda p=p_ref, y=y: (p.residuals(y), p.jacobian(y + 1e-9)), 5)
            e_new = _best(lambda p=p_new, y=y: (p.residuals(y), p.jacobian(y + 1e-9)), 5)
            print(
                f"| {snap} {cur} | {m} | {1e3 * w_ref:.0f} | {1e3 * w_new:.0f} | "
                f"{w_ref / w_new:.1f}x | {fits['ref'].rmse_vol:.3f} / {fits['new'].rmse_vol:.3f} | "
                f"{1e3 * e_ref:.2f} | {1e3 * e_new:.2f} | {e_ref / e_new:.1f}x |",
                flush=True,
            )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
