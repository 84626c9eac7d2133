"""Numba scalar kernels: normalised Black function and "Let's Be Rational" implied vol.

This module follows the structure of Peter Jäckel's reference implementation of
"Let's Be Rational" (Wilmott, 2015; source www.jaeckel.org/LetsBeRational.7z, copyright
2013-2014 Peter Jäckel, freely redistributable with this notice). The special functions
are W. J. Cody's rational Chebyshev approximation of the scaled complementary error
function erfcx (Math. Comp. 1969) and Wichura's AS241 inverse normal (Appl. Statist.
1988). Every function here is a scalar ``@njit`` kernel; the array loops at the bottom
are what the public functions in :mod:`volcal.black` call.

Notation (Jäckel): x = ln(F/K), s = sigma sqrt(T), h = x/s, t = s/2 and the normalised
call price b(x, s) = Phi(h + t) e^{x/2} - Phi(h - t) e^{-x/2}, so that the undiscounted
call is sqrt(F K) b(x, s).

This module is imported only by :mod:`volcal.black` (never by ``import volcal``) because
importing it loads numba.
"""

from __future__ import annotations

import math
import sys

import numpy as np
from numba import njit

DBL_EPSILON = sys.float_info.epsilon
DBL_MIN = sys.float_info.min
DBL_MAX = sys.float_info.max
SQRT_DBL_MIN = math.sqrt(DBL_MIN)
SQRT_DBL_MAX = math.sqrt(DBL_MAX)
FOURTH_ROOT_DBL_EPSILON = DBL_EPSILON**0.25
SIXTEENTH_ROOT_DBL_EPSILON = DBL_EPSILON**0.0625

ONE_OVER_SQRT_TWO = 0.7071067811865475244008443621048490392848359376887
ONE_OVER_SQRT_TWO_PI = 0.3989422804014326779399460599343818684758586311649
SQRT_TWO_PI = 2.506628274631000502415765284811045253006986740610
TWO_PI = 6.283185307179586476925286766559005768394338798750
SQRT_PI_OVER_TWO = 1.253314137315500251207882642405522626503493370305
SQRT_THREE = 1.732050807568877293527446341505872366942805253810
SQRT_ONE_OVER_THREE = 0.577350269189625764509148780501957455647601751270
TWO_PI_OVER_SQRT_TWENTY_SEVEN = 1.209199576156145233729385505094770488189377498728
PI_OVER_SIX = 0.523598775598298873077107230546583814032861566563

# Region thresholds of the normalised Black function (Jäckel 2015, section 3).
ASYMPTOTIC_EXPANSION_THRESHOLD = -10.0
SMALL_T_EXPANSION_THRESHOLD = 2.0 * SIXTEENTH_ROOT_DBL_EPSILON

# Rational cubic control parameter limits (Delbourgo & Gregory 1985, as used by Jäckel).
MIN_RATIONAL_CUBIC_CONTROL = -(1.0 - math.sqrt(DBL_EPSILON))
MAX_RATIONAL_CUBIC_CONTROL = 2.0 / (DBL_EPSILON * DBL_EPSILON)

# Number of Householder(3) iterations after the rational initial guess (Jäckel: two suffice).
MAX_ITERATIONS = 2

# Status codes shared with volcal.black.IVStatus (kept as plain ints for numba).
ST_OK = 0
ST_AT_INTRINSIC = 1
ST_BELOW_INTRINSIC = 2
ST_ABOVE_BOUND = 3
ST_INVALID_INPUT = 4
ST_NO_CONVERGENCE = 5

# ---------------------------------------------------------------------------------------
# Special functions
# ---------------------------------------------------------------------------------------

_ERF_A = (
    3.1611237438705656,
    113.864154151050156,
    377.485237685302021,
    3209.37758913846947,
    0.185777706184603153,
)
_ERF_B = (23.6012909523441209, 244.024637934444173, 1282.61652607737228, 2844.23683343917062)
_ERF_C = (
    0.564188496988670089,
    8.88314979438837594,
    66.1191906371416295,
    298.635138197400131,
    881.95222124176909,
    1712.04761263407058,
    2051.07837782607147,
    1230.33935479799725,
    2.15311535474403846e-8,
)
_ERF_D = (
    15.7449261107098347,
    117.693950891312499,
    537.181101862009858,
    1621.38957456669019,
    3290.79923573345963,
    4362.61909014324716,
    3439.36767414372164,
    1230.33935480374942,
)
_ERF_P = (
    0.305326634961232344,
    0.360344899949804439,
    0.125781726111229246,
    0.0160837851487422766,
    6.58749161529837803e-4,
    0.0163153871373020978,
)
_ERF_Q = (
    2.56852019228982242,
    1.87295284992346047,
    0.527905102951428412,
    0.0605183413124413191,
    0.00233520497626869185,
)
_SQRPI = 0.56418958354775628695  # 1/sqrt(pi)


