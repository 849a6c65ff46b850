r"""Jobs of the sweeps: every run of one dataset and block of initialisations, with its reference runs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sinkhorn_em_repro.experiments.sweeps.setting import (
    SweepSetting,
    _matched_distance,
    collapsed_error,
    geometric_schedule,
    is_success,
    make_sweep_dataset,
)
from sinkhorn_em_repro.experiments.sweeps.start import INIT_SCHEMES, init_rng, initial_means, pair_means_with_weights
from sinkhorn_em_repro.fitting import ESTIMATOR_METHOD, FitOptions, fit_table_method, fit_table_method_starts

__all__ = ["run_epsilon_sweep_chunk", "run_init_sweep_chunk", "run_sweep_batch"]


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
class _FitResult:
    means: np.ndarray
    covariances: np.ndarray
    n_iter: int
    converged: bool
    seconds: float


def _fit_options(variant: _Variant, options: FitOptions) -> FitOptions:
    """The sweep's fit options with the variant's regularisation."""
    return options.replace(epsilon=variant.epsilon, epsilon_schedule=variant.schedule or None)


def _result(outcome) -> _FitResult:
    model = outcome.model
    return _FitResult(model.means_, model.covariances_, int(model.n_iter_), outcome.converged, outcome.seconds)


def _fit(X, weights, variant: _Variant, means0, covariances0, options: FitOptions) -> _FitResult:
    return _result(
        fit_table_method(
            variant.method,
            X,
            weights=weights,
            means_init=means0,
            covariances_init=covariances0,
            options=_fit_options(variant, options),
        )
    )


def _fit_starts(X, weights, variant: _Variant, means0s, covariances0s, options: FitOptions) -> list[_FitResult]:
    """One fit per start, as one batched computation (each start's result is its own fit's)."""
    outcomes = fit_table_method_starts(
        variant.method,
        X,
        weights=weights,
        means_inits=means0s,
        covariances_inits=covariances0s,
        options=_fit_options(variant, options),
    )
    return [_result(outcome) for outcome in outcomes]


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
    schemes: Sequence[str],
    variants: Sequence[_Variant],
    with_bias: bool,
    *,
    weights: Sequence[float],
    dim: int,
    separation: float,
    dataset: int,
    first_init: int,
    n_inits: int,
    n_samples: int,
    exact_proportions: bool,
    pair_weights_by_size: bool | Sequence[bool],
    seed: int,
    options: FitOptions,
    success_rtol: float,
    success_atol: float,
    references_cache: dict | None = None,
) -> pd.DataFrame:
    r"""Rows of one chunk of either sweep: every (scheme, pairing, init index, variant) of one dataset.

    Parameters
    ----------
    schemes : list of str
        Initialisation schemes (:data:`INIT_SCHEMES`).
    variants : list of _Variant
        Methods with their constant or annealed epsilon.
    with_bias : bool
        Add the bias columns of the epsilon sweep.
    weights, dim, separation
        The setting (see :class:`SweepSetting`).
    dataset : int
        Index of the dataset within the setting.
    first_init, n_inits : int
        The job fits initialisations ``first_init, ..., first_init + n_inits - 1`` of every
        scheme.
    n_samples, exact_proportions, seed
        Dataset size, stratified (``True``) or i.i.d. labels (:func:`make_sweep_dataset`),
        and the base seed of the config.
    pair_weights_by_size : bool or list of bool
        ``False``: initial mean ``k`` (in the order drawn) starts with weight
        :math:`\alpha_k`, as when a user passes ``means_init`` (``pairing = "as_drawn"``);
        ``True``: reorder by :func:`pair_means_with_weights` (``pairing = "by_size"``). A list
        runs every start under each pairing it names (same initial means, reordered or not).
    options : FitOptions
        The sweep's fit options (its config section, :meth:`FitOptions.from_config`); each
        variant sets its own ``epsilon`` / ``epsilon_schedule``.
    success_rtol, success_atol : float
        The success rule (:func:`is_success`).
    references_cache : dict, optional
        Reference fits already computed in this process (filled here): a batch of chunks of
        the same dataset fits its references once. The fits are deterministic, so the cache
        changes no number.
    """
    setting = SweepSetting.create(weights, dim, separation)
    FitOptions.check(options)
    exact_proportions = bool(exact_proportions)
    pairings = [
        bool(p)
        for p in (pair_weights_by_size if isinstance(pair_weights_by_size, (list, tuple)) else [pair_weights_by_size])
    ]
    if not pairings or len(set(pairings)) != len(pairings):
        raise ValueError(f"pair_weights_by_size must be a boolean or a list of distinct booleans, got {pairings}.")
    if n_inits < 1 or first_init < 0:
        raise ValueError(f"need n_inits >= 1 and first_init >= 0, got {n_inits}, {first_init}.")
    sample = make_sweep_dataset(setting, dataset, n_samples, seed, exact_proportions)
    X = sample.X
    K = setting.n_components

    # Reference runs from the truth: one per variant, plus constant epsilon = 1 per method,
    # which defines success in both sweeps (reaching the unbiased optimum).
    references: dict[_Variant, _FitResult] = {}
    cache = {} if references_cache is None else references_cache
    for variant in [*variants, *(_Variant(m) for m in dict.fromkeys(v.method for v in variants))]:
        key = (setting, int(dataset), int(n_samples), int(seed), exact_proportions, variant, options)
        if key not in cache:
            cache[key] = _fit(X, setting.weights, variant, sample.means, sample.covariances, options)
        references[variant] = cache[key]
    reference_errors = {variant: _error(sample, fit) for variant, fit in references.items()}
    baseline_error = collapsed_error(sample)

    rows = []
    init_indices = range(first_init, first_init + n_inits)
    for scheme, by_size in ((scheme, by_size) for scheme in schemes for by_size in pairings):
        means0s = []
        for init_index in init_indices:
            rng = init_rng(seed, setting, n_samples, dataset, scheme, init_index)
            means0 = initial_means(X, K, scheme, rng, true_means=sample.means)
            if by_size and scheme != "truth":
                means0 = pair_means_with_weights(X, means0, setting.weights)
            means0s.append(means0)
        # None: the estimator's nearest-mean covariances (see the module docstring).
        covariances0s = [sample.covariances] * n_inits if scheme == "truth" else None
        # All starts of a variant in one batch: n = 2,000 fits share their passes over the data.
        fits = {
            variant: _fit_starts(X, setting.weights, variant, means0s, covariances0s, options) for variant in variants
        }
        for position, init_index in enumerate(init_indices):
            for variant in variants:
                fit = fits[variant][position]
                error = _error(sample, fit)
                unit = _Variant(variant.method)
                row = {
                    **setting.columns(),
                    "dataset": int(dataset),
                    "init": scheme,
                    "init_index": init_index,
                    "pairing": "by_size" if by_size else "as_drawn",
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


def run_init_sweep_chunk(*, schemes: Sequence[str], methods: Sequence[str], **job) -> pd.DataFrame:
    """Run one job of the initialisation sweep: all runs of one dataset and init block.

    Parameters
    ----------
    schemes : list of str
        Initialisation schemes (:data:`INIT_SCHEMES`).
    methods : list of {"vEM", "oEM", "sEM"}
        Each fitted at epsilon = 1.
    **job
        The setting, dataset, block of initialisations, fit options and success rule: the
        keywords of :func:`_run_chunk` (a job of :func:`~sinkhorn_em_repro.experiments.sweeps.plan_init_sweep`).

    Returns
    -------
    pandas.DataFrame
        One row per (scheme, initialisation, method): setting columns, ``dataset``,
        ``init``, ``init_index``, ``method``, ``error``, ``reference_error`` (error of the
        reference run), ``success``, ``distance_to_reference`` (matched distance between
        the run's and the reference run's parameters), ``n_iter``, ``converged`` and
        ``seconds`` (wall time per fit: the starts of a method are fitted as one batch, whose
        time is shared equally), plus columns shared with the epsilon sweep
        (``schedule = "constant"``, ``eps = 1``, ...; ``success_own == success`` here).
    """
    schemes = _check_names(schemes, INIT_SCHEMES, "schemes")
    variants = [_Variant(m) for m in _check_names(methods, list(ESTIMATOR_METHOD), "methods")]
    return _run_chunk(schemes, variants, False, **job)


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
    init: str,
    methods: Sequence[str],
    epsilons: Sequence[float],
    anneal_schedules: Sequence[Mapping],
    **job,
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

    ``init`` is the one initialisation scheme (:data:`INIT_SCHEMES`), ``methods`` those of
    :func:`run_init_sweep_chunk`, and ``**job`` the keywords of :func:`_run_chunk` (a job
    of :func:`~sinkhorn_em_repro.experiments.sweeps.plan_epsilon_sweep`).

    Returns
    -------
    pandas.DataFrame
        One row per (initialisation, method, variant).
    """
    _check_names([init], INIT_SCHEMES, "init")
    variants = _epsilon_variants(methods, epsilons, anneal_schedules)
    return _run_chunk([init], variants, True, **job)


def run_sweep_batch(sweep: str, chunks: Sequence[Mapping]) -> pd.DataFrame:
    """Run a batch of chunks of one sweep in this process (one Python start-up for many fits).

    ``sweep`` is ``"init"`` or ``"epsilon"``; ``chunks`` the kwargs of
    :func:`run_init_sweep_chunk` or :func:`run_epsilon_sweep_chunk` (a job of
    :func:`~sinkhorn_em_repro.experiments.sweeps.plan.batch_jobs`). The rows are those of
    the chunks run one by one (reference fits are shared between chunks of the same
    dataset; they are deterministic), so the batching changes no number.
    """
    run = {"init": run_init_sweep_chunk, "epsilon": run_epsilon_sweep_chunk}
    if sweep not in run:
        raise ValueError(f"sweep must be 'init' or 'epsilon', got {sweep!r}.")
    if not chunks:
        raise ValueError("a batch needs at least one chunk.")
    cache: dict = {}
    return pd.concat([run[sweep](**chunk, references_cache=cache) for chunk in chunks], ignore_index=True)
