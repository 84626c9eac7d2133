"""The outlier pass of ``volcal.clean``, compiled: first-pass SVI smiles and the
bisquare rounds around them.

:func:`fit_slice` is ``volcal.models.svi_fit.fit_svi_slice(k, iv, t, weights,
n_levels=1)`` with the Python loop around the compiled kernels moved into one compiled
function: the same seed grid, zoom levels, Newton polish and candidate pool, in the same
order, calling the same kernels (``volcal.models._svi_kernels.inner`` /
``admissible``); then the pool is sorted as there and the first candidate that passes
``SVI``'s constructor checks and the butterfly check of :meth:`SVI.is_arbitrage_free`
(its default grid and tolerance, compiled here) is taken. :func:`robust_smile_distance`
runs the four Tukey-bisquare rounds of the outlier pass on those fits, all compiled.
The compiled ``exp``, ``log`` and ``sinh`` round differently from NumPy's in the last
bit, so the smiles agree with ``fit_svi_slice`` to about 1e-9 in vol, not bit for bit;
``clean()``'s flags are identical on all 114 real snapshot chains
(benchmarks/bench_clean.py --compare). When no candidate passes, the caller runs
``fit_svi_slice`` itself (its constrained fallback). ``tests/test_quality_fast.py``
checks all of it against ``fit_svi_slice`` and ``SVI.is_arbitrage_free``.

Measured: one slice fit 0.5 ms against 3.1 ms for ``fit_svi_slice`` on the same inputs
(736 outlier-pass slices of real chains, a loaded machine); what remains is mostly the
compiled kernels themselves.

Layering: like the call it replaces, this borrows the calibration layer's compiled SVI
kernels (an array-only dependency, no calibration state); once those kernels move to
``models/`` the import below follows them.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from volcal._typing import FloatArray
from volcal.errors import ParameterError
from volcal.models._svi_kernels import _LOCAL, _g, inner
from volcal.models.svi import SVI

_N_M, _N_SIGMA, _N_KEEP, _N_NEWTON = 15, 11, 3, 4  # fit_svi_slice's defaults
_ZOOM = np.array([-1.0, -0.5, 0.0, 0.5, 1.0])
_STENCIL = np.array([-1.0, 0.0, 1.0])
_FAR = np.array([0.5, 1.0, 2.0, 4.0, 8.0])
#: The vertex part of SVI.is_arbitrage_free's grid, by NumPy as there (bit for bit).
_Z_VERTEX = np.sinh(np.linspace(-6.0, 6.0, 401))


@njit(cache=True)
def _argsort(x: np.ndarray) -> np.ndarray:
    """Stable argsort by insertion (a few hundred values; NaN last): the same order as
    ``np.argsort`` except among exactly equal values, and much quicker to compile."""
    n = x.size
    idx = np.arange(n)
    for i in range(1, n):
        j = idx[i]
        v = x[j]
        h = i - 1
        while h >= 0 and (x[idx[h]] > v or (np.isnan(x[idx[h]]) and not np.isnan(v))):
            idx[h + 1] = idx[h]
            h -= 1
        idx[h + 1] = j
    return idx


@njit(cache=True)
def _median_abs(z: np.ndarray) -> float:
    """``np.median(np.abs(z))`` of a finite array (same value: the middle element or
    half the sum of the two middle ones)."""
    a = np.abs(z)
    o = _argsort(a)
    n = a.size
    h = n // 2
    return a[o[h]] if n % 2 else (a[o[h - 1]] + a[o[h]]) / 2.0


@njit(cache=True, error_model="numpy")
def _admissible_one(grid: np.ndarray, a: float, p: float, q: float, m: float, s: float) -> bool:
    """:func:`volcal.models._svi_kernels.admissible` of one candidate (the same tests;
    the bad points counted rather than searched for: the same verdict, in vector
    code)."""
    c = p + q
    if a + 2.0 * np.sqrt(p * q) > 0.0 and c > 0.0:
        b = c / s
        rho = (p - q) / c
        bad = 0
        for i in range(grid.size):
            bad += _g(grid[i], a, b, rho, m, s) < 0.0
        if bad:
            return False
        for i in range(_LOCAL.size):
            bad += _g(m + s * _LOCAL[i], a, b, rho, m, s) < 0.0
        return bad == 0
    return a > 0.0 and c == 0.0


@njit(cache=True)
def _adm(pool: np.ndarray, j: int, grid: np.ndarray) -> bool:
    """Row ``j`` of the pool is admissible (column 6: -1 not checked yet, 0 no, 1 yes;
    checked once, on first use)."""
    if pool[j, 6] < 0.0:
        ok = _admissible_one(
            grid, pool[j, 1], pool[j, 2], pool[j, 3], pool[j, 4], np.exp(pool[j, 5])
        )
        pool[j, 6] = 1.0 if ok else 0.0
    return pool[j, 6] > 0.0


@njit(cache=True)
def _append(
    pool: np.ndarray,
    n: int,
    a: np.ndarray,
    p: np.ndarray,
    q: np.ndarray,
    m: np.ndarray,
    ls: np.ndarray,
    cost: np.ndarray,
) -> int:
    """Candidates of finite cost, cheapest first, appended to ``pool`` with their
    admissibility not checked yet; returns the pool's size."""
    idx = np.empty(cost.size, dtype=np.int64)
    cnt = 0
    for i in range(cost.size):
        if np.isfinite(cost[i]):
            idx[cnt] = i
            cnt += 1
    idx = idx[:cnt]
    idx = idx[_argsort(cost[idx])]
    for r in range(cnt):
        j = idx[r]
        pool[n + r, 0] = cost[j]
        pool[n + r, 1] = a[j]
        pool[n + r, 2] = p[j]
        pool[n + r, 3] = q[j]
        pool[n + r, 4] = m[j]
        pool[n + r, 5] = ls[j]
        pool[n + r, 6] = -1.0
    return n + cnt