@njit(cache=True, error_model="numpy", fastmath={"contract"}, inline="always")
def _exp_x_squared(x: float) -> float:
    """exp(x^2) with the argument split so that x^2 carries no rounding error (Cody)."""
    xs = math.floor(x * 16.0) / 16.0 if x > 0 else -math.floor(-x * 16.0) / 16.0
    d = (x - xs) * (x + xs)
    return math.exp(xs * xs) * math.exp(d)


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def erfcx(x: float) -> float:
    """Scaled complementary error function erfcx(x) = exp(x^2) erfc(x) (Cody 1969/1990).

    For x > 0.46875 the value comes from rational functions without any exponential,
    which is what keeps the normalised Black function accurate in the wings.
    """
    y = abs(x)
    if y <= 0.46875:
        ysq = y * y
        xnum = _ERF_A[4] * ysq
        xden = ysq
        for i in range(3):
            xnum = (xnum + _ERF_A[i]) * ysq
            xden = (xden + _ERF_B[i]) * ysq
        erf_x = x * (xnum + _ERF_A[3]) / (xden + _ERF_B[3])
        return (1.0 - erf_x) * math.exp(ysq)
    if y <= 4.0:
        xnum = _ERF_C[8] * y
        xden = y
        for i in range(7):
            xnum = (xnum + _ERF_C[i]) * y
            xden = (xden + _ERF_D[i]) * y
        result = (xnum + _ERF_C[7]) / (xden + _ERF_D[7])
    elif y >= 6.71e7:
        result = _SQRPI / y
    else:
        ysq = 1.0 / (y * y)
        xnum = _ERF_P[5] * ysq
        xden = ysq
        for i in range(4):
            xnum = (xnum + _ERF_P[i]) * ysq
            xden = (xden + _ERF_Q[i]) * ysq
        result = ysq * (xnum + _ERF_P[4]) / (xden + _ERF_Q[4])
        result = (_SQRPI - result) / y
    if x < 0.0:
        if x < -26.628:
            return math.inf
        e = _exp_x_squared(x)
        result = e + e - result
    return result


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def norm_cdf(z: float) -> float:
    """Standard normal CDF Phi(z) = erfc(-z/sqrt 2)/2 (libm erfc, full relative accuracy)."""
    return 0.5 * math.erfc(-z * ONE_OVER_SQRT_TWO)


@njit(cache=True, error_model="numpy", fastmath={"contract"}, inline="always")
def norm_pdf(z: float) -> float:
    """Standard normal density."""
    return ONE_OVER_SQRT_TWO_PI * math.exp(-0.5 * z * z)


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def inverse_norm_cdf(u: float) -> float:
    """Inverse standard normal CDF, Wichura's AS241 (PPND16), relative accuracy ~1e-16."""
    if u <= 0.0:
        return -math.inf
    if u >= 1.0:
        return math.inf
    q = u - 0.5
    if abs(q) <= 0.425:
        r = 0.180625 - q * q
        return (
            q
            * (
                (
                    (
                        (
                            (
                                (
                                    (2.5090809287301226727e3 * r + 3.3430575583588128105e4) * r
                                    + 6.7265770927008700853e4
                                )
                                * r
                                + 4.5921953931549871457e4
                            )
                            * r
                            + 1.3731693765509461125e4
                        )
                        * r
                        + 1.9715909503065514427e3
                    )
                    * r
                    + 1.3314166789178437745e2
                )
                * r
                + 3.3871328727963666080e0
            )
            / (
                (
                    (
                        (
                            (
                                (
                                    (5.2264952788528545610e3 * r + 2.8729085735721942674e4) * r
                                    + 3.9307895800092710610e4
                                )
                                * r
                                + 2.1213794301586595867e4
                            )
                            * r
                            + 5.3941960214247511077e3
                        )
                        * r
                        + 6.8718700749205790830e2
                    )
                    * r
                    + 4.2313330701600911252e1
                )
                * r
                + 1.0
            )
        )
    r = u if q < 0.0 else 1.0 - u
    r = math.sqrt(-math.log(r))
    if r < 5.0:
        r -= 1.6
        ret = (
            (
                (
                    (
                        (
                            (
                                (7.74545014278341407640e-4 * r + 2.27238449892691845833e-2) * r
                                + 2.41780725177450611770e-1
                            )
                            * r
                            + 1.27045825245236838258e0
                        )
                        * r
                        + 3.64784832476320460504e0
                    )
                    * r
                    + 5.76949722146069140550e0
                )
                * r
                + 4.63033784615654529590e0
            )
            * r
            + 1.42343711074968357734e0
        ) / (
            (
                (
                    (
                        (
                            (
                                (1.05075007164441684324e-9 * r + 5.47593808499534494600e-4) * r
                                + 1.51986665636164571966e-2
                            )
                            * r
                            + 1.48103976427480074590e-1
                        )
                        * r
                        + 6.89767334985100004550e-1
                    )
                    * r
                    + 1.67638483018380384940e0
                )
                * r
                + 2.05319162663775882187e0
            )
            * r
            + 1.0
        )
    else:
        r -= 5.0
        ret = (
            (
                (
                    (
                        (
                            (
                                (2.01033439929228813265e-7 * r + 2.71155556874348757815e-5) * r
                                + 1.24266094738807843860e-3
                            )
                            * r
                            + 2.65321895265761230930e-2
                        )
                        * r
                        + 2.96560571828504891230e-1
                    )
                    * r
                    + 1.78482653991729133580e0
                )
                * r
                + 5.46378491116411436990e0
            )
            * r
            + 6.65790464350110377720e0
        ) / (
            (
                (
                    (
                        (
                            (
                                (2.04426310338993978564e-15 * r + 1.42151175831644588870e-7) * r
                                + 1.84631831751005468180e-5
                            )
                            * r
                            + 7.86869131145613259100e-4
                        )
                        * r
                        + 1.48753612908506148525e-2
                    )
                    * r
                    + 1.36929880922735805310e-1
                )
                * r
                + 5.99832206555887937690e-1
            )
            * r
            + 1.0
        )
    return -ret if q < 0.0 else ret


