"""Gaussian mixtures with known weights fitted by EM, overparametrised EM or Sinkhorn-EM.

All three methods are block-coordinate descent on the free energy

.. math:: F(\\theta, P) = \\langle P, C_\\theta \\rangle + \\varepsilon\\,\\mathrm{KL}(P \\,\\|\\, (1/n) \\otimes \\alpha),
          \\qquad C_\\theta[i, k] = -\\log N(x_i; \\mu_k, \\Sigma_k),

alternating an E-step (minimise over the coupling ``P``) and an M-step (minimise over
``theta``, the usual weighted Gaussian estimates). They differ only in the E-step's
constraint set and in the weight update:

=============  ===========================================  ==========================
``method``     E-step (coupling constraints)                weights after the M-step
=============  ===========================================  ==========================
``"em"``       rows sum to 1/n (EM responsibilities)        fixed at ``alpha`` (vEM)
``"oem"``      rows sum to 1/n (EM responsibilities)        column masses of ``P`` (oEM)
``"sinkhorn"`` rows 1/n and columns ``alpha`` (Sinkhorn)     fixed at ``alpha`` (sEM)
=============  ===========================================  ==========================

The objective minimised is the NLL for ``em``/``oem`` and the EOT loss for ``sinkhorn``
(Mena, Nejatbakhsh, Varol & Niles-Weed 2020; Vayer & Lasalle 2025), so each is
non-increasing along the iterations.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy.special import logsumexp
from sklearn.base import BaseEstimator, DensityMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from ._validation import (
    check_covariance_type,
    check_covariances,
    check_means,
    check_weights,
)
from .gaussian import (
    MomentFeatures,
    estimate_gaussian_parameters,
    gaussian_cost,
    n_covariance_parameters,
    precision_cholesky,
)
from .losses import _posterior, balanced_value, free_energy
from .sinkhorn import SinkhornConvergenceWarning

__all__ = ["INITS", "METHODS", "EOTGaussianMixture"]

METHODS = ("em", "oem", "sinkhorn")
SINKHORN_SOLVERS = ("newton", "sinkhorn")
INITS = ("k-means++", "random_from_data", "random")


@dataclass
class _EStep:
    """What one E-step returns: M-step weights (responsibilities or the plan) and objective values."""

    resp: np.ndarray
    masses: np.ndarray | None  # column sums of resp when known (the weights, for a balanced plan)
    objective: float
    nll: float
    eot_loss: float
    sinkhorn_iterations: int
    sinkhorn_converged: bool


@dataclass
class _Run:
    """Outcome of one initialisation."""

    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray
    objective: float
    converged: bool
    n_iter: int
    history: pd.DataFrame
    trajectory: list | None
    sinkhorn_failures: int


class EOTGaussianMixture(DensityMixin, BaseEstimator):
    """Gaussian mixture with known mixing weights, fitted by EM, oEM or Sinkhorn-EM.

    Parameters
    ----------
    n_components : int, default=1
        Number of components ``K``.
    weights : array-like of shape (K,), default=None
        Known mixing weights ``alpha`` (positive, summing to 1). ``None`` means uniform.
        For ``method="oem"`` they are only the starting weights.
    method : {"sinkhorn", "em", "oem"}, default="sinkhorn"
        ``"sinkhorn"``: Sinkhorn-EM (balanced E-step, weights fixed); ``"em"``: EM with
        weights fixed (vEM); ``"oem"``: EM re-estimating weights (overparametrised EM).
    covariance_type : {"full", "diag", "spherical", "tied"}, default="full"
    epsilon : float, default=1.0
        Entropic weight. ``1`` gives the likelihood/EOT loss of the paper; other values
        temper the E-step (responsibilities proportional to ``alpha_k exp(-C_ik/eps)``).
    tol : float, default=1e-6
        Stop when the objective decreases by less than ``tol``. ``0`` runs exactly
        ``max_iter`` iterations.
    max_iter : int, default=500
        Maximum number of EM iterations (M-steps).
    reg_covar : float, default=1e-6
        Added to the diagonal of every covariance estimate.
    init : {"k-means++", "random_from_data", "random"}, default="k-means++"
        Initial means: k-means++ seeding, random data points, or (as scikit-learn's
        ``"random"``) an M-step on random responsibilities. Unless ``covariances_init``
        is given, initial covariances come from an M-step on the hard assignment of each
        point to its nearest initial mean (the pooled data covariance for a component
        with fewer than two points).
    n_init : int, default=1
        Number of initialisations; the fit with the lowest final objective is kept.
    means_init : array-like of shape (K, d), default=None
        Initial means (overrides ``init``).
    covariances_init : array-like, default=None
        Initial covariances in the layout of ``covariance_type``.
    sinkhorn_tol : float, default=1e-9
        Tolerance on the row-marginal L1 error of each Sinkhorn solve.
    sinkhorn_max_iter : int, default=1000
        Maximum Sinkhorn iterations per E-step.
    sinkhorn_solver : {"newton", "sinkhorn"}, default="newton"
        Algorithm for every balanced solve (the Sinkhorn-EM E-step, the tracked and final
        EOT losses, ``transport_plan``). Both solve the same problem to the same tolerance:
        ``"sinkhorn"`` iterates log-domain Sinkhorn (:func:`~sinkhorn_em.sinkhorn.sinkhorn_log`);
        ``"newton"`` keeps Sinkhorn's row update but takes Newton steps on the
        ``K``-dimensional column potential (:func:`~sinkhorn_em.sinkhorn.sinkhorn_newton`),
        which needs a few iterations where Sinkhorn needs hundreds (well-separated
        components whose known weights differ from their current masses).
    random_state : int, RandomState or None, default=None
    epsilon_schedule : array-like of float, default=None
        Entropic weights for the first ``len(epsilon_schedule)`` iterations (annealing);
        ``epsilon`` afterwards. The convergence test starts once the schedule is over.
    track_eot_loss : bool, default=True
        For ``em``/``oem``, also solve the balanced problem at every iteration so that
        ``history_`` holds the EOT loss (costs one warm-started balanced solve per iteration).
    keep_trajectory : bool, default=False
        Store the parameters of every iterate in ``trajectory_``.

    Attributes
    ----------
    weights_ : ndarray of shape (K,)
    means_ : ndarray of shape (K, d)
    covariances_ : ndarray
    precisions_cholesky_ : ndarray
    converged_ : bool
    n_iter_ : int
        Number of M-steps of the best initialisation.
    lower_bound_ : float
        Final objective (NLL for em/oem, EOT loss for sinkhorn, at ``epsilon``).
    history_ : pandas.DataFrame
        One row per iterate ``t = 0..n_iter_`` (``t = 0`` is the initialisation):
        ``iteration``, ``epsilon``, ``objective``, ``nll`` (at eps = 1), ``eot_loss`` (at the
        iteration's eps; NaN for em/oem unless ``track_eot_loss``), ``sinkhorn_iterations``
        (iterations of the balanced solve: Newton steps with the default
        ``sinkhorn_solver``), ``seconds`` (wall time since the start of the fit).
    trajectory_ : list of dict or None
        ``{"weights", "means", "covariances"}`` per iterate when ``keep_trajectory``.
    n_features_in_ : int
    """

    def __init__(
        self,
        n_components=1,
        *,
        weights=None,
        method="sinkhorn",
        covariance_type="full",
        epsilon=1.0,
        tol=1e-6,
        max_iter=500,
        reg_covar=1e-6,
        init="k-means++",
        n_init=1,
        means_init=None,
        covariances_init=None,
        sinkhorn_tol=1e-9,
        sinkhorn_max_iter=1000,
        sinkhorn_solver="newton",
        random_state=None,
        epsilon_schedule=None,
        track_eot_loss=True,
        keep_trajectory=False,
    ):
        self.n_components = n_components
        self.weights = weights
        self.method = method
        self.covariance_type = covariance_type
        self.epsilon = epsilon
        self.tol = tol
        self.max_iter = max_iter
        self.reg_covar = reg_covar
        self.init = init
        self.n_init = n_init
        self.means_init = means_init
        self.covariances_init = covariances_init
        self.sinkhorn_tol = sinkhorn_tol
        self.sinkhorn_max_iter = sinkhorn_max_iter
        self.sinkhorn_solver = sinkhorn_solver
        self.random_state = random_state
        self.epsilon_schedule = epsilon_schedule
        self.track_eot_loss = track_eot_loss
        self.keep_trajectory = keep_trajectory

    # ------------------------------------------------------------------ checks
    def _check_hyperparameters(self):
        K = self.n_components
        if not isinstance(K, (int, np.integer)) or K < 1:
            raise ValueError(f"n_components must be a positive integer, got {K!r}.")
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}.")
        check_covariance_type(self.covariance_type)
        if self.init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {self.init!r}.")
        if self.sinkhorn_solver not in SINKHORN_SOLVERS:
            raise ValueError(f"sinkhorn_solver must be one of {SINKHORN_SOLVERS}, got {self.sinkhorn_solver!r}.")
        for name in ("epsilon", "reg_covar", "tol", "sinkhorn_tol"):
            value = getattr(self, name)
            lower_ok = value > 0 if name == "epsilon" else value >= 0
            if not (np.isscalar(value) and np.isfinite(value) and lower_ok):
                bound = "> 0" if name == "epsilon" else ">= 0"
                raise ValueError(f"{name} must be a finite number {bound}, got {value!r}.")
        for name in ("max_iter", "n_init", "sinkhorn_max_iter"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}.")
        schedule = np.asarray([] if self.epsilon_schedule is None else self.epsilon_schedule, dtype=float)
        if schedule.ndim != 1 or not np.all(np.isfinite(schedule)) or np.any(schedule <= 0):
            raise ValueError("epsilon_schedule must be a 1-D sequence of finite numbers > 0.")
        return check_weights(self.weights, K), schedule

    # ------------------------------------------------------------------ fit
    def fit(self, X, y=None):
        """Fit the mixture to ``X`` (array of shape (n_samples, n_features))."""
        alpha, schedule = self._check_hyperparameters()
        X = validate_data(self, X, dtype=[np.float64, np.float32], ensure_min_samples=2)
        X = np.asarray(X, dtype=np.float64)
        if X.shape[0] < self.n_components:
            raise ValueError(
                f"Expected n_samples >= n_components but got n_components={self.n_components}, "
                f"n_samples={X.shape[0]}; reduce n_components or provide more data."
            )
        rng = check_random_state(self.random_state)
        features = MomentFeatures.from_data(X)
        best = None
        for _ in range(self.n_init):
            means, covariances = self._initial_parameters(X, features, rng)
            run = self._run(features, alpha, schedule, means, covariances)
            if best is None or run.objective < best.objective:
                best = run
        self.weights_, self.means_, self.covariances_ = best.weights, best.means, best.covariances
        self.precisions_cholesky_ = precision_cholesky(self.covariances_, self.covariance_type)
        self.converged_, self.n_iter_, self.lower_bound_ = best.converged, best.n_iter, best.objective
        self.history_, self.trajectory_ = best.history, best.trajectory
        if best.sinkhorn_failures:
            what = (
                "Sinkhorn E-step(s)"
                if self.method == "sinkhorn"
                else "Sinkhorn solve(s) tracking the EOT loss (history_['eot_loss'] is approximate there; "
                "the fit itself is unaffected)"
            )
            warnings.warn(
                f"{best.sinkhorn_failures} {what} stopped at sinkhorn_max_iter="
                f"{self.sinkhorn_max_iter} before reaching sinkhorn_tol={self.sinkhorn_tol:g}; "
                "increase sinkhorn_max_iter or epsilon"
                + ("." if self.method == "sinkhorn" else ", or set track_eot_loss=False."),
                SinkhornConvergenceWarning,
                stacklevel=2,
            )
        if not self.converged_ and self.tol > 0:
            warnings.warn(
                f"{type(self).__name__} ({self.method}) did not converge within max_iter="
                f"{self.max_iter} iterations (tol={self.tol:g}); increase max_iter or tol.",
                ConvergenceWarning,
                stacklevel=2,
            )
        return self

    def _initial_parameters(self, X, features, rng):
        K, (n, d) = self.n_components, X.shape
        if self.means_init is not None:
            means = check_means(self.means_init, K, d).copy()
        elif self.init == "k-means++":
            from sklearn.cluster import kmeans_plusplus

            means, _ = kmeans_plusplus(X, K, random_state=rng)
        elif self.init == "random_from_data":
            means = X[rng.choice(n, size=K, replace=False)].copy()
        else:  # "random": an M-step on random responsibilities, as scikit-learn does
            resp = rng.uniform(size=(n, K))
            resp /= resp.sum(axis=1, keepdims=True)
            _, means, covariances = estimate_gaussian_parameters(features, resp, self.reg_covar, self.covariance_type)
            if self.covariances_init is not None:
                covariances = self._checked_covariances_init(d)
            return means, covariances
        if self.covariances_init is not None:
            return means, self._checked_covariances_init(d)
        return means, self._covariances_around(features, X, means)

    def _checked_covariances_init(self, d):
        return check_covariances(self.covariances_init, self.covariance_type, self.n_components, d).copy()

    def _covariances_around(self, features, X, means):
        """Covariances of the points nearest to each initial mean (pooled when too few)."""
        sq_dist = (X**2).sum(1)[:, None] - 2.0 * X @ means.T + (means**2).sum(1)[None, :]
        labels = sq_dist.argmin(axis=1)
        resp = np.zeros((X.shape[0], self.n_components))
        resp[np.arange(X.shape[0]), labels] = 1.0
        counts = resp.sum(axis=0)
        _, _, covariances = estimate_gaussian_parameters(features, resp, self.reg_covar, self.covariance_type)
        sparse = counts < 2
        if np.any(sparse) and self.covariance_type != "tied":
            pooled = estimate_gaussian_parameters(
                features, np.ones((X.shape[0], 1)), self.reg_covar, self.covariance_type
            )[2][0]
            covariances[sparse] = pooled
        return covariances

    def _run(self, features, alpha, schedule, means, covariances) -> _Run:
        """The one fit loop: E-step, bookkeeping, convergence test, M-step, weight update."""
        weights = alpha.copy()
        warm = _WarmStart()  # balanced-solver state carried across iterations
        rows, trajectory = [], [] if self.keep_trajectory else None
        previous, converged, failures, n_iter = np.inf, False, 0, 0
        step = None
        start = time.perf_counter()
        for iteration in range(self.max_iter + 1):
            eps = schedule[iteration] if iteration < schedule.size else float(self.epsilon)
            cost = gaussian_cost(features, means, covariances, self.covariance_type)
            step, warm = self._e_step(cost, weights, eps, warm)
            failures += not step.sinkhorn_converged
            rows.append(
                (
                    iteration,
                    eps,
                    step.objective,
                    step.nll,
                    step.eot_loss,
                    step.sinkhorn_iterations,
                    time.perf_counter() - start,
                )
            )
            if trajectory is not None:
                trajectory.append({"weights": weights.copy(), "means": means.copy(), "covariances": covariances.copy()})
            n_iter = iteration
            # Objectives at different epsilons are not comparable: test only after the schedule.
            if iteration > schedule.size and abs(previous - step.objective) < self.tol:
                converged = True
                break
            if iteration == self.max_iter:
                break
            previous = step.objective
            nk, means, covariances = estimate_gaussian_parameters(
                features, step.resp, self.reg_covar, self.covariance_type, masses=step.masses
            )
            if self.method == "oem":
                weights = nk / nk.sum()
        history = pd.DataFrame(
            rows, columns=["iteration", "epsilon", "objective", "nll", "eot_loss", "sinkhorn_iterations", "seconds"]
        )
        return _Run(
            weights, means, covariances, float(step.objective), converged, n_iter, history, trajectory, failures
        )

    def _e_step(self, cost, weights, eps, warm):
        """Minimise F over the coupling for the current parameters (method-specific)."""
        if self.method == "sinkhorn":
            # Forming the plan is one pass over (n, K); the M-step on its factors instead
            # rescales each of its (n, d (d + 3) / 2 + 1) moment columns: form it when K is smaller.
            d = self.n_features_in_
            form_plan = cost.shape[1] <= d * (d + 3) // 2 + 1
            value, result = self._balanced(cost, weights, eps, warm, form_plan=form_plan)
            nll_value = _nll_from_plan(result, weights, cost)
            # The plan is the responsibilities over n (the M-step is invariant to that factor),
            # handed over unformed when the solver allows: the M-step needs only products.
            plan = result.plan if result.plan is not None else result.factors
            return (
                _EStep(plan, weights, value, nll_value, value, result.n_iter, result.converged),
                _WarmStart.of(result),
            )
        resp, value = _posterior(cost, weights, eps)
        nll_value = value if eps == 1.0 else _nll_from_cost(cost, weights)
        eot, n_sinkhorn, ok = np.nan, 0, True
        if self.track_eot_loss:
            eot, result = self._balanced(cost, weights, eps, warm)
            n_sinkhorn, ok, warm = result.n_iter, result.converged, _WarmStart.of(result)
        return _EStep(resp, None, value, nll_value, eot, n_sinkhorn, ok), warm

    def _balanced(self, cost, weights, eps, warm=None, form_plan=True, warn=False):
        """The balanced problem at the estimator's solver settings, warm-started if ``warm``.

        Inside the fit loop failures are counted and reported once (``warn=False``).
        """
        warm = warm or _WarmStart()
        return balanced_value(
            cost,
            weights,
            eps,
            tol=self.sinkhorn_tol,
            max_iter=self.sinkhorn_max_iter,
            g_init=warm.g,
            hessian_init=warm.hessian,
            warn=warn,
            solver=self.sinkhorn_solver,
            form_plan=form_plan,
        )

    # ------------------------------------------------------------------ inference
    def _cost(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        return gaussian_cost(
            np.asarray(X, dtype=np.float64),
            self.means_,
            self.covariances_,
            self.covariance_type,
            prec_chol=self.precisions_cholesky_,
        )

    def score_samples(self, X):
        """Log-density ``log sum_k w_k N(x; mu_k, Sigma_k)`` of each sample."""
        cost = self._cost(X)
        return logsumexp(np.log(self.weights_)[None, :] - cost, axis=1)

    def score(self, X, y=None):
        """Mean log-likelihood of ``X`` under the fitted mixture."""
        return float(self.score_samples(X).mean())

    def predict_proba(self, X):
        """Posterior probabilities ``P(component k | x_i)`` under ``weights_`` (rows sum to 1)."""
        cost = self._cost(X)
        log_joint = np.log(self.weights_)[None, :] - cost
        return np.exp(log_joint - logsumexp(log_joint, axis=1, keepdims=True))

    def predict(self, X):
        """Most probable component of each sample."""
        return self.predict_proba(X).argmax(axis=1)

    def transport_plan(self, X):
        """Balanced plan (rows 1/n, columns ``weights_``) between ``X`` and the components."""
        _, result = self._balanced(self._cost(X), self.weights_, float(self.epsilon), warn=True)
        return result.plan

    def eot_loss(self, X):
        """EOT loss of ``X`` at the fitted parameters (entropic weight ``epsilon``)."""
        value, _ = self._balanced(self._cost(X), self.weights_, float(self.epsilon), warn=True)
        return value

    def _n_parameters(self):
        K, d = self.means_.shape
        free_weights = K - 1 if self.method == "oem" else 0
        return free_weights + K * d + n_covariance_parameters(K, d, self.covariance_type)

    def bic(self, X):
        """Bayesian information criterion ``-2 log L + p log n``.

        Known weights (``em``, ``sinkhorn``) are not counted as free parameters.
        """
        X = np.asarray(X)
        return -2.0 * self.score(X) * X.shape[0] + self._n_parameters() * np.log(X.shape[0])


class _WarmStart(NamedTuple):
    """What one balanced solve hands to the next: column potential and Newton curvature."""

    g: np.ndarray | None = None
    hessian: np.ndarray | None = None

    @classmethod
    def of(cls, result):
        return cls(result.g, result.hessian)


def _nll_from_plan(result, weights, cost):
    """NLL at eps = 1 from a Sinkhorn plan without another pass of exponentials.

    With ``P_ik = exp(f_i + g_k - C_ik/eps)`` and eps = 1,
    ``sum_k alpha_k e^{-C_ik} = e^{-f_i} sum_k P_ik alpha_k e^{-g_k}``: one matrix-vector
    product. Falls back to log-sum-exp when eps != 1 or when the column factors span so
    many orders of magnitude that underflowed plan entries could matter.
    """
    shift = np.log(weights) - result.g
    if result.epsilon != 1.0 or np.ptp(shift) > 600.0:
        return _nll_from_cost(cost, weights)
    top = shift.max()
    column_weights = np.exp(shift - top)
    mixture = result.plan @ column_weights if result.plan is not None else result.factors.matmul(column_weights)
    if not np.all(mixture > 0):
        return _nll_from_cost(cost, weights)
    return float(np.mean(result.f - top - np.log(mixture)))


def _nll_from_cost(cost, weights):
    return _posterior(cost, weights, 1.0)[1]


# Keep free_energy importable from here for users reading the maths next to the loop.
__all__ += ["free_energy"]
