r"""The authors' C. elegans protocol, as their demo runs it, beside this project's.

Source: ``demo.py``, ``BayesianGMM/BayesianGMM.py`` and ``BUtils/Simulator.py`` of
github.com/amin-nejat/SinkhornEM at commit 7e90a5d (read, never copied; numbers from running
it are in ``tests/repro/data/celegans_reference.json``). One trial of the ``authors`` protocol:

* **data**: true centres :math:`\mu_k \sim N(c_k, \Sigma^{atlas}_k)`, scales
  :math:`s_k \sim \mathrm{LogNormal}(1, 0.1)`, **i.i.d. labels** :math:`Z_i \sim
  \mathrm{Categorical}(1/K)` for :math:`N` voxels :math:`x_i \sim N(\mu_{Z_i}, s_{Z_i} I_6)`;
  a **random split**: each voxel is a training voxel with probability 1/2;
* **model**: prior :math:`\mu_k \sim N(m_k, P_k)` with :math:`m_k` the atlas mean and
  :math:`P_k = \Sigma^{atlas}_k / 10`; start :math:`\Sigma_k = 10 I_6`, :math:`\pi = 1/K`, means
  at the atlas means (``atlas``) or at :math:`K` voxels drawn with replacement from all
  :math:`N` (``random``);
* **E-step** (vEM, oEM): :math:`\gamma_{ik} \propto \pi_k N(x_i; \mu_k, \Sigma_k)
  N(\mu_k; m_k, P_k)` - the prior density of the current mean enters every component's
  log-weight, as in the demo (:func:`authors_log_weights`); sEM: the balanced plan with rows
  :math:`1/N_{train}` and columns :math:`\pi` (in which the column constants, prior included,
  cancel), scaled to unit rows;
* **M-step** on the training voxels: oEM :math:`\pi_k = n_k / \sum_l n_l`; the MAP mean
  (:func:`map_means`) with the previous covariance; the covariance around the new mean with
  responsibilities floored at 1e-10, position-colour blocks set to zero and the positional
  eigenvalues clipped to [0.1, 1.1], the colour block left as it is
  (:func:`clipped_covariances`);
* **budget**: the demo gives every method 1 second of wall time, which would make the
  tables depend on the machine; here every method runs a fixed number of iterations, by
  default those the authors' code completes in 1 second on the machine of this project
  (about 100 for vEM and oEM, 15 for sEM, whose E-step in their code is 1000 Sinkhorn
  iterations);
* **metrics**: identity accuracy :math:`\frac1K \#\{k: \|\hat\mu_k - \mu_k\| < r\}` on
  positions, component :math:`k` against neuron :math:`k` (no matching; the prior carries
  the identities), and its mean distance; the matched metrics of this project's protocol are
  recorded beside them.

What still differs from the authors' code (README): the sEM E-step is solved to convergence
(theirs stops after 1000 non-log-domain Sinkhorn iterations with a column error near 0.009
and underflows from random starts), one split and one start per trial shared by all methods
(theirs draw one per method), float64 data, seeded streams, 20 trials, fixed iterations.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sinkhorn_em import gaussian_cost, sinkhorn_newton
from sinkhorn_em_repro._checks import _check_choice
from sinkhorn_em_repro.experiments.celegans.fit import (
    INITS,
    METHODS,
    _mean_loglik,
    accuracy_metric,
    identification_metrics,
)
from sinkhorn_em_repro.experiments.celegans.scene import FEATURE_DIMS, POSITION_DIMS, NeuronScene
from sinkhorn_em_repro.labels import AUTHORS, PROJECT
from sinkhorn_em_repro.seeding import derive_seed

__all__ = [
    "AUTHORS",
    "PROJECT",
    "AuthorsPrior",
    "AuthorsTrial",
    "authors_log_weights",
    "authors_start",
    "balanced_responsibilities",
    "clipped_covariances",
    "fit_authors_protocol",
    "identity_accuracy_metric",
    "identity_metrics",
    "map_means",
    "prior_log_density",
    "run_authors_chunk",
    "simulate_authors_trial",
]


def identity_accuracy_metric(radius: float) -> str:
    """Column name of the authors' identity accuracy at ``radius`` micrometres."""
    return f"identity_{accuracy_metric(radius)}"


@dataclass(frozen=True)
class AuthorsTrial:
    """Voxels of one trial of the authors' protocol, their true neurons and the random split."""

    X: np.ndarray
    labels: np.ndarray
    train: np.ndarray
    centers: np.ndarray
    scales: np.ndarray