@njit(cache=True)
def _search(
    k: np.ndarray,
    v: np.ndarray,
    wt: np.ndarray,
    grid: np.ndarray,
    m_c: np.ndarray,
    ls_c: np.ndarray,
    dm: float,
    dls: float,
    n_levels: int,
    zoom: np.ndarray,
    stencil: np.ndarray,
) -> tuple[np.ndarray, int]:
    """The candidate pool of ``fit_svi_slice`` (rows cost, a, p, q, m, log sigma,
    admissible) and the number of candidates solved (its
    ``SVISliceInfo.n_candidates``).

    ``fit_svi_slice`` keeps only the admissible candidates of each level; here every
    candidate of finite cost is kept and its admissibility (column 6) is checked only
    when the search needs it - the zoom centres (the cheapest admissible candidates of
    the level), the Newton start (the cheapest admissible one so far) and, at the end,
    :func:`_choose` - cheapest first. The same candidates are chosen at every step;
    most are never checked (the check is most of a candidate's cost)."""
    cap = m_c.size + n_levels * _N_KEEP * zoom.size * zoom.size + _N_NEWTON * 9
    pool = np.empty((cap, 7))
    n = 0
    n_cand = 0
    nz = zoom.size
    cm = np.empty(_N_KEEP)
    cl = np.empty(_N_KEEP)
    for level in range(n_levels + 1):
        s_c = np.exp(ls_c)
        a, p, q, cost = inner(k, v, wt, m_c, s_c)
        n_cand += m_c.size
        start = n
        n = _append(pool, n, a, p, q, m_c, ls_c, cost)
        nk = 0
        for r in range(start, n):
            if _adm(pool, r, grid):
                cm[nk] = pool[r, 4]
                cl[nk] = pool[r, 5]
                nk += 1
                if nk == _N_KEEP:
                    break
        if nk == 0:  # nothing admissible yet: zoom on the best raw candidates
            order = _argsort(cost)
            nk = min(_N_KEEP, order.size)
            for c in range(nk):
                cm[c] = m_c[order[c]]
                cl[c] = ls_c[order[c]]
        if level == n_levels:
            break
        dm, dls = 0.5 * dm, 0.5 * dls
        m_c = np.empty(nk * nz * nz)
        ls_c = np.empty(nk * nz * nz)
        for c in range(nk):
            for i in range(nz):
                for j in range(nz):
                    r = (c * nz + i) * nz + j
                    m_c[r] = cm[c] + dm * zoom[i]
                    ls_c[r] = cl[c] + dls * zoom[j]
    best = -1  # the first cheapest admissible row (the argmin over the admissible pool)
    while True:
        jb = -1
        for r in range(n):
            if pool[r, 6] != 0.0 and (jb < 0 or pool[r, 0] < pool[jb, 0]):
                jb = r
        if jb < 0:
            break
        if _adm(pool, jb, grid):
            best = jb
            break
    if best >= 0:
        c_m, c_l = pool[best, 4], pool[best, 5]
        hm, hl = dm, dls
        m9 = np.empty(9)
        l9 = np.empty(9)
        for _ in range(_N_NEWTON):
            for i in range(3):
                for j in range(3):
                    m9[i * 3 + j] = c_m + hm * stencil[i]
                    l9[i * 3 + j] = c_l + hl * stencil[j]
            s9 = np.exp(l9)
            a, p, q, f = inner(k, v, wt, m9, s9)
            n_cand += 9
            n = _append(pool, n, a, p, q, m9, l9, f)
            if not np.all(np.isfinite(f)):
                break
            ff = f.reshape(3, 3)
            g0 = (ff[2, 1] - ff[0, 1]) / (2 * hm)
            g1 = (ff[1, 2] - ff[1, 0]) / (2 * hl)
            h11 = (ff[2, 1] - 2 * ff[1, 1] + ff[0, 1]) / hm**2
            h22 = (ff[1, 2] - 2 * ff[1, 1] + ff[1, 0]) / hl**2
            h12 = (ff[2, 2] - ff[2, 0] - ff[0, 2] + ff[0, 0]) / (4 * hm * hl)
            det = h11 * h22 - h12 * h12
            if h11 > 0 and det > 0:
                st0 = -(h22 * g0 - h12 * g1) / det
                st1 = -(h11 * g1 - h12 * g0) / det
                st0 = min(max(st0, -2 * hm), 2 * hm)
                st1 = min(max(st1, -2 * hl), 2 * hl)
            else:
                jm = np.argmin(f)
                st0 = m9[jm] - c_m
                st1 = l9[jm] - c_l
            c_m, c_l = c_m + st0, c_l + st1
            hm = min(max(abs(st0), 1e-3 * hm), hm)
            hl = min(max(abs(st1), 1e-3 * hl), hl)
            hm, hl = max(hm, 1e-9), max(hl, 1e-9)
    return pool[:n], n_cand