# ---------------------------------------------------------------------------------------
# Normalised Black function b(x, s) and its s-derivative
# ---------------------------------------------------------------------------------------


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def normalised_intrinsic_call(x: float) -> float:
    """max(e^{x/2} - e^{-x/2}, 0) = 2 sinh(x/2)^+, by its Taylor series near x = 0."""
    if x <= 0.0:
        return 0.0
    x2 = x * x
    if x2 < 98.0 * FOURTH_ROOT_DBL_EPSILON:
        return x * (
            1.0 + x2 * (1.0 / 24.0 + x2 * (1.0 / 1920.0 + x2 * (1.0 / 322560.0 + x2 / 92897280.0)))
        )
    b_max = math.exp(0.5 * x)
    return b_max - 1.0 / b_max


def _asymptotic_coefficients(order: int) -> np.ndarray:
    """Coefficients of P_k(e) = (-1)^k sum_j 2 C(2k+1, 2j+1) e^j, k = 1..order (row k-1)."""
    table = np.zeros((order, order + 1))
    for k in range(1, order + 1):
        for j in range(k + 1):
            table[k - 1, j] = (-1) ** k * 2 * math.comb(2 * k + 1, 2 * j + 1)
    return table


_ASYMPTOTIC_ORDER = 17
_ASYMPTOTIC_COEFFS = _asymptotic_coefficients(_ASYMPTOTIC_ORDER)


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def _asymptotic_expansion(h: float, t: float) -> float:
    """b for h < -10 and small t, from the expansion of Y(h+t) - Y(h-t), Y = Phi/phi.

    With r = (h+t)(h-t), q = (h/r)^2 and e = (t/h)^2 (Abramowitz & Stegun 26.2.12,
    Jäckel 2015, section 3):

        b = exp(-(h^2+t^2)/2)/sqrt(2 pi) * (t/r) * [2 + q (P_1 + 3q (P_2 + 5q (P_3 + ... 33q P_17)))]

    where P_k(e) = (-1)^k sum_j 2 C(2k+1, 2j+1) e^j. Seventeen orders give relative
    accuracy ~1.6e-16 for h <= -10.
    """
    e = (t / h) * (t / h)
    r = (h + t) * (h - t)
    q = (h / r) * (h / r)
    acc = 0.0
    for k in range(_ASYMPTOTIC_ORDER, 0, -1):
        poly = 0.0
        for j in range(k, -1, -1):
            poly = poly * e + _ASYMPTOTIC_COEFFS[k - 1, j]
        acc = poly + (2 * k + 1) * q * acc
    series = 2.0 + q * acc
    b = ONE_OVER_SQRT_TWO_PI * math.exp(-0.5 * (h * h + t * t)) * (t / r) * series
    return max(b, 0.0)


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def _small_t_expansion(h: float, t: float) -> float:
    """b for t = s/2 < 2 eps^(1/16) ~ 0.21: twelfth-order expansion of Y(h+t) - Y(h-t) in t.

    Uses a = 1 + h Y(h) with Y(h) = sqrt(pi/2) erfcx(-h/sqrt 2) (Jäckel 2015, section 3).
    """
    a = 1.0 + h * (0.5 * SQRT_TWO_PI) * erfcx(-ONE_OVER_SQRT_TWO * h)
    w = t * t
    h2 = h * h
    expansion = (
        2.0
        * t
        * (
            a
            + w
            * (
                (-1.0 + 3.0 * a + a * h2) / 6.0
                + w
                * (
                    (-7.0 + 15.0 * a + h2 * (-1.0 + 10.0 * a + a * h2)) / 120.0
                    + w
                    * (
                        (
                            -57.0
                            + 105.0 * a
                            + h2 * (-18.0 + 105.0 * a + h2 * (-1.0 + 21.0 * a + a * h2))
                        )
                        / 5040.0
                        + w
                        * (
                            (
                                -561.0
                                + 945.0 * a
                                + h2
                                * (
                                    -285.0
                                    + 1260.0 * a
                                    + h2 * (-33.0 + 378.0 * a + h2 * (-1.0 + 36.0 * a + a * h2))
                                )
                            )
                            / 362880.0
                            + w
                            * (
                                (
                                    -6555.0
                                    + 10395.0 * a
                                    + h2
                                    * (
                                        -4680.0
                                        + 17325.0 * a
                                        + h2
                                        * (
                                            -840.0
                                            + 6930.0 * a
                                            + h2
                                            * (-52.0 + 990.0 * a + h2 * (-1.0 + 55.0 * a + a * h2))
                                        )
                                    )
                                )
                                / 39916800.0
                                + (
                                    (
                                        -89055.0
                                        + 135135.0 * a
                                        + h2
                                        * (
                                            -82845.0
                                            + 270270.0 * a
                                            + h2
                                            * (
                                                -20370.0
                                                + 135135.0 * a
                                                + h2
                                                * (
                                                    -1926.0
                                                    + 25740.0 * a
                                                    + h2
                                                    * (
                                                        -75.0
                                                        + 2145.0 * a
                                                        + h2 * (-1.0 + 78.0 * a + a * h2)
                                                    )
                                                )
                                            )
                                        )
                                    )
                                    * w
                                )
                                / 6227020800.0
                            )
                        )
                    )
                )
            )
        )
    )
    b = ONE_OVER_SQRT_TWO_PI * math.exp(-0.5 * (h * h + t * t)) * expansion
    return max(b, 0.0)


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def _black_using_norm_cdf(x: float, s: float) -> float:
    """b = Phi(h+t) e^{x/2} - Phi(h-t) e^{-x/2} directly (used when b > ~0.85 b_max)."""
    h = x / s
    t = 0.5 * s
    b_max = math.exp(0.5 * x)
    b = norm_cdf(h + t) * b_max - norm_cdf(h - t) / b_max
    return max(b, 0.0)


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def _black_using_erfcx(h: float, t: float) -> float:
    """b = exp(-(h^2+t^2)/2)/2 [erfcx(-(h+t)/sqrt 2) - erfcx(-(h-t)/sqrt 2)] (one exponential)."""
    b = (
        0.5
        * math.exp(-0.5 * (h * h + t * t))
        * (erfcx(-ONE_OVER_SQRT_TWO * (h + t)) - erfcx(-ONE_OVER_SQRT_TWO * (h - t)))
    )
    return max(b, 0.0)


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def normalised_black_call(x: float, s: float) -> float:
    """Normalised Black call b(x, s) = Phi(x/s + s/2) e^{x/2} - Phi(x/s - s/2) e^{-x/2}.

    In-the-money (x > 0) values are intrinsic + b(-x, s) (put-call parity in normalised
    form); the out-of-the-money value is evaluated in one of four regions so that it keeps
    full relative accuracy down to the smallest representable prices.
    """
    if x > 0.0:
        return normalised_intrinsic_call(x) + normalised_black_call(-x, s)
    if s <= 0.0:
        return 0.0
    if x < s * ASYMPTOTIC_EXPANSION_THRESHOLD and 0.5 * s * s + x < s * (
        SMALL_T_EXPANSION_THRESHOLD + ASYMPTOTIC_EXPANSION_THRESHOLD
    ):
        return _asymptotic_expansion(x / s, 0.5 * s)
    if 0.5 * s < SMALL_T_EXPANSION_THRESHOLD:
        return _small_t_expansion(x / s, 0.5 * s)
    if x + 0.5 * s * s > s * 0.85:
        return _black_using_norm_cdf(x, s)
    return _black_using_erfcx(x / s, 0.5 * s)


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def normalised_vega(x: float, s: float) -> float:
    """db/ds = phi(x/s + s/2) e^{x/2} = exp(-(x/s)^2/2 - s^2/8)/sqrt(2 pi)."""
    ax = abs(x)
    if ax <= 0.0:
        return ONE_OVER_SQRT_TWO_PI * math.exp(-0.125 * s * s)
    if s <= 0.0 or s <= ax * SQRT_DBL_MIN:
        return 0.0
    h = x / s
    return ONE_OVER_SQRT_TWO_PI * math.exp(-0.5 * (h * h + 0.25 * s * s))


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def _black_and_vega(x: float, s: float) -> tuple[float, float]:
    """(b(x, s), db/ds) for x <= 0, sharing the exponential in the erfcx region."""
    t = 0.5 * s
    if (
        s > 0.0
        and t >= SMALL_T_EXPANSION_THRESHOLD
        and x + 0.5 * s * s <= s * 0.85
        and not (
            x < s * ASYMPTOTIC_EXPANSION_THRESHOLD
            and 0.5 * s * s + x < s * (SMALL_T_EXPANSION_THRESHOLD + ASYMPTOTIC_EXPANSION_THRESHOLD)
        )
    ):
        h = x / s
        e = math.exp(-0.5 * (h * h + t * t))
        b = 0.5 * e * (erfcx(-ONE_OVER_SQRT_TWO * (h + t)) - erfcx(-ONE_OVER_SQRT_TWO * (h - t)))
        return max(b, 0.0), ONE_OVER_SQRT_TWO_PI * e
    return normalised_black_call(x, s), normalised_vega(x, s)