@dataclass(frozen=True)
class AuthorsPrior:
    """The prior on the means, :math:`\\mu_k \\sim N(m_k, P_k)`, and the precisions :math:`P_k^{-1}`."""

    means: np.ndarray
    covariances: np.ndarray

    @property
    def precisions(self) -> np.ndarray:
        return np.linalg.inv(self.covariances)

    @classmethod
    def from_scene(cls, scene: NeuronScene, divisor: float = 10.0) -> AuthorsPrior:
        """Atlas means and atlas covariances divided by ``divisor`` (10 in the demo)."""
        if scene.center_covariances is None:
            raise ValueError(f"{scene.dataset}: the authors' protocol needs an atlas scene (centre covariances)")
        if not divisor > 0:
            raise ValueError(f"prior_divisor must be > 0, got {divisor}")
        return cls(scene.atlas_means.copy(), scene.center_covariances / float(divisor))


def simulate_authors_trial(
    scene: NeuronScene,
    rng: np.random.Generator,
    *,
    scale_log_mean: float = 1.0,
    scale_log_sd: float = 0.1,
    train_probability: float = 0.5,
) -> AuthorsTrial:
    """Centres, scales, i.i.d. labels, voxels and the Bernoulli train mask of one trial (module docstring)."""
    if scene.center_covariances is None:
        raise ValueError(f"{scene.dataset}: the authors' protocol simulates around atlas neurons only")
    if not 0.0 < train_probability < 1.0:
        raise ValueError(f"train_probability must be in (0, 1), got {train_probability}")
    K, d = scene.centers.shape
    centers = np.array(
        [rng.multivariate_normal(c, cov, method="eigh") for c, cov in zip(scene.centers, scene.center_covariances)]
    )
    scales = rng.lognormal(scale_log_mean, scale_log_sd, size=K)
    labels = rng.integers(K, size=scene.n_voxels)
    X = centers[labels] + rng.standard_normal((labels.size, d)) * np.sqrt(scales[labels])[:, None]
    train = rng.random(labels.size) < train_probability
    return AuthorsTrial(X, labels, train, centers, scales)


def authors_start(scene: NeuronScene, trial: AuthorsTrial, init: str, rng: np.random.Generator, variance: float):
    """Initial ``(means, covariances, weights)``: atlas means or K voxels drawn with replacement, ``variance`` I, 1/K."""
    _check_choice("init", init, INITS)
    K = scene.n_neurons
    means = scene.atlas_means.copy() if init == "atlas" else trial.X[rng.integers(len(trial.X), size=K)].copy()
    covariances = np.tile(np.eye(FEATURE_DIMS) * float(variance), (K, 1, 1))
    return means, covariances, np.full(K, 1.0 / K)


def prior_log_density(means, prior: AuthorsPrior) -> np.ndarray:
    """:math:`\\log N(\\mu_k; m_k, P_k)` for every component, shape (K,)."""
    return -np.diagonal(gaussian_cost(np.asarray(means, dtype=float), prior.means, prior.covariances, "full"))


def authors_log_weights(X, weights, means, covariances, prior: AuthorsPrior) -> np.ndarray:
    r"""The demo's E-step log-weights :math:`\log \pi_k + \log N(x_i; \mu_k, \Sigma_k) + \log N(\mu_k; m_k, P_k)`, (n, K).

    A weight that oEM has driven to 0 gives :math:`-\infty`: that component takes no voxel, as in the demo.
    """
    with np.errstate(divide="ignore"):
        log_weights = np.log(weights)
    return log_weights[None, :] - gaussian_cost(X, means, covariances, "full") + prior_log_density(means, prior)


