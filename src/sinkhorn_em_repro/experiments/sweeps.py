r"""Initialisation sweeps, epsilon sweeps and epsilon annealing (issue 5).

The paper's practical claim is that the EOT loss needs fewer random restarts than the
log-likelihood. This module measures how often each method reaches the global optimum
from random starts, on synthetic K-component mixtures, and how the entropic weight
:math:`\varepsilon` (constant or annealed) changes that.

Protocol
--------
*Settings.* A setting is ``(weights, d, separation)``: ``K = len(weights)`` components
with known mixing weights :math:`\alpha`, dimension ``d``, and ``separation`` = the
minimum distance between means in units of the component standard deviation
(:func:`sinkhorn_em.synthetic.make_mixture`). Each setting has ``n_datasets`` datasets
of ``n_samples`` points.

*Initialisations.* For each dataset and scheme, ``n_inits`` initial means:

``random_from_data``
    ``K`` distinct data points drawn uniformly without replacement.
``k-means++``
    the k-means++ seeding of Arthur & Vassilvitskii (:func:`sklearn.cluster.kmeans_plusplus`).
``uniform_box``
    ``K`` points uniform in the bounding box :math:`\prod_j [\min_i x_{ij}, \max_i x_{ij}]`.
``truth``
    the true means (a sanity scheme: such runs are the reference runs).

Covariances start as :class:`sinkhorn_em.EOTGaussianMixture` does when given only
``means_init`` (what a user gets, and what scikit-learn does after k-means): component
``k`` starts at the covariance (+ ``reg_covar``) of the points whose nearest initial mean is
:math:`\mu_k^{(0)}`, or at the pooled data covariance if fewer than two points are. The
``truth`` scheme starts at the true covariances. Every method starts with the known
weights :math:`\alpha` (oEM then re-estimates them). For a given dataset, scheme and initialisation
index all methods start from the same parameters, so the comparison is paired.

*Success rule.* On each dataset, every method is also run from the true parameters
:math:`(\alpha, \mu^\star, \Sigma^\star)` at constant :math:`\varepsilon = 1` with the same
options (the *reference run*). Let :math:`e` be a run's permutation-matched parameter error
(:func:`sinkhorn_em.metrics.matched_parameter_error`: root mean over components of
:math:`\|\mu_k - \hat\mu_{\pi(k)}\|^2 + \|\Sigma_k - \hat\Sigma_{\pi(k)}\|_F^2`) and
:math:`e_\mathrm{ref}` that of the reference run of the same method on the same data. The
run is a success iff

.. math:: e \le (1 + r)\, e_\mathrm{ref} + a ,

with ``success_rtol`` :math:`= r` and ``success_atol`` :math:`= a` (``a`` in units of the
component standard deviation). A run started at the truth is therefore always a success.
The reference run is capped by the same ``max_iter`` as every other run.

*Summaries.* Per (setting, scheme, method): the success fraction with a Wilson 95%
interval (:func:`wilson_interval`), the median final error, iterations and wall time.

*Epsilon sweep.* Each method also runs at constant :math:`\varepsilon \ne 1` and with
annealing schedules ending at 1; every such *variant* has its own reference run from the
truth. ``success`` keeps the rule above (against the constant-:math:`\varepsilon = 1`
reference: did the run recover the parameters as well as the unbiased method?), and
``success_own`` applies it against the variant's own reference (did the run find the
variant's own global optimum, however biased?). The bias of a variant is measured on its
reference run: ``mean_bias`` = mean over datasets of its error from the truth (sampling
error plus the :math:`\varepsilon`-induced bias; ``mean_bias_means`` the means-only part),
and ``mean_shift`` = mean over datasets of the matched distance between its reference fit
and the constant-:math:`\varepsilon = 1` reference fit on the same data (the
:math:`\varepsilon`-induced displacement alone, free of sampling noise).

Seeds and chunking
------------------
Dataset ``j`` of a setting is drawn from ``derive_seed(seed, "sweeps", "data", weights,
d, separation, n_samples, j)`` and initialisation ``i`` of scheme ``s`` from
``derive_seed(seed, "sweeps", "init", weights, d, separation, n_samples, j, s, i)``. Seeds
thus depend on what is computed, never on the chunk, the job order or ``--cores``: any
chunking of the initialisations gives the same rows, and the init and epsilon sweeps see
the same datasets and the same starting points.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.cluster import kmeans_plusplus

from sinkhorn_em.metrics import matched_parameter_error
from sinkhorn_em.synthetic import MixtureSample, make_mixture, means_with_separation
from sinkhorn_em_repro.fitting import ESTIMATOR_METHOD, fit_table_method
from sinkhorn_em_repro.intervals import wilson_interval
from sinkhorn_em_repro.seeding import derive_rng

__all__ = [
    "INIT_SCHEMES",
    "SweepSetting",
    "collapsed_error",
    "exact_counts",
    "geometric_schedule",
    "initial_means",
    "is_success",
    "make_sweep_dataset",
    "pair_means_with_weights",
    "plan_epsilon_sweep",
    "plan_init_sweep",
    "run_epsilon_sweep_chunk",
    "run_init_sweep_chunk",
    "summarise_epsilon_sweep",
    "summarise_init_sweep",
]


#: Initialisation schemes of the sweeps ("truth" is the reference start, for checks).
INIT_SCHEMES = ("random_from_data", "k-means++", "uniform_box", "truth")
_METHOD_RANK = {m: r for r, m in enumerate(ESTIMATOR_METHOD)}
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


# ---------------------------------------------------------------------------------------
# Settings, schedules, data and initial parameters
# ---------------------------------------------------------------------------------------
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


def initial_means(
    X: np.ndarray, n_components: int, scheme: str, rng: np.random.Generator, true_means: np.ndarray | None = None
) -> np.ndarray:
    """Initial means of one run (schemes described in the module docstring).

    Parameters
    ----------
    X : ndarray of shape (n, d)
    n_components : int
    scheme : {"random_from_data", "k-means++", "uniform_box", "truth"}
    rng : numpy.random.Generator
        The run's own generator.
    true_means : ndarray of shape (K, d), optional
        Needed by the ``"truth"`` scheme.

    Returns
    -------
    means : ndarray of shape (K, d)
    """
    if scheme == "random_from_data":
        return X[rng.choice(X.shape[0], size=n_components, replace=False)].copy()
    if scheme == "k-means++":
        centres, _ = kmeans_plusplus(X, n_components, random_state=int(rng.integers(2**31 - 1)))
        return centres
    if scheme == "uniform_box":
        return rng.uniform(X.min(axis=0), X.max(axis=0), size=(n_components, X.shape[1]))
    if scheme == "truth":
        if true_means is None:
            raise ValueError("the 'truth' initialisation needs true_means.")
        return np.array(true_means, dtype=float)
    raise ValueError(f"unknown initialisation scheme {scheme!r}; use one of {INIT_SCHEMES}.")


def pair_means_with_weights(X: np.ndarray, means: np.ndarray, weights: Sequence[float]) -> np.ndarray:
    r"""Reorder initial means so that larger nearest-mean cells start with larger weights.

    With known unequal weights, component ``k`` of a fit starts at ``means[k]`` with
    weight :math:`\alpha_k`; a start that puts a small weight on a big cluster lies in the
    basin of a spurious optimum even when every cluster holds one initial mean. This
    heuristic counts the points nearest to each initial mean and gives the ``j``-th largest
    weight to the mean with the ``j``-th largest count (ties by index).

    Returns
    -------
    ndarray of shape (K, d)
        ``means`` permuted: row ``k`` is the start of the component of weight ``weights[k]``.
    """
    means = np.asarray(means, dtype=float)
    nearest = ((X[:, None, :] - means[None, :, :]) ** 2).sum(-1).argmin(axis=1)
    counts = np.bincount(nearest, minlength=len(means))
    paired = np.empty_like(means)
    paired[np.argsort(-np.asarray(weights, dtype=float), kind="stable")] = means[np.argsort(-counts, kind="stable")]
    return paired


def collapsed_error(sample) -> float:
    """Matched error of the trivial fit: every component at the sample mean and covariance.

    A success rule is only discriminative when the reference error plus tolerance stays
    well below this (at small separations in high dimension it does not).
    """
    K, d = sample.means.shape
    means = np.repeat(sample.X.mean(axis=0)[None], K, axis=0)
    covariances = np.repeat(np.atleast_2d(np.cov(sample.X, rowvar=False))[None], K, axis=0)
    return _matched_distance(sample.means, sample.covariances, means, covariances.reshape(K, d, d))


def _init_rng(
    seed: int, setting: SweepSetting, n_samples: int, dataset: int, scheme: str, init_index: int
) -> np.random.Generator:
    return derive_rng(
        seed,
        "sweeps",
        "init",
        setting.weights,
        setting.dim,
        setting.separation,
        int(n_samples),
        int(dataset),
        scheme,
        int(init_index),
    )


# ---------------------------------------------------------------------------------------
# One fit
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Variant:
    """A method with its epsilon: constant (``schedule == ()``) or annealed to ``epsilon``."""

    method: str
    epsilon: float = 1.0
    schedule: tuple[float, ...] = ()
    eps0: float = 1.0
    decay: float = 1.0

    @property
    def schedule_label(self) -> str:
        if not self.schedule:
            return "constant"
        return f"geometric {self.eps0:g}->{self.epsilon:g} x{self.decay:g}"

    def columns(self) -> dict:
        return {
            "method": self.method,
            "schedule": self.schedule_label,
            "eps": self.epsilon,
            "eps0": self.eps0 if self.schedule else self.epsilon,
            "decay": self.decay,
            "anneal_iterations": len(self.schedule),
        }


@dataclass(frozen=True)
class _FitOptions:
    max_iter: int
    tol: float
    sinkhorn_tol: float
    sinkhorn_max_iter: int
    reg_covar: float


@dataclass(frozen=True)
class _FitResult:
    means: np.ndarray
    covariances: np.ndarray
    n_iter: int
    converged: bool
    seconds: float


def _fit(X, weights, variant: _Variant, means0, covariances0, options: _FitOptions) -> _FitResult:
    outcome = fit_table_method(
        variant.method,
        X,
        weights=weights,
        means_init=means0,
        covariances_init=covariances0,
        epsilon=variant.epsilon,
        epsilon_schedule=list(variant.schedule) or None,
        tol=options.tol,
        max_iter=options.max_iter,
        reg_covar=options.reg_covar,
        sinkhorn_tol=options.sinkhorn_tol,
        sinkhorn_max_iter=options.sinkhorn_max_iter,
    )
    model = outcome.model
    return _FitResult(model.means_, model.covariances_, int(model.n_iter_), outcome.converged, outcome.seconds)


def _matched_distance(means_a, covariances_a, means_b, covariances_b=None) -> float:
    """:func:`matched_parameter_error` between two parameter sets (means only if no covariances)."""
    if covariances_b is None:
        return float(matched_parameter_error(means_a, means_b)[0])
    return float(matched_parameter_error(means_a, means_b, covariances_a, covariances_b)[0])


def _error(sample, fit: _FitResult) -> float:
    return _matched_distance(sample.means, sample.covariances, fit.means, fit.covariances)


def _means_error(sample, fit: _FitResult) -> float:
    return _matched_distance(sample.means, None, fit.means)


def _distance(fit_a: _FitResult, fit_b: _FitResult) -> float:
    return _matched_distance(fit_a.means, fit_a.covariances, fit_b.means, fit_b.covariances)


def _check_names(values: Sequence[str], allowed: Sequence[str], what: str) -> list[str]:
    values = list(values)
    unknown = [v for v in values if v not in allowed]
    if unknown or not values:
        raise ValueError(f"{what} must be a non-empty list drawn from {list(allowed)}, got {values}.")
    if len(set(values)) != len(values):
        raise ValueError(f"{what} lists an entry twice: {values}.")
    return values


def _run_chunk(
    *,
    setting: SweepSetting,
    dataset: int,
    first_init: int,
    n_inits: int,
    schemes: Sequence[str],
    variants: Sequence[_Variant],
    n_samples: int,
    seed: int,
    exact_proportions: bool,
    options: _FitOptions,
    success_rtol: float,
    success_atol: float,
    pair_weights_by_size: bool,
    with_bias: bool,
) -> pd.DataFrame:
    """Rows of one job: every (scheme, init index, variant) of one dataset."""
    if n_inits < 1 or first_init < 0:
        raise ValueError(f"need n_inits >= 1 and first_init >= 0, got {n_inits}, {first_init}.")
    sample = make_sweep_dataset(setting, dataset, n_samples, seed, exact_proportions)
    X = sample.X
    K = setting.n_components

    # Reference runs from the truth: one per variant, plus constant epsilon = 1 per method,
    # which defines success in both sweeps (reaching the unbiased optimum).
    references: dict[_Variant, _FitResult] = {}
    for variant in [*variants, *(_Variant(m) for m in dict.fromkeys(v.method for v in variants))]:
        if variant not in references:
            references[variant] = _fit(X, setting.weights, variant, sample.means, sample.covariances, options)
    reference_errors = {variant: _error(sample, fit) for variant, fit in references.items()}
    baseline_error = collapsed_error(sample)

    rows = []
    for scheme in schemes:
        for init_index in range(first_init, first_init + n_inits):
            rng = _init_rng(seed, setting, n_samples, dataset, scheme, init_index)
            means0 = initial_means(X, K, scheme, rng, true_means=sample.means)
            if pair_weights_by_size and scheme != "truth":
                means0 = pair_means_with_weights(X, means0, setting.weights)
            # None: the estimator's nearest-mean covariances (see the module docstring).
            covariances0 = sample.covariances if scheme == "truth" else None
            for variant in variants:
                fit = _fit(X, setting.weights, variant, means0, covariances0, options)
                error = _error(sample, fit)
                unit = _Variant(variant.method)
                row = {
                    **setting.columns(),
                    "dataset": int(dataset),
                    "init": scheme,
                    "init_index": init_index,
                    "pairing": "by_size" if pair_weights_by_size else "as_drawn",
                    **variant.columns(),
                    "error": error,
                    "reference_error": reference_errors[variant],
                    "unit_reference_error": reference_errors[unit],
                    "collapsed_error": baseline_error,
                    # True where the rule cannot tell a fit from the trivial collapsed one.
                    "collapsed_success": bool(
                        is_success(baseline_error, reference_errors[unit], success_rtol, success_atol)
                    ),
                    "success": bool(is_success(error, reference_errors[unit], success_rtol, success_atol)),
                    "success_own": bool(is_success(error, reference_errors[variant], success_rtol, success_atol)),
                    "distance_to_reference": _distance(fit, references[variant]),
                    "n_iter": fit.n_iter,
                    "converged": fit.converged,
                    "seconds": fit.seconds,
                }
                if with_bias:
                    row["reference_error_means"] = _means_error(sample, references[variant])
                    row["reference_shift"] = _distance(references[variant], references[unit])
                rows.append(row)
    return pd.DataFrame(rows)


def run_init_sweep_chunk(
    *,
    weights: Sequence[float],
    dim: int,
    separation: float,
    dataset: int,
    first_init: int,
    n_inits: int,
    schemes: Sequence[str],
    methods: Sequence[str],
    n_samples: int,
    exact_proportions: bool,
    pair_weights_by_size: bool,
    seed: int,
    max_iter: int,
    tol: float,
    sinkhorn_tol: float,
    sinkhorn_max_iter: int,
    reg_covar: float,
    success_rtol: float,
    success_atol: float,
) -> pd.DataFrame:
    """Run one job of the initialisation sweep: all runs of one dataset and init block.

    Parameters
    ----------
    weights, dim, separation
        The setting (see :class:`SweepSetting`).
    dataset : int
        Index of the dataset within the setting.
    first_init, n_inits : int
        The job fits initialisations ``first_init, ..., first_init + n_inits - 1`` of every
        scheme.
    schemes : list of str
        Initialisation schemes (:data:`INIT_SCHEMES`).
    pair_weights_by_size : bool
        ``False``: initial mean ``k`` (in the order drawn) starts with weight
        :math:`\alpha_k`, as when a user passes ``means_init``; ``True``: reorder by
        :func:`pair_means_with_weights`.
    methods : list of {"vEM", "oEM", "sEM"}
    n_samples, exact_proportions, seed
        Dataset size, stratified (``True``) or i.i.d. labels (:func:`make_sweep_dataset`),
        and the base seed of the config.
    max_iter, tol, sinkhorn_tol, sinkhorn_max_iter, reg_covar
        Passed to :class:`sinkhorn_em.EOTGaussianMixture` (epsilon = 1).
    success_rtol, success_atol : float
        The success rule (:func:`is_success`).

    Returns
    -------
    pandas.DataFrame
        One row per (scheme, initialisation, method): setting columns, ``dataset``,
        ``init``, ``init_index``, ``method``, ``error``, ``reference_error`` (error of the
        reference run), ``success``, ``distance_to_reference`` (matched distance between
        the run's and the reference run's parameters), ``n_iter``, ``converged`` and
        ``seconds`` (wall time of the fit), plus columns shared with the epsilon sweep
        (``schedule = "constant"``, ``eps = 1``, ...; ``success_own == success`` here).
    """
    setting = SweepSetting.create(weights, dim, separation)
    schemes = _check_names(schemes, INIT_SCHEMES, "schemes")
    variants = [_Variant(m) for m in _check_names(methods, list(ESTIMATOR_METHOD), "methods")]
    options = _FitOptions(int(max_iter), float(tol), float(sinkhorn_tol), int(sinkhorn_max_iter), float(reg_covar))
    return _run_chunk(
        setting=setting,
        dataset=dataset,
        first_init=first_init,
        n_inits=n_inits,
        schemes=schemes,
        variants=variants,
        n_samples=n_samples,
        seed=seed,
        exact_proportions=bool(exact_proportions),
        options=options,
        success_rtol=success_rtol,
        success_atol=success_atol,
        pair_weights_by_size=bool(pair_weights_by_size),
        with_bias=False,
    )


def _epsilon_variants(
    methods: Sequence[str], epsilons: Sequence[float], schedules: Sequence[Mapping]
) -> list[_Variant]:
    methods = _check_names(methods, list(ESTIMATOR_METHOD), "methods")
    epsilons = [float(e) for e in epsilons]
    if not epsilons or min(epsilons) <= 0 or len(set(epsilons)) != len(epsilons):
        raise ValueError(f"epsilons must be distinct positive numbers, got {epsilons}.")
    variants = []
    for method in methods:
        variants += [_Variant(method, epsilon=eps) for eps in epsilons]
        for spec in schedules:
            eps0, decay = float(spec["eps0"]), float(spec["decay"])
            variants.append(_Variant(method, 1.0, tuple(geometric_schedule(eps0, decay)), eps0, decay))
    if len(set(variants)) != len(variants):
        raise ValueError("anneal_schedules lists the same (eps0, decay) twice.")
    return variants


def run_epsilon_sweep_chunk(
    *,
    weights: Sequence[float],
    dim: int,
    separation: float,
    dataset: int,
    first_init: int,
    n_inits: int,
    init: str,
    methods: Sequence[str],
    epsilons: Sequence[float],
    anneal_schedules: Sequence[Mapping],
    n_samples: int,
    exact_proportions: bool,
    pair_weights_by_size: bool,
    seed: int,
    max_iter: int,
    tol: float,
    sinkhorn_tol: float,
    sinkhorn_max_iter: int,
    reg_covar: float,
    success_rtol: float,
    success_atol: float,
) -> pd.DataFrame:
    r"""Run one job of the epsilon sweep: constant epsilons and annealing schedules.

    Every method of ``methods`` runs with each constant :math:`\varepsilon` of
    ``epsilons`` (for vEM/oEM this is the tempered E-step, responsibilities
    :math:`\propto \alpha_k \exp(-C_{ik}/\varepsilon)`; for sEM the entropic weight of the
    balanced problem) and with each annealing schedule
    :math:`\varepsilon_t = \max(1, \varepsilon_0 \rho^t)` of ``anneal_schedules``
    (mappings with keys ``eps0`` and ``decay``; :func:`geometric_schedule`).

    ``success`` compares a run with the constant-:math:`\varepsilon = 1` reference run of the
    same method, ``success_own`` with the reference run of the same variant (module
    docstring). The bias of the variant is given by ``reference_error`` (error of its
    reference fit from the truth), ``reference_error_means`` (means only) and
    ``reference_shift`` (distance of its reference fit to the constant-:math:`\varepsilon = 1`
    reference fit of the same method).

    Parameters are those of :func:`run_init_sweep_chunk`, with a single scheme ``init``.

    Returns
    -------
    pandas.DataFrame
        One row per (initialisation, method, variant).
    """
    setting = SweepSetting.create(weights, dim, separation)
    _check_names([init], INIT_SCHEMES, "init")
    variants = _epsilon_variants(methods, epsilons, anneal_schedules)
    options = _FitOptions(int(max_iter), float(tol), float(sinkhorn_tol), int(sinkhorn_max_iter), float(reg_covar))
    return _run_chunk(
        setting=setting,
        dataset=dataset,
        first_init=first_init,
        n_inits=n_inits,
        schemes=[init],
        variants=variants,
        n_samples=n_samples,
        seed=seed,
        exact_proportions=bool(exact_proportions),
        options=options,
        success_rtol=success_rtol,
        success_atol=success_atol,
        pair_weights_by_size=bool(pair_weights_by_size),
        with_bias=True,
    )


# ---------------------------------------------------------------------------------------
# Job planning (used by workflow/rules/sweeps.smk)
# ---------------------------------------------------------------------------------------
def scaled_count(count: int, sweep_scale: float) -> int:
    """``ceil(count * sweep_scale)``, at least 1 (the rounding of ``sweep_scale``)."""
    if not sweep_scale > 0:
        raise ValueError(f"sweep_scale must be > 0, got {sweep_scale!r}.")
    return max(1, math.ceil(count * sweep_scale - 1e-9))


_FIT_KEYS = (
    "n_samples",
    "exact_proportions",
    "pair_weights_by_size",
    "max_iter",
    "tol",
    "sinkhorn_tol",
    "sinkhorn_max_iter",
    "reg_covar",
    "success_rtol",
    "success_atol",
)


def _plan(cfg: Mapping, seed: int, sweep_scale: float, job_keys: Sequence[str]) -> dict[str, dict]:
    n_datasets = scaled_count(int(cfg["n_datasets"]), sweep_scale)
    n_inits = scaled_count(int(cfg["n_inits"]), sweep_scale)
    block = int(cfg["inits_per_job"])
    if block < 1:
        raise ValueError(f"inits_per_job must be >= 1, got {block}.")
    jobs: dict[str, dict] = {}
    for weights in cfg["weights"]:
        for dim in cfg["dims"]:
            for separation in cfg["separations"]:
                setting = SweepSetting.create(weights, dim, separation)
                for dataset in range(n_datasets):
                    for first in range(0, n_inits, block):
                        count = min(block, n_inits - first)
                        key = f"{setting.key}/data{dataset}_inits{first}-{first + count - 1}"
                        if key in jobs:
                            raise ValueError(f"the config lists setting {setting.key} twice.")
                        jobs[key] = {
                            "weights": list(setting.weights),
                            "dim": setting.dim,
                            "separation": setting.separation,
                            "dataset": dataset,
                            "first_init": first,
                            "n_inits": count,
                            "seed": int(seed),
                            **{k: cfg[k] for k in (*_FIT_KEYS, *job_keys)},
                        }
    return jobs


def plan_init_sweep(cfg: Mapping, seed: int, sweep_scale: float = 1.0) -> dict[str, dict]:
    """Jobs of the initialisation sweep: ``{job key: kwargs of run_init_sweep_chunk}``.

    One job per (setting, dataset, block of ``inits_per_job`` initialisations). The numbers
    of datasets and of initialisations are ``ceil(n * sweep_scale)``.
    """
    return _plan(cfg, seed, sweep_scale, ("schemes", "methods"))


def plan_epsilon_sweep(cfg: Mapping, seed: int, sweep_scale: float = 1.0) -> dict[str, dict]:
    """Jobs of the epsilon sweep: ``{job key: kwargs of run_epsilon_sweep_chunk}``."""
    return _plan(cfg, seed, sweep_scale, ("init", "methods", "epsilons", "anneal_schedules"))


# ---------------------------------------------------------------------------------------
# Aggregation
# ---------------------------------------------------------------------------------------
_SETTING_COLUMNS = ["K", "d", "weights", "separation"]
#: Leading columns of results/tables/init_sweep.csv (issue 5); further columns follow.
INIT_TABLE_COLUMNS = [
    "K",
    "d",
    "weights",
    "separation",
    "init",
    "method",
    "n_runs",
    "success",
    "ci_low",
    "ci_high",
    "median_error",
    "median_iterations",
    "median_seconds",
]
#: Leading columns of results/tables/epsilon_sweep.csv.
EPSILON_TABLE_COLUMNS = [
    "method",
    "eps",
    "schedule",
    "K",
    "d",
    "weights",
    "separation",
    "init",
    "n_runs",
    "success",
    "ci_low",
    "ci_high",
    "mean_bias",
    "median_iterations",
]
_VARIANT_COLUMNS = ["method", "schedule", "eps", "eps0", "decay", "anneal_iterations"]
_RUN_KEY = ["dataset", "init_index"]


def _canonical_order(runs: pd.DataFrame, group_columns: Sequence[str]) -> pd.DataFrame:
    """Rows sorted by setting, variant and run, so results do not depend on chunk order."""
    runs = runs.assign(_method_rank=runs["method"].map(_METHOD_RANK))
    keys = [c if c != "method" else "_method_rank" for c in group_columns] + _RUN_KEY
    return runs.sort_values(keys, kind="mergesort").drop(columns="_method_rank")


def _leading(table: pd.DataFrame, leading: Sequence[str]) -> pd.DataFrame:
    return table[[*leading, *(c for c in table.columns if c not in leading)]]


def _success_summary(group: pd.DataFrame) -> dict:
    n_runs = len(group)
    n_success = int(group["success"].sum())
    low, high = wilson_interval(n_success, n_runs)
    successes = group.loc[group["success"], "error"]
    return {
        "n_runs": n_runs,
        "n_success": n_success,
        "success": n_success / n_runs,
        "ci_low": low,
        "ci_high": high,
        "median_error": float(group["error"].median()),
        "median_error_success": float(successes.median()) if len(successes) else np.nan,
        "median_iterations": float(group["n_iter"].median()),
        "converged_fraction": float(group["converged"].mean()),
        "median_seconds": float(group["seconds"].median()),
    }


def _check_runs(runs: pd.DataFrame, group_columns: Sequence[str]) -> None:
    needed = set(group_columns) | set(_RUN_KEY) | {"error", "success", "n_iter", "converged", "seconds"}
    missing = sorted(needed - set(runs.columns))
    if missing:
        raise ValueError(f"run table lacks columns {missing}; pass the output of the chunk functions.")
    if runs.empty:
        raise ValueError("run table is empty: no chunk produced any run.")
    duplicated = runs.duplicated([*group_columns, *_RUN_KEY])
    if duplicated.any():
        raise ValueError(f"{int(duplicated.sum())} runs appear twice: a chunk was aggregated twice.")


def summarise_init_sweep(runs: pd.DataFrame) -> pd.DataFrame:
    """Aggregate init-sweep runs per (setting, scheme, method).

    Parameters
    ----------
    runs : pandas.DataFrame
        Concatenated outputs of :func:`run_init_sweep_chunk`, in any order.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`INIT_TABLE_COLUMNS`, then ``pairing, n_success,
        median_error_success, converged_fraction, median_reference_error,
        median_collapsed_error, collapsed_success_fraction``:
        success is the fraction of successful runs, ``[ci_low, ci_high]`` its Wilson 95%
        interval, then medians over datasets of the error of the reference run and of the
        trivial collapsed fit (:func:`collapsed_error`), and the fraction of datasets on which
        that trivial fit would pass the success rule (where it is > 0 the rule cannot tell
        a collapsed fit from the global optimum).
    """
    group_columns = [*_SETTING_COLUMNS, "init", "pairing", "method"]
    _check_runs(runs, group_columns)
    runs = _canonical_order(runs, group_columns)
    rows = []
    for key, group in runs.groupby(group_columns, sort=False):
        per_dataset = group.drop_duplicates("dataset")
        rows.append(
            {
                **dict(zip(group_columns, key)),
                **_success_summary(group),
                "median_reference_error": float(per_dataset["reference_error"].median()),
                "median_collapsed_error": float(per_dataset["collapsed_error"].median()),
                "collapsed_success_fraction": float(per_dataset["collapsed_success"].mean()),
            }
        )
    return _leading(pd.DataFrame(rows), INIT_TABLE_COLUMNS)


def summarise_epsilon_sweep(runs: pd.DataFrame) -> pd.DataFrame:
    """Aggregate epsilon-sweep runs per (method variant, setting).

    Parameters
    ----------
    runs : pandas.DataFrame
        Concatenated outputs of :func:`run_epsilon_sweep_chunk`, in any order.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`EPSILON_TABLE_COLUMNS`, then ``eps0, decay, anneal_iterations,
        pairing``, the other success columns of :func:`summarise_init_sweep` (success =
        reaching the constant-epsilon-1 optimum), ``n_success_own, success_own, own_ci_low,
        own_ci_high`` (reaching the variant's own optimum), and the bias of the variant,
        averaged over datasets: ``mean_bias`` (matched error of the fit
        started at the truth, means and covariances), ``mean_bias_means`` (means only) and
        ``mean_shift`` (its distance to the constant-epsilon-1 fit of the same method on the
        same data; 0 for epsilon = 1), ``mean_collapsed_error`` (:func:`collapsed_error`) and
        ``collapsed_success_fraction`` (as in :func:`summarise_init_sweep`).
    """
    group_columns = [*_VARIANT_COLUMNS, *_SETTING_COLUMNS, "init", "pairing"]
    _check_runs(runs, group_columns)
    runs = _canonical_order(runs, group_columns)
    rows = []
    for key, group in runs.groupby(group_columns, sort=False):
        per_dataset = group.drop_duplicates("dataset")
        n_own = int(group["success_own"].sum())
        own_low, own_high = wilson_interval(n_own, len(group))
        rows.append(
            {
                **dict(zip(group_columns, key)),
                **_success_summary(group),
                "n_success_own": n_own,
                "success_own": n_own / len(group),
                "own_ci_low": own_low,
                "own_ci_high": own_high,
                "mean_bias": float(per_dataset["reference_error"].mean()),
                "mean_bias_means": float(per_dataset["reference_error_means"].mean()),
                "mean_shift": float(per_dataset["reference_shift"].mean()),
                "mean_collapsed_error": float(per_dataset["collapsed_error"].mean()),
                "collapsed_success_fraction": float(per_dataset["collapsed_success"].mean()),
            }
        )
    return _leading(pd.DataFrame(rows), EPSILON_TABLE_COLUMNS)