# ---------------------------------------------------------------------------------------
# Rational cubic interpolation (Delbourgo & Gregory 1985), as used by Jäckel
# ---------------------------------------------------------------------------------------


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def _rational_cubic_interpolation(
    x: float, x_l: float, x_r: float, y_l: float, y_r: float, d_l: float, d_r: float, r: float
) -> float:
    h = x_r - x_l
    if abs(h) <= 0.0:
        return 0.5 * (y_l + y_r)
    t = (x - x_l) / h
    if not (r >= MAX_RATIONAL_CUBIC_CONTROL):
        omt = 1.0 - t
        t2 = t * t
        omt2 = omt * omt
        return (
            y_r * t2 * t
            + (r * y_r - h * d_r) * t2 * omt
            + (r * y_l + h * d_l) * t * omt2
            + y_l * omt2 * omt
        ) / (1.0 + (r - 3.0) * t * omt)
    return y_r * t + y_l * (1.0 - t)


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def _minimum_rational_cubic_control(d_l: float, d_r: float, s: float, prefer_shape: bool) -> float:
    monotonic = d_l * s >= 0.0 and d_r * s >= 0.0
    convex = d_l <= s <= d_r
    concave = d_l >= s >= d_r
    if not monotonic and not convex and not concave:
        return MIN_RATIONAL_CUBIC_CONTROL
    d_r_m_d_l = d_r - d_l
    d_r_m_s = d_r - s
    s_m_d_l = s - d_l
    r1 = -DBL_MAX
    r2 = r1
    if monotonic:
        if abs(s) >= DBL_MIN:
            r1 = (d_r + d_l) / s
        elif prefer_shape:
            r1 = MAX_RATIONAL_CUBIC_CONTROL
    if convex or concave:
        if not (abs(s_m_d_l) < DBL_MIN or abs(d_r_m_s) < DBL_MIN):
            r2 = max(abs(d_r_m_d_l / d_r_m_s), abs(d_r_m_d_l / s_m_d_l))
        elif prefer_shape:
            r2 = MAX_RATIONAL_CUBIC_CONTROL
    elif monotonic and prefer_shape:
        r2 = MAX_RATIONAL_CUBIC_CONTROL
    return max(MIN_RATIONAL_CUBIC_CONTROL, max(r1, r2))


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def _control_fit_left(
    x_l: float,
    x_r: float,
    y_l: float,
    y_r: float,
    d_l: float,
    d_r: float,
    dd_l: float,
    prefer_shape: bool,
) -> float:
    """Convex control parameter matching the second derivative at the left end."""
    h = x_r - x_l
    numerator = 0.5 * h * dd_l + (d_r - d_l)
    if abs(numerator) < DBL_MIN:
        r = 0.0
    else:
        denominator = (y_r - y_l) / h - d_l
        if abs(denominator) < DBL_MIN:
            r = MAX_RATIONAL_CUBIC_CONTROL if numerator > 0.0 else MIN_RATIONAL_CUBIC_CONTROL
        else:
            r = numerator / denominator
    r_min = _minimum_rational_cubic_control(d_l, d_r, (y_r - y_l) / h, prefer_shape)
    return max(r, r_min)


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def _control_fit_right(
    x_l: float,
    x_r: float,
    y_l: float,
    y_r: float,
    d_l: float,
    d_r: float,
    dd_r: float,
    prefer_shape: bool,
) -> float:
    """Convex control parameter matching the second derivative at the right end."""
    h = x_r - x_l
    numerator = 0.5 * h * dd_r + (d_r - d_l)
    if abs(numerator) < DBL_MIN:
        r = 0.0
    else:
        denominator = d_r - (y_r - y_l) / h
        if abs(denominator) < DBL_MIN:
            r = MAX_RATIONAL_CUBIC_CONTROL if numerator > 0.0 else MIN_RATIONAL_CUBIC_CONTROL
        else:
            r = numerator / denominator
    r_min = _minimum_rational_cubic_control(d_l, d_r, (y_r - y_l) / h, prefer_shape)
    return max(r, r_min)