def _softmax_rows(log_weights: np.ndarray) -> np.ndarray:
    shifted = np.exp(log_weights - log_weights.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def balanced_responsibilities(X, weights, means, covariances, *, tol: float = 1e-9, max_iter: int = 100):
    r"""sEM's E-step: the balanced plan (rows :math:`1/n`, columns ``weights``, cost :math:`-\log N`) with unit rows.

    The demo's kernel :math:`e^{lp}` differs from :math:`e^{-C}` by column factors (weights and
    prior), which a balanced plan absorbs. Returns the responsibilities and the solver's iterations.
    """
    n = len(X)
    result = sinkhorn_newton(
        np.full(n, 1.0 / n), weights, gaussian_cost(X, means, covariances, "full"), 1.0, tol=tol, max_iter=max_iter
    )
    plan = result.plan
    return plan / plan.sum(axis=1, keepdims=True), int(result.n_iter)


def map_means(resp, X, covariances, prior: AuthorsPrior) -> np.ndarray:
    r"""MAP means: :math:`\mu_k = (n_k I + \Sigma_k P_k^{-1})^{-1} (s_k + \Sigma_k P_k^{-1} m_k)`.

    :math:`n_k = \sum_i \gamma_{ik}`, :math:`s_k = \sum_i \gamma_{ik} x_i`, :math:`\Sigma_k` the
    previous covariance: the maximiser over :math:`\mu` of
    :math:`\sum_i \gamma_{ik} \log N(x_i; \mu, \Sigma_k) + \log N(\mu; m_k, P_k)`.
    """
    masses = resp.sum(axis=0)
    sums = resp.T @ X
    scaled_precision = covariances @ prior.precisions  # Sigma_k P_k^{-1}
    d = X.shape[1]
    system = masses[:, None, None] * np.eye(d) + scaled_precision
    rhs = sums + np.einsum("kij,kj->ki", scaled_precision, prior.means)
    return np.linalg.solve(system, rhs[:, :, None])[:, :, 0]


def clipped_covariances(resp, X, means, bounds=(0.1, 1.1), *, floor: float = 1e-10) -> np.ndarray:
    r"""The demo's covariance update around ``means``.

    :math:`g_{ik} = \max(\gamma_{ik}, 10^{-10})`, :math:`S_k = \sum_i \frac{g_{ik}}{\sum_j g_{jk}}
    (x_i - \mu_k)(x_i - \mu_k)^T`; the position-colour blocks are set to zero; the positional
    block keeps its eigenvectors with eigenvalues clipped to ``bounds``; the colour block is
    left as it is.

    Raises
    ------
    ValueError
        If a colour block is not positive definite (the demo then fails with a singular matrix
        at the next E-step; no silent regularisation here).
    """
    low, high = bounds
    if not 0 < low <= high:
        raise ValueError(f"eigenvalue_bounds must satisfy 0 < low <= high, got {list(bounds)}")
    g = np.maximum(resp, floor)
    w = g / g.sum(axis=0, keepdims=True)
    p = POSITION_DIMS
    out = np.zeros((means.shape[0], X.shape[1], X.shape[1]))
    for k, mean in enumerate(means):
        centred = X - mean
        scatter = (w[:, k] * centred.T) @ centred
        values, vectors = np.linalg.eigh(scatter[:p, :p])
        out[k, :p, :p] = (vectors * np.clip(values, low, high)) @ vectors.T
        colour = scatter[p:, p:]
        if np.linalg.eigvalsh(colour).min() <= 0:
            raise ValueError(
                f"component {k}: the colour block of its covariance is singular (the authors' code stops with "
                "'Singular matrix' here); the run cannot continue"
            )
        out[k, p:, p:] = colour
    return out


def fit_authors_protocol(
    method: str,
    X_train,
    start,
    prior: AuthorsPrior,
    n_iter: int,
    *,
    eigenvalue_bounds=(0.1, 1.1),
    sinkhorn_tol: float = 1e-9,
    sinkhorn_max_iter: int = 100,
) -> list[dict]:
    """Run the demo's vEM, oEM or sEM for ``n_iter`` iterations from ``start``.

    Returns
    -------
    list of dict
        One per iterate (the start first): ``means``, ``covariances``, ``weights``,
        ``sinkhorn_iterations`` and ``seconds`` (wall time since the start).
    """
    _check_choice("method", method, METHODS)
    if int(n_iter) < 1:
        raise ValueError(f"n_iter must be >= 1, got {n_iter}")
    X_train = np.asarray(X_train, dtype=float)
    means, covariances, weights = (np.array(a, dtype=float) for a in start)
    states = [dict(means=means, covariances=covariances, weights=weights, sinkhorn_iterations=0, seconds=0.0)]
    began = time.perf_counter()
    for _ in range(int(n_iter)):
        solves = 0
        if method == "sEM":
            resp, solves = balanced_responsibilities(
                X_train, weights, means, covariances, tol=sinkhorn_tol, max_iter=sinkhorn_max_iter
            )
        else:
            resp = _softmax_rows(authors_log_weights(X_train, weights, means, covariances, prior))
        if method == "oEM":
            masses = resp.sum(axis=0)
            weights = masses / masses.sum()
        means = map_means(resp, X_train, covariances, prior)
        covariances = clipped_covariances(resp, X_train, means, eigenvalue_bounds)
        states.append(
            dict(
                means=means,
                covariances=covariances,
                weights=weights,
                sinkhorn_iterations=solves,
                seconds=time.perf_counter() - began,
            )
        )
    return states


def identity_metrics(true_positions, estimated_positions, radii=(1.0, 3.0)) -> dict:
    r"""The demo's metrics: component :math:`k` against neuron :math:`k`, no matching.

    ``identity_accuracy_r{r}`` = :math:`\frac1K \#\{k : \|p_k - \hat p_k\| < r\}` (strict, as
    the demo) and ``identity_position_error`` = :math:`\frac1K \sum_k \|p_k - \hat p_k\|`.
    """
    distances = np.linalg.norm(np.asarray(true_positions, float) - np.asarray(estimated_positions, float), axis=1)
    out = {identity_accuracy_metric(r): float(np.mean(distances < r)) for r in radii}
    out["identity_position_error"] = float(distances.mean())
    return out


def run_authors_chunk(
    scene: NeuronScene,
    *,
    method: str,
    trials,
    base_seed: int,
    inits=INITS,
    n_iter: int = 30,
    radii=(1.0, 3.0),
    prior_divisor: float = 10.0,
    init_variance: float = 10.0,
    eigenvalue_bounds=(0.1, 1.1),
    train_probability: float = 0.5,
    scale_log_mean: float = 1.0,
    scale_log_sd: float = 0.1,
    sinkhorn_tol: float = 1e-9,
    sinkhorn_max_iter: int = 100,
) -> pd.DataFrame:
    """Fit one method with the authors' protocol on a chunk of trials; one row per (trial, init, iterate).

    The voxels and split of trial ``t`` come from ``derive_seed(base_seed, "celegans",
    "authors", dataset, t)`` and its start from ``derive_seed(..., t, "init", init)``: every
    method sees the same data, split and start.

    Returns
    -------
    DataFrame with the columns of :func:`~sinkhorn_em_repro.experiments.celegans.run_celegans_chunk`
    (matched ``accuracy_r{r}`` and ``position_error``; log-likelihoods per voxel without the
    prior) plus ``identity_accuracy_r{r}``, ``identity_position_error`` and ``protocol``
    (``"authors"``).
    """

    _check_choice("method", method, METHODS)
    for init in inits:
        _check_choice("init", init, INITS)
    prior = AuthorsPrior.from_scene(scene, prior_divisor)
    rows = []
    for trial_index in trials:
        key = (base_seed, "celegans", "authors", scene.dataset, int(trial_index))
        trial = simulate_authors_trial(
            scene,
            np.random.default_rng(derive_seed(*key)),
            scale_log_mean=scale_log_mean,
            scale_log_sd=scale_log_sd,
            train_probability=train_probability,
        )
        X_train, X_test = trial.X[trial.train], trial.X[~trial.train]
        true_positions = trial.centers[:, :POSITION_DIMS]
        for init in inits:
            start = authors_start(
                scene, trial, init, np.random.default_rng(derive_seed(*key, "init", init)), init_variance
            )
            states = fit_authors_protocol(
                method,
                X_train,
                start,
                prior,
                n_iter,
                eigenvalue_bounds=eigenvalue_bounds,
                sinkhorn_tol=sinkhorn_tol,
                sinkhorn_max_iter=sinkhorn_max_iter,
            )
            for iteration, state in enumerate(states):
                positions = state["means"][:, :POSITION_DIMS]
                matched = identification_metrics(true_positions, positions, radii)
                matched.pop("permutation")
                parameters = (state["weights"], state["means"], state["covariances"], "full")
                rows.append(
                    {
                        "dataset": scene.dataset,
                        "n_neurons": scene.n_neurons,
                        "n_voxels": scene.n_voxels,
                        "init": init,
                        "method": method,
                        "trial": int(trial_index),
                        "iteration": iteration,
                        **matched,
                        "train_loglik": _mean_loglik(X_train, *parameters),
                        "test_loglik": _mean_loglik(X_test, *parameters),
                        "sinkhorn_iterations": state["sinkhorn_iterations"],
                        "wall_seconds": state["seconds"],
                        **identity_metrics(true_positions, positions, radii),
                        "protocol": AUTHORS,
                    }
                )
    return pd.DataFrame(rows)