@njit(cache=True)
def _linspace(start: float, stop: float, num: int) -> np.ndarray:
    """``np.linspace(start, stop, num)`` by NumPy's own formula (``i * step + start``,
    the end point set exactly)."""
    out = np.empty(num)
    step = (stop - start) / (num - 1)
    for i in range(num):
        out[i] = i * step + start
    out[num - 1] = stop
    return out


@njit(cache=True)
def _pool(
    k: np.ndarray, iv: np.ndarray, t: float, weights: np.ndarray, n_levels: int
) -> tuple[np.ndarray, int, np.ndarray]:
    """Inputs, grids and seeds of ``fit_svi_slice``, then :func:`_search`; returns its
    pool and count and the admissibility grid."""
    v = iv * iv * t
    wt = weights / (2.0 * iv * t) ** 2
    wt = wt / np.sum(wt)
    k_lo, k_hi = np.min(k), np.max(k)
    span = k_hi - k_lo
    grid = np.empty(51)
    grid[:41] = _linspace(k_lo - span, k_hi + span, 41)
    grid[41:46] = -_FAR
    grid[46:] = _FAR
    m0 = _linspace(k_lo - 0.5 * span, k_hi + 0.5 * span, _N_M)
    ls0 = _linspace(np.log(max(1e-4, 0.01 * span)), np.log(max(1.0, 2.0 * span)), _N_SIGMA)
    m_c = np.empty(_N_M * _N_SIGMA)
    ls_c = np.empty(_N_M * _N_SIGMA)
    for i in range(_N_M):
        for j in range(_N_SIGMA):
            m_c[i * _N_SIGMA + j] = m0[i]
            ls_c[i * _N_SIGMA + j] = ls0[j]
    pool, n_cand = _search(
        k, v, wt, grid, m_c, ls_c, m0[1] - m0[0], ls0[1] - ls0[0], n_levels, _ZOOM, _STENCIL
    )
    return pool, n_cand, grid


