"""Errors of the symmetric model's estimates: closed-form two-atom W2 and the parameter error."""

from __future__ import annotations

import numpy as np

__all__ = ["symmetric_parameter_error", "symmetric_w2_squared", "w2_squared_two_atoms"]


def w2_squared_two_atoms(weights_a, atoms_a, weights_b, atoms_b):
    r"""Closed-form squared 2-Wasserstein distance between two-atom measures on the line.

    On the line the optimal coupling is the monotone one, so
    :math:`W_2^2 = \int_0^1 (F_a^{-1}(u) - F_b^{-1}(u))^2\,du`. With the atoms of each
    measure sorted (:math:`a_- \le a_+` carrying masses :math:`p, 1-p`; :math:`b_- \le b_+`
    carrying :math:`r, 1-r`) the quantile functions are step functions and

    .. math:: W_2^2 = \min(p, r)(a_- - b_-)^2 + |p - r|\,(c - d)^2
                      + (1 - \max(p, r))(a_+ - b_+)^2 ,

    where the middle segment couples :math:`a_+` with :math:`b_-` if :math:`p < r`
    and :math:`a_-` with :math:`b_+` otherwise.

    Parameters
    ----------
    weights_a, atoms_a, weights_b, atoms_b : array_like of shape (..., 2)
        Masses (each pair sums to 1) and locations; leading dimensions broadcast.

    Returns
    -------
    ndarray of shape (...)
    """
    weights_a, atoms_a, weights_b, atoms_b = np.broadcast_arrays(
        *(np.asarray(v, dtype=float) for v in (weights_a, atoms_a, weights_b, atoms_b))
    )
    if weights_a.shape[-1:] != (2,):
        raise ValueError(f"two-atom measures need a last dimension of size 2, got {weights_a.shape}.")
    if np.any(weights_a < 0) or np.any(weights_b < 0):
        raise ValueError("weights must be non-negative.")

    def sorted_measure(weights, atoms):
        swap = atoms[..., 0] > atoms[..., 1]
        low = np.where(swap, atoms[..., 1], atoms[..., 0])
        high = np.where(swap, atoms[..., 0], atoms[..., 1])
        low_mass = np.where(swap, weights[..., 1], weights[..., 0]) / weights.sum(axis=-1)
        return low, high, low_mass

    a_low, a_high, p = sorted_measure(weights_a, atoms_a)
    b_low, b_high, r = sorted_measure(weights_b, atoms_b)
    middle = np.where(p < r, (a_high - b_low) ** 2, (a_low - b_high) ** 2)
    return (
        np.minimum(p, r) * (a_low - b_low) ** 2
        + np.abs(p - r) * middle
        + (1.0 - np.maximum(p, r)) * (a_high - b_high) ** 2
    )


def symmetric_w2_squared(theta, weight, theta_star, alpha_star):
    r"""Squared W2 between :math:`w\delta_\theta + (1-w)\delta_{-\theta}` and the truth.

    The truth is :math:`\alpha^*\delta_{\theta^*} + (1-\alpha^*)\delta_{-\theta^*}`; all
    arguments broadcast. This is the error of Figure 2 of Mena et al. (2020).
    """
    theta, weight, theta_star, alpha_star = np.broadcast_arrays(
        *(np.asarray(v, dtype=float) for v in (theta, weight, theta_star, alpha_star))
    )
    return w2_squared_two_atoms(
        np.stack([weight, 1.0 - weight], axis=-1),
        np.stack([theta, -theta], axis=-1),
        np.stack([alpha_star, 1.0 - alpha_star], axis=-1),
        np.stack([theta_star, -theta_star], axis=-1),
    )


def symmetric_parameter_error(theta, weight, theta_star, alpha_star):
    r"""Distance of :math:`(\theta, w)` from the truth, up to relabelling the components.

    For :math:`\theta^* \ne 0`,

    .. math:: e = \min\bigl\{\max(|\theta - \theta^*|, |w - \alpha^*|),\;
                             \max(|\theta + \theta^*|, |1 - w - \alpha^*|)\bigr\},

    the second term being the swapped labelling :math:`(-\theta, 1 - w)` that describes
    the same mixture. It is smooth in the parameters near the truth, so its logarithm
    decreases with the slope of the algorithm's linear rate (the squared W2 of Figure 2
    grows like :math:`|w - \alpha^*|`, not its square, and would halve the apparent
    rate of oEM). For :math:`\theta^* = 0` the weights are not identifiable (both
    atoms sit at 0) and :math:`e = |\theta|`. Arguments broadcast.
    """
    theta, weight, theta_star, alpha_star = np.broadcast_arrays(
        *(np.asarray(v, dtype=float) for v in (theta, weight, theta_star, alpha_star))
    )
    direct = np.maximum(np.abs(theta - theta_star), np.abs(weight - alpha_star))
    swapped = np.maximum(np.abs(theta + theta_star), np.abs(1.0 - weight - alpha_star))
    return np.where(theta_star == 0, np.abs(theta), np.minimum(direct, swapped))
