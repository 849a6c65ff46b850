"""One fit of one table method: the reproduction's single way to turn a method name into a fitted model.

Every family names its methods as the tables do: ``vEM`` (EM with the weights fixed),
``oEM`` (EM re-estimating the weights), ``sEM`` (Sinkhorn-EM), all three
:class:`sinkhorn_em.EOTGaussianMixture`, and ``sklearn`` (scikit-learn's
``GaussianMixture``, the external baseline). :func:`fit_table_method` builds the estimator
from explicit initial parameters, fits it, and returns it with its wall time and the
convergence warnings it raised (recorded, not printed: thousands of fits per job would
bury the logs; the tables carry ``converged`` / ``sinkhorn_converged`` columns instead).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from sinkhorn_em import EOTGaussianMixture, SinkhornConvergenceWarning

__all__ = ["ESTIMATOR_METHOD", "TABLE_METHODS", "FitOutcome", "fit_table_method"]

#: Table names of the methods of :class:`sinkhorn_em.EOTGaussianMixture` -> its ``method``.
ESTIMATOR_METHOD = {"vEM": "em", "oEM": "oem", "sEM": "sinkhorn"}
#: Every method a table may name: the three above and scikit-learn's GaussianMixture.
TABLE_METHODS = (*ESTIMATOR_METHOD, "sklearn")


@dataclass(frozen=True)
class FitOutcome:
    """A fitted model, the wall time of its ``fit`` and the convergence warnings it raised."""

    model: object
    seconds: float
    caught: tuple[warnings.WarningMessage, ...]

    @property
    def sinkhorn_converged(self) -> bool:
        """Whether every balanced solve reached its tolerance (True for methods without one)."""
        return not any(issubclass(w.category, SinkhornConvergenceWarning) for w in self.caught)

    @property
    def converged(self) -> bool:
        """The estimator's own ``converged_`` flag (outer loop)."""
        return bool(self.model.converged_)


def fit_table_method(
    method: str,
    X: np.ndarray,
    *,
    weights,
    means_init,
    covariances_init,
    covariance_type: str = "full",
    tol: float = 1e-6,
    max_iter: int = 500,
    reg_covar: float = 1e-6,
    epsilon: float = 1.0,
    epsilon_schedule=None,
    sinkhorn_tol: float = 1e-9,
    sinkhorn_max_iter: int = 1000,
    keep_trajectory: bool = False,
) -> FitOutcome:
    """Fit ``method`` (a table name: vEM, oEM, sEM or sklearn) to ``X`` from the given start.

    The three :class:`~sinkhorn_em.EOTGaussianMixture` methods get ``weights`` as their
    known weights (oEM: as its starting weights), ``means_init`` / ``covariances_init`` as
    the start, and never track the EOT loss along the fit (the tables do not use it; it
    costs a balanced solve per iteration). ``sklearn`` is ``GaussianMixture`` started from
    the same weights, means and (symmetrised) precisions, which override its own
    initialisation entirely, for full (``covariances_init`` of shape (K, d, d)) or tied
    ((d, d)) covariances; it supports neither ``epsilon`` nor the Sinkhorn options.

    Convergence warnings (``ConvergenceWarning``, ``SinkhornConvergenceWarning``) are
    returned in :attr:`FitOutcome.caught`; any other warning is re-emitted.
    """
    weights = np.asarray(weights, dtype=float)
    if method == "sklearn":
        model = _sklearn_mixture(weights, means_init, covariances_init, covariance_type, tol, max_iter, reg_covar)
    elif method in ESTIMATOR_METHOD:
        model = EOTGaussianMixture(
            n_components=weights.size,
            weights=weights,
            method=ESTIMATOR_METHOD[method],
            covariance_type=covariance_type,
            epsilon=epsilon,
            epsilon_schedule=epsilon_schedule,
            tol=tol,
            max_iter=int(max_iter),
            reg_covar=reg_covar,
            means_init=means_init,
            covariances_init=covariances_init,
            sinkhorn_tol=sinkhorn_tol,
            sinkhorn_max_iter=sinkhorn_max_iter,
            track_eot_loss=False,
            keep_trajectory=keep_trajectory,
            random_state=0,
        )
    else:
        raise ValueError(f"method must be one of {TABLE_METHODS}, got {method!r}.")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start = time.perf_counter()
        model.fit(X)
        seconds = time.perf_counter() - start
    expected = (SinkhornConvergenceWarning, ConvergenceWarning)
    for w in caught:
        if not issubclass(w.category, expected):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return FitOutcome(model, seconds, tuple(w for w in caught if issubclass(w.category, expected)))


def _sklearn_mixture(weights, means_init, covariances_init, covariance_type, tol, max_iter, reg_covar):
    from sklearn.mixture import GaussianMixture

    if covariance_type not in ("full", "tied"):
        raise ValueError(
            "The sklearn baseline is started from full (K, d, d) or tied (d, d) covariances only; "
            f"use covariance_type='full' or 'tied', got {covariance_type!r}."
        )
    covariances_init = np.asarray(covariances_init, dtype=float)
    expected_ndim = 3 if covariance_type == "full" else 2
    if covariances_init.ndim != expected_ndim:
        raise ValueError(
            f"covariance_type={covariance_type!r} needs covariances_init with {expected_ndim} dimensions "
            f"({'(K, d, d)' if expected_ndim == 3 else '(d, d)'}), got shape {covariances_init.shape}."
        )
    precisions = np.linalg.inv(covariances_init)
    return GaussianMixture(
        n_components=weights.size,
        covariance_type=covariance_type,
        tol=tol,
        reg_covar=reg_covar,
        max_iter=max_iter,
        n_init=1,
        # Overridden by the three *_init arguments; random_from_data is the cheapest.
        init_params="random_from_data",
        weights_init=weights,
        means_init=means_init,
        precisions_init=0.5 * (precisions + np.swapaxes(precisions, -1, -2)),
        random_state=0,
    )