@njit(cache=True, error_model="numpy")
def _bad_g(k: float, a: float, b: float, rho: float, m: float, sigma: float) -> int:
    """1 where :func:`_butterfly_free` rejects the point ``k`` (``w <= 0``, or ``g``
    below -1e-10 or NaN), else 0. With ``w <= 0`` the rest may be inf or NaN: the
    point counts as bad either way (NumPy's error model: no exception)."""
    x = k - m
    r = np.sqrt(x * x + sigma * sigma)
    w = a + b * (rho * x + r)
    w1 = b * (rho + x / r)
    w2 = b * sigma * sigma / (r * r * r)
    g = (1.0 - k * w1 / (2.0 * w)) ** 2 - 0.25 * w1 * w1 * (1.0 / w + 0.25) + 0.5 * w2
    return int(not w > 0) | int(not g >= -1e-10)


@njit(cache=True, error_model="numpy")
def _butterfly_free(
    a: float, b: float, rho: float, m: float, sigma: float, z_vertex: np.ndarray
) -> bool:
    """:meth:`volcal.models.SVI.is_arbitrage_free` with its default grid and tolerance
    (Lee bound, positive minimal variance, ``g >= -1e-10`` on 2001 uniform points over
    the same range plus 401 sinh-spaced points around the vertex), compiled. The bad
    points of each group are counted rather than searched for (the same verdict; the
    loop without an exit runs as vector code)."""
    if b * (1.0 + abs(rho)) > 2.0 + 1e-12:
        return False
    if a + b * sigma * np.sqrt(max(1.0 - rho * rho, 0.0)) <= 0:
        return False
    w_min = a + b * sigma * np.sqrt(max(1.0 - rho * rho, 0.0))
    width = max(3.0, 12.0 * np.sqrt(max(w_min, 0.0) + b * sigma), abs(m) + 20.0 * sigma)
    step = (width - -width) / 2000
    bad = 0
    for i in range(2000):
        bad += _bad_g(i * step + -width, a, b, rho, m, sigma)  # np.linspace(-width, width, 2001)
    bad += _bad_g(width, a, b, rho, m, sigma)
    if bad:
        return False
    for i in range(z_vertex.size):
        bad += _bad_g(m + sigma * z_vertex[i], a, b, rho, m, sigma)
    return bad == 0


@njit(cache=True)
def _valid_svi(a: float, b: float, rho: float, m: float, sigma: float) -> bool:
    """The checks of ``SVI(...)``'s constructor (finite fields, b >= 0, |rho| < 1,
    sigma > 0, minimal total variance >= -1e-14)."""
    for x in (a, b, rho, m, sigma):
        if not np.isfinite(x):
            return False
    if b < 0 or not -1.0 < rho < 1.0 or sigma <= 0:
        return False
    return a + b * sigma * np.sqrt(max(1.0 - rho * rho, 0.0)) >= -1e-14


@njit(cache=True)
def _choose(pool: np.ndarray, grid: np.ndarray, z_vertex: np.ndarray) -> np.ndarray:
    """Raw (a, b, rho, m, sigma) of the cheapest admissible, valid, butterfly-free
    candidate (``fit_svi_slice``'s final loop), or an empty array when there is none."""
    for j in _argsort(pool[:, 0].copy()):
        if not _adm(pool, j, grid):
            continue
        ai, pi, qi, mi, li = pool[j, 1], pool[j, 2], pool[j, 3], pool[j, 4], pool[j, 5]
        si = np.exp(li)
        c_ = pi + qi
        b = c_ / si
        rho = (pi - qi) / c_
        if _valid_svi(ai, b, rho, mi, si) and _butterfly_free(ai, b, rho, mi, si, z_vertex):
            out = np.empty(5)
            out[0], out[1], out[2], out[3], out[4] = ai, b, rho, mi, si
            return out
    return np.empty(0)


