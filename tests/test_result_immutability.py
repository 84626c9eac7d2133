"""Results are read-only all the way down; to_dict() returns copies; repr is short."""

from __future__ import annotations

import json
import pickle
import warnings

import numpy as np
import pytest

import volcal
from volcal.calibration.result import FrozenDict, freeze, thaw
from volcal.synthetic import synthetic_chain


@pytest.fixture(scope="module")
def fits():
    chain = volcal.clean(synthetic_chain(seed=3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            "svi": volcal.calibrate(chain, "svi"),
            "merton": volcal.calibrate(chain, "merton", stderr=True),
        }


@pytest.mark.parametrize("model", ["svi", "merton"])
def test_arrays_and_mappings_are_read_only(fits, model) -> None:
    fit = fits[model]
    for name in ("model_iv", "weights", "residuals"):
        with pytest.raises(ValueError):
            getattr(fit, name)[0] = 0.0
    q = fit.quotes
    for name in ("iv_mid", "iv_bid", "k", "t", "strike", "vega"):
        with pytest.raises(ValueError):
            getattr(q, name)[0] = 0.0
    with pytest.raises(TypeError):
        fit.extra["x"] = 1  # type: ignore[index]
    for s in fit.slices:
        with pytest.raises(TypeError):
            s.params["a"] = 1.0  # type: ignore[index]
    if fit.stderr:
        with pytest.raises(TypeError):
            fit.stderr["x"] = 1.0  # type: ignore[index]


def test_to_dict_returns_copies(fits) -> None:
    fit = fits["svi"]
    d = fit.to_dict()
    d["extra"]["poisoned"] = True
    d["slices"][0]["params"]["a"] = -1.0
    d["params"]["slices"][0]["a"] = -1.0
    again = fit.to_dict()
    assert "poisoned" not in again["extra"]
    assert again["slices"][0]["params"]["a"] != -1.0
    assert again["params"]["slices"][0]["a"] != -1.0
    assert again == json.loads(json.dumps(fit.to_dict(), allow_nan=False))


def test_to_dict_has_per_quote_residuals_and_weights(fits) -> None:
    fit = fits["merton"]
    q = fit.to_dict()["quotes"]
    n = fit.n_used
    assert all(len(v) == n for v in q.values())
    np.testing.assert_allclose(q["residual"], fit.residuals)
    np.testing.assert_allclose(q["weight"], fit.weights)
    np.testing.assert_allclose(np.array(q["model_iv"]) - np.array(q["iv_mid"]), fit.residuals)
    assert "quotes" not in fit.to_dict(quotes=False)


def test_confidence_intervals_sit_next_to_the_standard_errors(fits) -> None:
    fit = fits["merton"]
    assert fit.stderr
    ci = fit.conf_int(0.95)
    p = fit.to_dict()["params"]
    for name, (lo, hi) in ci.items():
        se = fit.stderr[name]
        assert lo < p[name] < hi or se == 0
        assert hi - lo == pytest.approx(2 * 1.959963984540054 * se, rel=1e-12)
    assert fit.to_dict()["conf_int_95"].keys() == ci.keys()
    with pytest.raises(ValueError):
        fit.conf_int(1.5)


def test_covariance_is_validated_and_read_only(fits) -> None:
    import dataclasses

    fit = fits["merton"]
    names = tuple(fit.stderr)
    se = np.array([fit.stderr[n] for n in names])
    cov = np.diag(se**2)
    full = dataclasses.replace(fit, covariance=cov, covariance_names=names)
    cov[0, 0] = 99.0  # the result holds its own copy
    assert full.covariance[0, 0] == se[0] ** 2
    with pytest.raises(ValueError):
        full.covariance[0, 0] = 1.0
    np.testing.assert_allclose(np.diag(full.correlation()), 1.0)
    assert full.to_dict()["covariance"]["names"] == list(names)
    with pytest.raises(ValueError):
        dataclasses.replace(fit, covariance=cov, covariance_names=names[:-1])


def test_repr_is_short(fits) -> None:
    for fit in fits.values():
        r = repr(fit)
        assert len(r) < 300 and fit.model in r and "rmse_vol" in r


def test_results_pickle(fits) -> None:
    fit = pickle.loads(pickle.dumps(fits["svi"]))
    assert fit.to_dict() == fits["svi"].to_dict()
    assert isinstance(fit.extra, FrozenDict)


def test_freeze_and_thaw_round_trip() -> None:
    x = {"a": [1, {"b": np.arange(3.0)}], "c": (2, 3)}
    f = freeze(x)
    with pytest.raises(TypeError):
        f["a"] = 0  # type: ignore[index]
    with pytest.raises(ValueError):
        f["a"][1]["b"][0] = 5.0
    assert thaw(f) == {"a": [1, {"b": [0.0, 1.0, 2.0]}], "c": [2, 3]}
    assert x["a"][1]["b"].flags.writeable  # the input is not frozen in place


def test_no_mutable_module_cache_in_ssvi() -> None:
    """Zeroing the table once changed every later SSVI fit in the process."""
    from volcal.models.ssvi import _fly_beta_table, fly_beta_bound, fly_beta_table

    before = float(fly_beta_bound(0.3))
    tab = fly_beta_table()
    tab[:] = 0.0
    assert float(fly_beta_bound(0.3)) == before
    assert fly_beta_table()[300] > 0
    with pytest.raises(ValueError):
        _fly_beta_table()[0] = 0.0


def test_fourier_fits_carry_the_parameter_covariance(fits) -> None:
    """The covariance of a Fourier fit is the one its standard errors come from."""
    fit = fits["merton"]
    assert fit.covariance is not None and fit.covariance_names == tuple(fit.stderr)
    se = np.sqrt(np.diag(fit.covariance))
    np.testing.assert_allclose(se, [fit.stderr[n] for n in fit.covariance_names], rtol=1e-12)
    corr = fit.correlation()
    np.testing.assert_allclose(np.diag(np.asarray(corr)), 1.0, rtol=1e-12)
    assert not fit.covariance.flags.writeable


def _mutable_parts(obj, path: str = "result", seen: set[int] | None = None) -> list[str]:
    """Paths of writeable arrays and of lists, dicts and sets reachable from ``obj``
    through dataclass fields, tuples and frozen mappings."""
    import dataclasses

    seen = set() if seen is None else seen
    if id(obj) in seen:
        return []
    seen.add(id(obj))
    if isinstance(obj, np.ndarray):
        return [path] if obj.flags.writeable else []
    if isinstance(obj, list | dict | set | bytearray):
        return [f"{path} ({type(obj).__name__})"]
    out: list[str] = []
    if isinstance(obj, tuple):
        for i, v in enumerate(obj):
            out += _mutable_parts(v, f"{path}[{i}]", seen)
    elif isinstance(obj, FrozenDict):
        for k, v in obj.items():
            out += _mutable_parts(v, f"{path}[{k!r}]", seen)
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for f in dataclasses.fields(obj):
            out += _mutable_parts(getattr(obj, f.name), f"{path}.{f.name}", seen)
    return out


def test_reports_and_comparisons_are_read_only_all_the_way_down() -> None:
    chain = synthetic_chain(seed=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = volcal.quality_report(chain)
        comparison = volcal.compare_models(volcal.clean(chain), models=("svi", "merton"))
    for name, obj in {"QualityReport": report, "ModelComparison": comparison}.items():
        assert _mutable_parts(obj, name) == []
    with pytest.raises(ValueError, match="read-only"):
        report.forwards.used[0] = 1.0


def test_every_fit_is_read_only_all_the_way_down(fits) -> None:
    for model, fit in fits.items():
        assert _mutable_parts(fit, model) == []