# ---------------------------------------------------------------------------------------
# Transformations of the lowest and highest branches (Jäckel 2015, section 4)
# ---------------------------------------------------------------------------------------


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def _f_lower_map(x: float, s: float) -> tuple[float, float, float]:
    """f(b) = 2 pi |x| Phi(-z)^3 / sqrt(27), z = |x|/(s sqrt 3), with df/db and d2f/db2."""
    ax = abs(x)
    z = SQRT_ONE_OVER_THREE * ax / s
    y = z * z
    s2 = s * s
    # Mills ratio Phi(-z)/phi(z) = sqrt(pi/2) erfcx(z/sqrt 2): no underflow, one exponential.
    mills = SQRT_PI_OVER_TWO * erfcx(ONE_OVER_SQRT_TWO * z)
    phi_cdf = ONE_OVER_SQRT_TWO_PI * math.exp(-0.5 * y) * mills
    growth = math.exp(y + 0.125 * s2)
    fpp = (
        PI_OVER_SIX
        * y
        / (s2 * s)
        * phi_cdf
        * (8.0 * SQRT_THREE * s * ax + (3.0 * s2 * (s2 - 8.0) - 8.0 * x * x) * mills)
        * (growth * growth)
    )
    phi2 = phi_cdf * phi_cdf
    fp = TWO_PI * y * phi2 * growth
    f = TWO_PI_OVER_SQRT_TWENTY_SEVEN * ax * (phi2 * phi_cdf)
    return f, fp, fpp


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def _inverse_f_lower_map(x: float, f: float) -> float:
    if f <= 0.0:
        return 0.0
    return abs(
        x / (SQRT_THREE * inverse_norm_cdf(np.cbrt(f / (TWO_PI_OVER_SQRT_TWENTY_SEVEN * abs(x)))))
    )


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def _f_upper_map(x: float, s: float) -> tuple[float, float, float]:
    """f(b) = Phi(-s/2) as a function of b, with df/db and d2f/db2."""
    f = norm_cdf(-0.5 * s)
    if x == 0.0:
        return f, -0.5, 0.0
    w = (x / s) * (x / s)
    fp = -0.5 * math.exp(0.5 * w)
    fpp = SQRT_PI_OVER_TWO * math.exp(w + 0.125 * s * s) * w / s
    return f, fp, fpp


