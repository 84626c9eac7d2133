"""Exception and warning classes.

Every error a user can cause by their input derives from :class:`VolcalError`, so the
CLI can turn it into a one-line message with a non-zero exit code instead of a
traceback. Library code never prints; it raises or warns with these classes.
"""

from __future__ import annotations


class VolcalError(Exception):
    """Base class of every error volcal raises on purpose."""


class DataError(VolcalError, ValueError):
    """Input data is malformed, truncated, inconsistent or missing required fields."""


class ParameterError(VolcalError, ValueError):
    """A model or method parameter is outside its valid domain."""


class MethodError(VolcalError, ValueError):
    """A numerical method cannot honour the request (e.g. Monte Carlo for a model
    without a simulator)."""


class FetchError(VolcalError):
    """A live fetch from a venue failed after retries."""


class VolcalWarning(UserWarning):
    """Base class of volcal warnings."""


class CalibrationWarning(VolcalWarning):
    """A calibration finished with a caveat: bound hit, Feller violated,
    ill-conditioned Jacobian, no convergence, time limit."""


class DataWarning(VolcalWarning):
    """Input data was usable but something in it was suspicious (and flagged)."""