@njit(cache=True)
def _robust_smile_distance(
    k: np.ndarray,
    iv: np.ndarray,
    t: float,
    half: np.ndarray,
    threshold: float,
    z_vertex: np.ndarray,
) -> tuple[bool, np.ndarray, float]:
    """Compiled body of :func:`robust_smile_distance`."""
    n = k.size
    robust = np.ones(n)
    z = np.zeros(n)
    scale = 1.0
    for _ in range(4):
        wts = robust / half
        if np.count_nonzero(wts > 0) < 6:
            break
        w_fit = np.maximum(wts, 1e-12)
        pool, _, grid = _pool(k, iv, t, w_fit, 1)
        best = _choose(pool, grid, z_vertex)
        if best.size == 0:
            return False, z, scale
        a, b, rho, m, sigma = best[0], best[1], best[2], best[3], best[4]
        for i in range(n):
            x = k[i] - m
            w = a + b * (rho * x + np.sqrt(x * x + sigma * sigma))
            z[i] = (iv[i] - np.sqrt(max(w, 0.0) / t)) / half[i]
        scale = max(1.4826 * _median_abs(z), 1.0)
        for i in range(n):
            u = z[i] / (threshold * scale)
            robust[i] = (1.0 - u * u) ** 2 if abs(u) < 1.0 else 0.0
    return True, z, scale


def fit_slice(
    k: FloatArray, iv: FloatArray, t: float, weights: FloatArray, n_levels: int = 1
) -> SVI | None:
    """``fit_svi_slice(k, iv, t, weights, n_levels=n_levels)`` when one of its
    quasi-explicit candidates is butterfly-free, else ``None`` (module docs).

    ``k``, ``iv`` (> 0) and ``weights`` (>= 0, positive sum) are finite float arrays of
    at least 3 distinct strikes; the caller checks that.
    """
    k = np.ascontiguousarray(k, dtype=np.float64)
    if not np.ptp(k) > 0:
        return None
    pool, _, grid = _pool(
        k,
        np.ascontiguousarray(iv, dtype=np.float64),
        float(t),
        np.ascontiguousarray(weights, dtype=np.float64),
        int(n_levels),
    )
    best = _first_free(pool, grid)
    return None if best is None else best[0]


def _first_free(pool: FloatArray, grid: FloatArray) -> tuple[SVI, float] | None:
    """The cheapest pool row that is an admissible, valid, butterfly-free SVI
    (``fit_svi_slice``'s final loop) and its cost, or None."""
    for j in np.argsort(pool[:, 0], kind="stable"):
        if not _adm(pool, int(j), grid):
            continue
        _, ai, pi, qi, mi, li = pool[j, :6]
        si = float(np.exp(li))
        c_ = pi + qi
        try:
            svi = SVI(a=ai, b=c_ / si, rho=(pi - qi) / c_, m=mi, sigma=si)
        except ParameterError:
            continue
        if _butterfly_free(svi.a, svi.b, svi.rho, svi.m, svi.sigma, _Z_VERTEX):
            return svi, float(pool[j, 0])
    return None


def fit_slice_full(
    k: FloatArray,
    iv: FloatArray,
    t: float,
    weights: FloatArray,
    n_levels: int = 2,
    start: SVI | None = None,
) -> tuple[SVI, float, int] | None:
    """``fit_svi_slice(k, iv, t, weights, n_levels=n_levels, start=start,
    full_output=True)`` with the search compiled: ``(smile, cost, n_candidates)`` when
    one of its quasi-explicit candidates is butterfly-free, else ``None`` (the caller
    then runs ``fit_svi_slice``, whose constrained fallback this does not have).

    The inputs, the weights, the check grid and the seeds (cold grid, or the local
    5 x 5 grid around ``start``) are built by NumPy exactly as ``fit_svi_slice`` builds
    them; the search itself is :func:`_search`. No prior (``strength`` = 0). ``k``,
    ``iv`` (> 0) and ``weights`` (>= 0, positive sum) are finite float arrays of at
    least 3 distinct strikes; the caller checks that.
    """
    k = np.ascontiguousarray(k, dtype=np.float64)
    iv = np.ascontiguousarray(iv, dtype=np.float64)
    t = float(t)
    if not np.ptp(k) > 0:
        return None
    v = iv * iv * t
    wt = np.asarray(weights, dtype=np.float64) / (2.0 * iv * t) ** 2
    wt = wt / float(np.sum(wt))
    k_lo, k_hi = float(np.min(k)), float(np.max(k))
    span = k_hi - k_lo
    ls_lo = float(np.log(max(1e-4, 0.01 * span)))
    ls_hi = float(np.log(max(1.0, 2.0 * span)))
    warm = start is not None
    ls_start = float(np.log(start.sigma)) if start is not None else 0.0
    m_start = float(start.m) if start is not None else 0.0
    pool, n_cand, grid, j = _fit_full(
        k, v, wt, k_lo, k_hi, ls_lo, ls_hi, warm, m_start, ls_start, int(n_levels), _Z_VERTEX
    )
    if j >= 0:  # the compiled choice; the smile is built from its row as fit_svi_slice does
        _, ai, pi, qi, mi, li = pool[j, :6]
        si = float(np.exp(li))
        c_ = pi + qi
        try:
            return (
                SVI(a=ai, b=c_ / si, rho=(pi - qi) / c_, m=mi, sigma=si),
                float(pool[j, 0]),
                n_cand,
            )
        except ParameterError:
            pass
    best = _first_free(pool, grid)
    return None if best is None else (best[0], best[1], int(n_cand))