@njit(cache=True, error_model="numpy", fastmath={"contract"}, inline="always")
def _householder_factor(newton: float, halley: float, hh3: float) -> float:
    return (1.0 + 0.5 * halley * newton) / (1.0 + newton * (halley + hh3 * newton / 6.0))


# ---------------------------------------------------------------------------------------
# Implied normalised volatility for an out-of-the-money call (x <= 0)
# ---------------------------------------------------------------------------------------


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def _implied_s_otm_call(beta: float, x: float, n_max: int) -> float:
    """Solve b(x, s) = beta for s, given x <= 0 and 0 < beta < e^{x/2}.

    Four branches for the initial guess (rational cubic interpolation, the outer two in
    transformed coordinates), then ``n_max`` Householder(3) steps on the branch objective:
    g = 1/ln b - 1/ln beta (lowest), g = b - beta (middle), g = ln((b_max - beta)/(b_max - b))
    (highest). A bracket [s_left, s_right] is kept; a step leaving it, or three direction
    reversals, falls back to bisection.
    """
    b_max = math.exp(0.5 * x)
    iterations = 0
    direction_reversals = 0
    s = -DBL_MAX
    ds = s
    ds_previous = 0.0
    s_left = DBL_MIN
    s_right = DBL_MAX
    s_c = math.sqrt(abs(2.0 * x))
    # At s_c = sqrt(2|x|): h + t = 0 and h^2 + t^2 = |x|, so outside the small-t region
    # b_c = e^{-|x|/2} (1 - erfcx(sqrt|x|)) / 2 and the vega is e^{-|x|/2}/sqrt(2 pi).
    if 0.5 * s_c < SMALL_T_EXPANSION_THRESHOLD:
        b_c = normalised_black_call(x, s_c)
    else:
        b_c = max(0.5 * b_max * (1.0 - erfcx(math.sqrt(-x))), 0.0)
    v_c = ONE_OVER_SQRT_TWO_PI * b_max
    branch = 1  # 0 lowest, 1 middle, 2 highest
    if beta < b_c:
        s_l = s_c - b_c / v_c
        b_l, v_l = _black_and_vega(x, s_l)
        if beta < b_l:
            f_l, fp_l, fpp_l = _f_lower_map(x, s_l)
            r_ll = _control_fit_right(0.0, b_l, 0.0, f_l, 1.0, fp_l, fpp_l, True)
            f = _rational_cubic_interpolation(beta, 0.0, b_l, 0.0, f_l, 1.0, fp_l, r_ll)
            if not (f > 0.0):
                t = beta / b_l
                f = (f_l * t + b_l * (1.0 - t)) * t
            s = _inverse_f_lower_map(x, f)
            s_right = s_l
            branch = 0
        else:
            r_lm = _control_fit_right(b_l, b_c, s_l, s_c, 1.0 / v_l, 1.0 / v_c, 0.0, False)
            s = _rational_cubic_interpolation(beta, b_l, b_c, s_l, s_c, 1.0 / v_l, 1.0 / v_c, r_lm)
            s_left = s_l
            s_right = s_c
    else:
        s_h = s_c + (b_max - b_c) / v_c if v_c > DBL_MIN else s_c
        b_h, v_h = _black_and_vega(x, s_h)
        if beta <= b_h:
            r_hm = _control_fit_left(b_c, b_h, s_c, s_h, 1.0 / v_c, 1.0 / v_h, 0.0, False)
            s = _rational_cubic_interpolation(beta, b_c, b_h, s_c, s_h, 1.0 / v_c, 1.0 / v_h, r_hm)
            s_left = s_c
            s_right = s_h
        else:
            f_h, fp_h, fpp_h = _f_upper_map(x, s_h)
            f = -1.0
            if fpp_h > -SQRT_DBL_MAX and fpp_h < SQRT_DBL_MAX:
                r_hh = _control_fit_left(b_h, b_max, f_h, 0.0, fp_h, -0.5, fpp_h, True)
                f = _rational_cubic_interpolation(beta, b_h, b_max, f_h, 0.0, fp_h, -0.5, r_hh)
            if f <= 0.0:
                hh = b_max - b_h
                t = (beta - b_h) / hh
                f = (f_h * (1.0 - t) + 0.5 * hh * t) * (1.0 - t)
            s = -2.0 * inverse_norm_cdf(f)
            s_left = s_h
            if beta > 0.5 * b_max:
                branch = 2

    ln_beta = math.log(beta) if branch == 0 else 0.0
    while iterations < n_max and abs(ds) > DBL_EPSILON * s:
        if ds * ds_previous < 0.0:
            direction_reversals += 1
        if iterations > 0 and (direction_reversals == 3 or not (s_left < s < s_right)):
            s = 0.5 * (s_left + s_right)
            if s_right - s_left <= DBL_EPSILON * s:
                break
            direction_reversals = 0
            ds = 0.0
        ds_previous = ds
        b, bp = _black_and_vega(x, s)
        if b > beta and s < s_right:
            s_right = s
        elif b < beta and s > s_left:
            s_left = s
        h = x / s
        b_halley = h * h / s - s / 4.0
        b_hh3 = b_halley * b_halley - 3.0 * (h / s) * (h / s) - 0.25
        if branch == 0:
            if b <= 0.0 or bp <= 0.0:
                ds = 0.5 * (s_left + s_right) - s
            else:
                ln_b = math.log(b)
                bpob = bp / b
                newton = (ln_beta - ln_b) * ln_b / ln_beta / bpob
                halley = b_halley - bpob * (1.0 + 2.0 / ln_b)
                hh3 = (
                    b_hh3
                    + 2.0 * bpob * bpob * (1.0 + 3.0 / ln_b * (1.0 + 1.0 / ln_b))
                    - 3.0 * b_halley * bpob * (1.0 + 2.0 / ln_b)
                )
                ds = newton * _householder_factor(newton, halley, hh3)
        elif branch == 2:
            if b >= b_max or bp <= DBL_MIN:
                ds = 0.5 * (s_left + s_right) - s
            else:
                b_max_minus_b = b_max - b
                g = math.log((b_max - beta) / b_max_minus_b)
                gp = bp / b_max_minus_b
                newton = -g / gp
                halley = b_halley + gp
                hh3 = b_hh3 + gp * (2.0 * gp + 3.0 * b_halley)
                ds = newton * _householder_factor(newton, halley, hh3)
        else:
            newton = (beta - b) / bp
            ds = newton * _householder_factor(newton, b_halley, b_hh3)
        ds = max(-0.5 * s, ds)
        s += ds
        iterations += 1
    return s


