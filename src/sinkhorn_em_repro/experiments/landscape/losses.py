r"""The two losses of the landscapes: vectorised K = 2 NLL and EOT loss with gradients, the core's values, the samples."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit

from sinkhorn_em_repro.seeding import derive_seed
from sinkhorn_em_repro.symmetric import solve_balanced_offset

__all__ = ["LOSSES", "TwoComponentLosses", "landscape_sample", "symmetric_losses_core", "two_component_losses"]


LOSSES = ("nll", "eot")


_HALF_LOG_2PI = 0.5 * np.log(2.0 * np.pi)


# Grid points per vectorised block: (block, n) float arrays stay a few tens of MB.
_BLOCK_ELEMENTS = 2_000_000


def _check_sample(x) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    if x.ndim == 2 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim != 1:
        raise ValueError(f"The landscape model is one-dimensional: x must have shape (n,) or (n, 1), got {x.shape}.")
    if x.size < 2:
        raise ValueError(f"x must hold at least 2 samples, got {x.size}.")
    if not np.all(np.isfinite(x)):
        raise ValueError("x contains NaN or inf; remove or impute those samples first.")
    return x


def _check_weights(weights) -> np.ndarray:
    weights = np.asarray(weights, dtype=float)
    if weights.shape != (2,):
        raise ValueError(f"weights must hold exactly 2 mixing weights, got shape {weights.shape}.")
    if np.any(weights <= 0.0) or np.any(weights >= 1.0):
        raise ValueError(f"weights must lie strictly between 0 and 1 (the EOT loss needs both columns), got {weights}.")
    if abs(weights.sum() - 1.0) > 1e-12:
        raise ValueError(f"weights must sum to 1, got {weights} (sum {weights.sum()!r}).")
    return weights


def _check_alpha(alpha: float) -> float:
    alpha = float(alpha)
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie strictly between 0 and 1, got {alpha}.")
    return alpha


@dataclass(frozen=True)
class TwoComponentLosses:
    """NLL, EOT loss and their gradients at ``G`` mean pairs (see :func:`two_component_losses`).

    Attributes
    ----------
    nll, eot : ndarray of shape (G,)
        Loss values (``eot >= nll`` up to rounding).
    nll_grad, eot_grad : ndarray of shape (G, 2)
        Gradients with respect to ``(mu_0, mu_1)``.
    dual : ndarray of shape (G,)
        The optimal ``u = g_1 - g_0`` of the balanced problem (``0`` iff ``eot == nll``).
    column_error : ndarray of shape (G,)
        ``|(1/n) sum_i sigma(D_i + u) - w_1|``, the remaining column-marginal error.
    """

    nll: np.ndarray
    eot: np.ndarray
    nll_grad: np.ndarray
    eot_grad: np.ndarray
    dual: np.ndarray
    column_error: np.ndarray


def two_component_losses(x, weights, means, *, max_iter: int = 200) -> TwoComponentLosses:
    r"""NLL and EOT loss of a two-component, unit-variance 1-D mixture at many mean pairs.

    Parameters
    ----------
    x : array_like of shape (n,) or (n, 1)
        The sample.
    weights : array_like of shape (2,)
        Known mixing weights ``(w_0, w_1)``, strictly between 0 and 1.
    means : array_like of shape (G, 2) or (2,)
        Mean pairs ``(mu_0, mu_1)`` at which to evaluate.
    max_iter : int, default=200
        Newton/bisection iterations at most of the balanced solver.

    Returns
    -------
    TwoComponentLosses
        With ``C_ik = (x_i - mu_k)^2 / 2 + log(2 pi) / 2``, ``a_ik = log w_k - C_ik`` and
        ``D_i = a_i1 - a_i0 = log(w_1 / w_0) + (mu_1 - mu_0) x_i - (mu_1^2 - mu_0^2) / 2``:
        ``NLL = -mean_i a_i0 - mean_i softplus(D_i)`` and
        ``L_EOT = -mean_i a_i0 + w_1 u* - mean_i softplus(D_i + u*)`` where ``u*`` solves
        ``mean_i sigma(D_i + u) = w_1`` (the one K = 2 balanced solver,
        :func:`sinkhorn_em_repro.symmetric.solve_balanced_offset`).

    Notes
    -----
    Epsilon is 1, as in the paper's landscapes. Work is split into blocks of grid
    points so memory stays bounded whatever ``G``.
    """
    x = _check_sample(x)
    weights = _check_weights(weights)
    means = np.asarray(means, dtype=float)
    single = means.ndim == 1
    means = np.atleast_2d(means)
    if means.ndim != 2 or means.shape[1] != 2:
        raise ValueError(f"means must have shape (G, 2) or (2,), got {np.shape(means)}.")
    if not np.all(np.isfinite(means)):
        raise ValueError("means contain NaN or inf.")
    n = x.size
    mu0, mu1 = means[:, 0], means[:, 1]
    slope = mu1 - mu0
    offset = np.log(weights[1] / weights[0]) - 0.5 * (mu1**2 - mu0**2)
    x_mean, x2_mean = x.mean(), np.mean(x**2)
    # mean_i a_i0 in closed form: log w_0 - log(2 pi)/2 - mean (x - mu_0)^2 / 2.
    mean_a0 = np.log(weights[0]) - _HALF_LOG_2PI - 0.5 * (x2_mean - 2.0 * mu0 * x_mean + mu0**2)

    G = means.shape[0]
    nll = np.empty(G)
    eot = np.empty(G)
    dual = np.empty(G)
    column_error = np.empty(G)
    nll_grad = np.empty((G, 2))
    eot_grad = np.empty((G, 2))
    block = max(1, _BLOCK_ELEMENTS // n)
    uniform = np.full((1, n), 1.0 / n)
    for start in range(0, G, block):
        sl = slice(start, min(start + block, G))
        D = offset[sl, None] + slope[sl, None] * x[None, :]
        # u = 0 is the NLL point and often close to the root: start there.
        u = solve_balanced_offset(D, uniform, np.full(D.shape[0], weights[1]), np.zeros(D.shape[0]), max_iter)
        err = np.abs(expit(D + u[:, None]).mean(axis=1) - weights[1])
        nll[sl] = -mean_a0[sl] - np.logaddexp(0.0, D).mean(axis=1)
        eot[sl] = -mean_a0[sl] + weights[1] * u - np.logaddexp(0.0, D + u[:, None]).mean(axis=1)
        dual[sl] = u
        column_error[sl] = err
        for shift, grad in ((0.0, nll_grad), (u, eot_grad)):
            # s_i1 = sigma(D_i + shift) is the mass of sample i on component 1 (times n).
            s1 = expit(D + np.reshape(shift, (-1, 1)))
            mass1 = s1.mean(axis=1)
            first1 = (s1 * x[None, :]).mean(axis=1)
            grad[sl, 1] = -(first1 - mass1 * mu1[sl])
            grad[sl, 0] = -((x_mean - first1) - (1.0 - mass1) * mu0[sl])
    if single:
        return TwoComponentLosses(nll[0], eot[0], nll_grad[0], eot_grad[0], dual[0], column_error[0])
    return TwoComponentLosses(nll, eot, nll_grad, eot_grad, dual, column_error)


def symmetric_losses_core(x, alpha: float, theta: float, *, sinkhorn_tol: float = 1e-10) -> tuple[float, float]:
    """NLL and EOT loss of the symmetric model from the core library (the truth source).

    The model has means ``(theta, -theta)``, weights ``(alpha, 1 - alpha)`` and unit
    variance; the values come from :func:`sinkhorn_em.nll` and :func:`sinkhorn_em.eot_loss`
    (log-domain Sinkhorn).

    Returns
    -------
    (nll, eot) : tuple of float
    """
    from sinkhorn_em.losses import eot_loss, nll

    X = _check_sample(x)[:, None]
    weights = np.array([alpha, 1.0 - alpha])
    means = np.array([[theta], [-theta]])
    variances = np.ones(2)
    return (
        float(nll(X, weights, means, variances, covariance_type="spherical")),
        float(eot_loss(X, weights, means, variances, covariance_type="spherical", tol=sinkhorn_tol)),
    )


def landscape_sample(n: int, theta_star: float, alpha: float, seed: int, *keys) -> np.ndarray:
    """The sample of one landscape: ``n`` draws of ``alpha N(theta*, 1) + (1 - alpha) N(-theta*, 1)``.

    The generator is seeded by ``derive_seed(seed, "landscape", *keys, alpha)``, so the
    same setting always gives the same sample whatever job computes it.

    Returns
    -------
    x : ndarray of shape (n,)
    """
    from sinkhorn_em.synthetic import symmetric_mixture

    if int(n) < 2:
        raise ValueError(f"n must be at least 2, got {n}.")
    alpha = _check_alpha(alpha)
    rng = np.random.default_rng(_sample_seed(seed, alpha, *keys))
    return np.asarray(symmetric_mixture(int(n), float(theta_star), alpha, rng).X, dtype=float).reshape(-1)


def _sample_seed(seed: int, alpha: float, *keys) -> int:
    # Rounded so that 0.55 from a config and 0.5500000000000002 from linspace agree.
    return derive_seed(int(seed), "landscape", *keys, round(float(alpha), 10))