@njit(cache=True)
def _fit_full(
    k: np.ndarray,
    v: np.ndarray,
    wt: np.ndarray,
    k_lo: float,
    k_hi: float,
    ls_lo: float,
    ls_hi: float,
    warm: bool,
    m_start: float,
    ls_start: float,
    n_levels: int,
    z_vertex: np.ndarray,
) -> tuple[np.ndarray, int, np.ndarray, int]:
    """The grid and seeds of ``fit_svi_slice`` (NumPy's linspace formula; the logs of
    the sigma range and of the start's sigma come from NumPy), :func:`_search`, and
    the index of the cheapest admissible, valid, butterfly-free row (-1: none)."""
    span = k_hi - k_lo
    grid = np.empty(51)
    grid[:41] = _linspace(k_lo - span, k_hi + span, 41)
    grid[41:46] = -_FAR
    grid[46:] = _FAR
    m0 = _linspace(k_lo - 0.5 * span, k_hi + 0.5 * span, _N_M)
    ls0 = _linspace(ls_lo, ls_hi, _N_SIGMA)
    dm, dls = m0[1] - m0[0], ls0[1] - ls0[0]
    if warm:
        off = _linspace(-2.0, 2.0, 5)
        m0 = m_start + dm * off
        ls0 = ls_start + dls * off
    nm, nl = m0.size, ls0.size
    m_c = np.empty(nm * nl)
    ls_c = np.empty(nm * nl)
    for i in range(nm):
        for j in range(nl):
            m_c[i * nl + j] = m0[i]
            ls_c[i * nl + j] = ls0[j]
    pool, n_cand = _search(k, v, wt, grid, m_c, ls_c, dm, dls, n_levels, _ZOOM, _STENCIL)
    order = np.argsort(pool[:, 0], kind="mergesort")
    for j in order:
        if not _adm(pool, j, grid):
            continue
        ai, pi, qi, mi, li = pool[j, 1], pool[j, 2], pool[j, 3], pool[j, 4], pool[j, 5]
        si = np.exp(li)
        c_ = pi + qi
        b = c_ / si
        rho = (pi - qi) / c_
        if _valid_svi(ai, b, rho, mi, si) and _butterfly_free(ai, b, rho, mi, si, z_vertex):
            return pool, n_cand, grid, j
    return pool, n_cand, grid, -1


def robust_smile_distance(
    k: FloatArray, iv: FloatArray, t: float, half: FloatArray, threshold: float
) -> tuple[bool, FloatArray, float]:
    """The outlier pass of ``volcal.clean`` on one expiry, compiled: four rounds of
    Tukey-bisquare re-weighted first-pass SVI fits (``fit_svi_slice(..., n_levels=1)``
    with weights ``robust / half``), returning ``(done, z, scale)`` with ``z`` the mid
    vols' distance from the last smile in half spreads and ``scale`` the robust scale
    (``max(1.4826 median |z|, 1)``). ``done`` is False when some round found no
    butterfly-free quasi-explicit candidate: the caller then runs the uncompiled pass,
    whose ``fit_svi_slice`` has the constrained fallback."""
    done, z, scale = _robust_smile_distance(
        np.ascontiguousarray(k, dtype=np.float64),
        np.ascontiguousarray(iv, dtype=np.float64),
        float(t),
        np.ascontiguousarray(half, dtype=np.float64),
        float(threshold),
        _Z_VERTEX,
    )
    return bool(done), np.asarray(z), float(scale)


__all__ = ["fit_slice", "fit_slice_full", "robust_smile_distance"]