@njit(cache=True, error_model="numpy", fastmath={"contract"}, inline="always")
def log_moneyness(f: float, k: float) -> float:
    """x = ln(F/K) to full relative accuracy near the money.

    For K/2 <= F <= 2K the difference F - K is exact (Sterbenz), so log1p((F-K)/K) carries
    one rounding relative to x itself instead of one relative to F/K ~ 1.
    """
    if 0.5 * k <= f <= 2.0 * k:
        return math.log1p((f - k) / k)
    return math.log(f / k)


# ---------------------------------------------------------------------------------------
# Array loops called by the public API
# ---------------------------------------------------------------------------------------


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def price_loop(
    forward: np.ndarray,
    strike: np.ndarray,
    t: np.ndarray,
    vol: np.ndarray,
    is_call: np.ndarray,
    discount: np.ndarray,
    out: np.ndarray,
) -> None:
    """Discounted Black-76 prices: DF (intrinsic + sqrt(F K) b(-|x|, s)), inputs pre-validated."""
    for i in range(forward.size):
        f = forward[i]
        k = strike[i]
        theta = 1.0 if is_call[i] else -1.0
        intrinsic = max(theta * (f - k), 0.0)
        s = vol[i] * math.sqrt(t[i])
        time_value = 0.0
        if s > 0.0:
            x = log_moneyness(f, k)
            time_value = math.sqrt(f) * math.sqrt(k) * normalised_black_call(-abs(x), s)
        out[i] = discount[i] * (intrinsic + time_value)


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def normalised_price_loop(x: np.ndarray, s: np.ndarray, theta: np.ndarray, out: np.ndarray) -> None:
    """b(theta x, s) for theta = +-1 (put via b_put(x, s) = b_call(-x, s))."""
    for i in range(x.size):
        xi = x[i] if theta[i] > 0.0 else -x[i]
        out[i] = normalised_black_call(xi, s[i])


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def implied_vol_loop(
    price: np.ndarray,
    forward: np.ndarray,
    strike: np.ndarray,
    t: np.ndarray,
    is_call: np.ndarray,
    discount: np.ndarray,
    n_max: int,
    vol: np.ndarray,
    status: np.ndarray,
) -> None:
    """Implied Black vols with a status code per option (see volcal.black.IVStatus)."""
    for i in range(price.size):
        p = price[i]
        f = forward[i]
        k = strike[i]
        ti = t[i]
        df = discount[i]
        vol[i] = math.nan
        if not (
            math.isfinite(p)
            and math.isfinite(f)
            and math.isfinite(k)
            and math.isfinite(ti)
            and math.isfinite(df)
            and f > 0.0
            and k > 0.0
            and ti > 0.0
            and df > 0.0
            and p >= 0.0
        ):
            status[i] = ST_INVALID_INPUT
            continue
        p = p / df
        call = is_call[i]
        intrinsic = max(f - k, 0.0) if call else max(k - f, 0.0)
        upper = f if call else k
        if p < intrinsic:
            status[i] = ST_BELOW_INTRINSIC
            continue
        if p >= upper:
            status[i] = ST_ABOVE_BOUND
            continue
        # Out-of-the-money side via parity on the undiscounted price: C - P = F - K.
        time_value = p - intrinsic
        if time_value <= 0.0:
            status[i] = ST_AT_INTRINSIC
            continue
        x = log_moneyness(f, k)
        beta = time_value / (math.sqrt(f) * math.sqrt(k))
        x_otm = -abs(x)
        if beta >= math.exp(0.5 * x_otm):
            status[i] = ST_ABOVE_BOUND
            continue
        s = _implied_s_otm_call(beta, x_otm, n_max)
        if not (math.isfinite(s) and s > 0.0):
            status[i] = ST_NO_CONVERGENCE
            continue
        vol[i] = s / math.sqrt(ti)
        status[i] = ST_OK
