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

import inspect
import time
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from sinkhorn_em import EOTGaussianMixture, SinkhornConvergenceWarning, fit_many

__all__ = [
    "ESTIMATOR_METHOD",
    "TABLE_METHODS",
    "FitOptions",
    "FitOutcome",
    "fit_table_method",
    "fit_table_method_starts",
]

#: Table names of the methods of :class:`sinkhorn_em.EOTGaussianMixture` -> its ``method``.
ESTIMATOR_METHOD = {"vEM": "em", "oEM": "oem", "sEM": "sinkhorn"}
#: Every method a table may name: the three above and scikit-learn's GaussianMixture.
TABLE_METHODS = (*ESTIMATOR_METHOD, "sklearn")


def _estimator_default(name: str):
    """The default of ``EOTGaussianMixture``'s parameter ``name``: the record's defaults are the library's."""
    return inspect.signature(EOTGaussianMixture).parameters[name].default


@dataclass(frozen=True)
class FitOptions:
    r"""The options of a table fit, spelled once: what a family's config section sets and the fit receives.

    A family's plan builds one record from its validated config section
    (:meth:`from_config`; ``workflow/schemas/config.schema.yaml`` fills the section's
    defaults), its rule hands the record to the experiment as the ``options`` keyword, and the
    experiment passes it to :func:`fit_table_method` unchanged, which gives it to
    :class:`sinkhorn_em.EOTGaussianMixture` field by field (:meth:`keywords`): the names are
    the estimator's. No layer re-spells an option or keeps a default of its own; a field a
    section does not set takes the estimator's default.

    Attributes
    ----------
    covariance_type : str
    tol, max_iter : float, int
        Outer EM loop: stop when the mean log-likelihood gains less than ``tol``, or after ``max_iter``.
    reg_covar : float
        Added to the diagonal of every covariance estimate.
    epsilon : float
        Entropic regularisation of sEM's E-step (:math:`\varepsilon`).
    epsilon_schedule : sequence of float or None
        sEM's annealing schedule of :math:`\varepsilon`, if any.
    sinkhorn_tol, sinkhorn_max_iter : float, int
        Marginal tolerance and iteration cap of each balanced solve of sEM's E-step.
    n_jobs : int
        Threads of the estimator's passes over the data; the fit is the same bit for bit
        whatever its value (a job's ``threads:``).
    """

    covariance_type: str = _estimator_default("covariance_type")
    tol: float = _estimator_default("tol")
    max_iter: int = _estimator_default("max_iter")
    reg_covar: float = _estimator_default("reg_covar")
    epsilon: float = _estimator_default("epsilon")
    epsilon_schedule: object = _estimator_default("epsilon_schedule")
    sinkhorn_tol: float = _estimator_default("sinkhorn_tol")
    sinkhorn_max_iter: int = _estimator_default("sinkhorn_max_iter")
    n_jobs: int = _estimator_default("n_jobs")

    def __post_init__(self):
        # Config values arrive as YAML numbers (1.0e-4 is a float, 300 an int, but 3e2 a
        # string in YAML 1.1): fix the types once so every fit sees the same record.
        for name in ("tol", "reg_covar", "epsilon", "sinkhorn_tol"):
            object.__setattr__(self, name, float(getattr(self, name)))
        for name in ("max_iter", "sinkhorn_max_iter", "n_jobs"):
            object.__setattr__(self, name, int(getattr(self, name)))
        if self.epsilon_schedule is not None:
            object.__setattr__(self, "epsilon_schedule", tuple(float(e) for e in self.epsilon_schedule))

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """The option names (the estimator's parameter names)."""
        return tuple(each.name for each in fields(cls))

    @classmethod
    def from_config(cls, section: Mapping, **overrides) -> FitOptions:
        """The options a config section (or a job's parameters) names, the others at the estimator's defaults.

        Keys of ``section`` that are not fit options (seeds, sizes, ...) are left out; ``overrides``
        must all be fit options.
        """
        names = set(cls.field_names())
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise TypeError(f"{unknown} are not fit options; use some of {sorted(names)}.")
        return cls(**{key: value for key, value in {**section, **overrides}.items() if key in names})

    @classmethod
    def check(cls, options, *, fixed_budget_for: str | None = None) -> FitOptions:
        """``options`` itself, after checking that it is a record (and, for a fixed-budget protocol, its budget).

        ``fixed_budget_for`` names a protocol that runs exactly ``max_iter`` iterations (its
        trajectories have one row per iteration): then ``tol`` must be 0 and ``max_iter`` >= 1.
        """
        if not isinstance(options, cls):
            raise TypeError(f"options must be a FitOptions record (FitOptions.from_config(section)), got {options!r}.")
        if fixed_budget_for is not None and (options.tol != 0 or options.max_iter < 1):
            raise ValueError(
                f"{fixed_budget_for} run a fixed number of iterations: options need tol=0 and max_iter >= 1, "
                f"got tol={options.tol}, max_iter={options.max_iter}."
            )
        return options

    def replace(self, **changes) -> FitOptions:
        """A copy with ``changes``."""
        return replace(self, **changes)

    def keywords(self) -> dict:
        """The options as keywords of :class:`sinkhorn_em.EOTGaussianMixture`."""
        return asdict(self)


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
    options: FitOptions = FitOptions(),
    keep_trajectory: bool = False,
) -> FitOutcome:
    """Fit ``method`` (a table name: vEM, oEM, sEM or sklearn) to ``X`` from the given start.

    The three :class:`~sinkhorn_em.EOTGaussianMixture` methods get ``weights`` as their
    known weights (oEM: as its starting weights), ``means_init`` / ``covariances_init`` as
    the start, the fields of ``options`` as they are, and never track the EOT loss along the
    fit (the tables do not use it; it costs a balanced solve per iteration). ``sklearn`` is
    ``GaussianMixture`` started from the same weights, means and (symmetrised) precisions,
    which override its own initialisation entirely, for full (``covariances_init`` of shape
    (K, d, d)) or tied ((d, d)) covariances; it takes ``covariance_type``, ``tol``,
    ``max_iter`` and ``reg_covar`` of ``options`` and supports neither ``epsilon`` nor the
    Sinkhorn options.

    Convergence warnings (``ConvergenceWarning``, ``SinkhornConvergenceWarning``) are
    returned in :attr:`FitOutcome.caught`; any other warning is re-emitted.
    """
    weights = np.asarray(weights, dtype=float)
    if method == "sklearn":
        model = _sklearn_mixture(weights, means_init, covariances_init, options)
    else:
        model = _estimator(
            method,
            weights,
            options,
            means_init=means_init,
            covariances_init=covariances_init,
            keep_trajectory=keep_trajectory,
        )
    (seconds, caught), _ = _recorded(lambda: model.fit(X))
    return FitOutcome(model, seconds, caught)


