r"""Settings of the sweeps, their datasets, annealing schedules and the success rule."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sinkhorn_em.metrics import matched_parameter_error
from sinkhorn_em.synthetic import MixtureSample, make_mixture, means_with_separation
from sinkhorn_em_repro.seeding import derive_rng

__all__ = ["SweepSetting", "collapsed_error", "exact_counts", "geometric_schedule", "is_success", "make_sweep_dataset"]


_WEIGHT_SUM_TOLERANCE = 1e-6


def is_success(error, reference_error, rtol: float, atol: float):
    r"""The success rule :math:`e \le (1 + r)\, e_\mathrm{ref} + a` (see the module docstring).

    Parameters
    ----------
    error, reference_error : float or array_like
        Matched parameter error of the run and of the run started at the truth.
    rtol, atol : float
        Relative and absolute tolerance, both ``>= 0``.

    Returns
    -------
    bool or ndarray of bool
    """
    if rtol < 0 or atol < 0:
        raise ValueError(f"success tolerances must be >= 0, got rtol={rtol!r}, atol={atol!r}.")
    return np.asarray(error) <= (1.0 + rtol) * np.asarray(reference_error) + atol


@dataclass(frozen=True)
class SweepSetting:
    """One benchmark setting: known weights, dimension and separation.

    Values are normalised (floats, int) so that ``repr`` -- hence the derived seeds --
    does not depend on whether the config wrote ``2`` or ``2.0``.
    """

    weights: tuple[float, ...]
    dim: int
    separation: float

    @classmethod
    def create(cls, weights: Sequence[float], dim: int, separation: float) -> SweepSetting:
        weights = tuple(float(w) for w in weights)
        if len(weights) < 2:
            raise ValueError(f"a setting needs at least 2 components, got weights {weights}.")
        if min(weights) <= 0 or abs(sum(weights) - 1.0) > _WEIGHT_SUM_TOLERANCE:
            raise ValueError(
                f"weights {weights} must be positive and sum to 1 (within "
                f"{_WEIGHT_SUM_TOLERANCE}); fix the weights list in the config."
            )
        if int(dim) != dim or dim < 1:
            raise ValueError(f"dim must be a positive integer, got {dim!r}.")
        if not separation > 0:
            raise ValueError(f"separation must be > 0, got {separation!r}.")
        return cls(weights, int(dim), float(separation))

    @property
    def n_components(self) -> int:
        return len(self.weights)

    @property
    def weights_label(self) -> str:
        """The weights as written in the tables, e.g. ``"0.5/0.3/0.2"``."""
        return "/".join(f"{w:g}" for w in self.weights)

    @property
    def key(self) -> str:
        """A file-name-safe identifier, e.g. ``"K3_d2_w0.5-0.3-0.2_sep2"``."""
        weights = "-".join(f"{w:g}" for w in self.weights)
        return f"K{self.n_components}_d{self.dim}_w{weights}_sep{self.separation:g}"

    def columns(self) -> dict:
        """The setting columns shared by every table of the sweeps."""
        return {
            "K": self.n_components,
            "d": self.dim,
            "weights": self.weights_label,
            "separation": self.separation,
        }


def geometric_schedule(eps0: float, decay: float, eps_final: float = 1.0) -> list[float]:
    r"""Annealing schedule :math:`\varepsilon_t = \varepsilon_0 \rho^t` while it exceeds the target.

    The returned values are used for the first iterations (``epsilon_schedule`` of
    :class:`sinkhorn_em.EOTGaussianMixture`); afterwards the fit runs at ``eps_final``.
    All entries are strictly above ``eps_final``; there are about
    :math:`\log(\varepsilon_0 / \varepsilon_\mathrm{final}) / \log(1 / \rho)` of them.

    Parameters
    ----------
    eps0 : float
        Starting value, ``> eps_final``.
    decay : float
        Geometric factor :math:`\rho` in (0, 1).
    eps_final : float, default 1.0
        The value the fit ends at (1 = the unbiased EOT loss).
    """
    if not 0.0 < decay < 1.0:
        raise ValueError(f"decay must be in (0, 1), got {decay!r}.")
    if not eps_final > 0 or not eps0 > eps_final:
        raise ValueError(
            f"an annealing schedule must start above its final epsilon: eps0={eps0!r}, "
            f"eps_final={eps_final!r} (use a constant epsilon instead)."
        )
    # Integer powers (not repeated multiplication) so each entry is an exact function of t.
    schedule = []
    while eps0 * decay ** len(schedule) > eps_final:
        schedule.append(eps0 * decay ** len(schedule))
    return schedule


def exact_counts(weights: Sequence[float], n_samples: int) -> np.ndarray:
    r"""Component sizes :math:`n_k` with :math:`\sum_k n_k = n` closest to :math:`n \alpha_k`.

    Largest-remainder rounding: :math:`\lfloor n \alpha_k \rfloor`, plus one for the
    components with the largest fractional parts (ties to the lower index), so
    :math:`|n_k - n \alpha_k| < 1`.
    """
    target = np.asarray(weights, dtype=float) * int(n_samples)
    counts = np.floor(target).astype(int)
    shortfall = int(n_samples) - int(counts.sum())
    counts[np.argsort(-(target - counts), kind="stable")[:shortfall]] += 1
    return counts


def make_sweep_dataset(setting: SweepSetting, dataset: int, n_samples: int, seed: int, exact_proportions: bool = True):
    r"""Dataset ``dataset`` of ``setting``: a :class:`sinkhorn_em.synthetic.MixtureSample`.

    Means come from :func:`sinkhorn_em.synthetic.means_with_separation` (closest pair
    exactly ``separation`` apart), components are :math:`N(\mu_k, I_d)`. With
    ``exact_proportions`` component ``k`` holds exactly :func:`exact_counts` points, so the
    known weights are the sample's proportions (as when every class has a known size);
    otherwise labels are i.i.d. draws (:func:`sinkhorn_em.synthetic.make_mixture`) and the
    sample proportions fluctuate around :math:`\alpha` by about
    :math:`\sqrt{\alpha_k (1 - \alpha_k) / n}`. The seed depends only on
    ``(seed, setting, n_samples, dataset)``.
    """
    rng = derive_rng(
        seed, "sweeps", "data", setting.weights, setting.dim, setting.separation, int(n_samples), int(dataset)
    )
    weights = np.asarray(setting.weights)
    if not exact_proportions:
        return make_mixture(int(n_samples), weights, setting.dim, setting.separation, rng)
    K, d = setting.n_components, setting.dim
    means = means_with_separation(K, d, setting.separation, rng)
    labels = rng.permutation(np.repeat(np.arange(K), exact_counts(weights, n_samples)))
    X = means[labels] + rng.standard_normal((labels.size, d))
    return MixtureSample(X, labels, weights, means, np.repeat(np.eye(d)[None], K, axis=0))


def _matched_distance(means_a, covariances_a, means_b, covariances_b=None) -> float:
    """:func:`matched_parameter_error` between two parameter sets (means only if no covariances)."""
    if covariances_b is None:
        return float(matched_parameter_error(means_a, means_b)[0])
    return float(matched_parameter_error(means_a, means_b, covariances_a, covariances_b)[0])


def collapsed_error(sample) -> float:
    """Matched error of the trivial fit: every component at the sample mean and covariance.

    A success rule is only discriminative when the reference error plus tolerance stays
    well below this (at small separations in high dimension it does not).
    """
    K, d = sample.means.shape
    means = np.repeat(sample.X.mean(axis=0)[None], K, axis=0)
    covariances = np.repeat(np.atleast_2d(np.cov(sample.X, rowvar=False))[None], K, axis=0)
    return _matched_distance(sample.means, sample.covariances, means, covariances.reshape(K, d, d))