def fit_table_method_starts(
    method: str,
    X: np.ndarray,
    *,
    weights,
    means_inits,
    covariances_inits=None,
    options: FitOptions = FitOptions(),
) -> list[FitOutcome]:
    """:func:`fit_table_method` from several starts of the same data, one outcome per start.

    vEM, oEM and sEM fit all starts as one batched computation
    (:func:`sinkhorn_em.fit_many`): each start's iterations and result are those of its own
    fit (to rounding), and small problems share their passes over the data. ``means_inits``
    has shape ``(n_starts, K, d)``; ``covariances_inits`` one covariance set per start, or
    ``None`` for the estimator's covariances around each start's means. Each outcome's
    ``seconds`` is the batch's wall time divided by the number of starts, and its ``caught``
    holds the convergence warnings of the whole batch. ``sklearn`` fits the starts one by one.
    """
    means_inits = np.asarray(means_inits, dtype=float)
    if method == "sklearn":
        return [
            fit_table_method(
                method,
                X,
                weights=weights,
                means_init=means,
                covariances_init=None if covariances_inits is None else covariances_inits[s],
                options=options,
            )
            for s, means in enumerate(means_inits)
        ]
    template = _estimator(method, np.asarray(weights, dtype=float), options)
    (seconds, caught), models = _recorded(lambda: fit_many(template, X, means_inits, covariances_inits))
    return [FitOutcome(model, seconds / len(models), caught) for model in models]


def _estimator(method: str, weights: np.ndarray, options: FitOptions, **start) -> EOTGaussianMixture:
    if method not in ESTIMATOR_METHOD:
        raise ValueError(f"method must be one of {TABLE_METHODS}, got {method!r}.")
    FitOptions.check(options)
    return EOTGaussianMixture(
        n_components=weights.size,
        weights=weights,
        method=ESTIMATOR_METHOD[method],
        track_eot_loss=False,
        random_state=0,
        # The families pair weights with their starts themselves (as drawn or by size, see
        # starts.py): the library must not re-pair them.
        weights_pairing="given",
        **options.keywords(),
        **start,
    )


def _recorded(fit):
    """Run ``fit()``; return ``((wall seconds, convergence warnings), its result)``, other warnings re-emitted."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start = time.perf_counter()
        result = fit()
        seconds = time.perf_counter() - start
    expected = (SinkhornConvergenceWarning, ConvergenceWarning)
    for w in caught:
        if not issubclass(w.category, expected):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return (seconds, tuple(w for w in caught if issubclass(w.category, expected))), result


def _sklearn_mixture(weights, means_init, covariances_init, options: FitOptions):
    from sklearn.mixture import GaussianMixture

    covariance_type = options.covariance_type

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
        tol=options.tol,
        reg_covar=options.reg_covar,
        max_iter=options.max_iter,
        n_init=1,
        # Overridden by the three *_init arguments; random_from_data is the cheapest.
        init_params="random_from_data",
        weights_init=weights,
        means_init=means_init,
        precisions_init=0.5 * (precisions + np.swapaxes(precisions, -1, -2)),
        random_state=0,
    )
