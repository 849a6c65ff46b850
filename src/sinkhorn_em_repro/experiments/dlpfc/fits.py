r"""Spatial domains with known layer proportions: one table row per fit.

Setting
-------
Each sample (a DLPFC slice, K = 7 layers; or the mouse olfactory bulb, K = 5) is embedded
by :mod:`.features` and clustered by a Gaussian mixture with K components, tied or full
covariances, fitted by ``vEM`` (EM, weights fixed at :math:`w`), ``sEM`` (Sinkhorn-EM,
coupling columns fixed to :math:`w`), ``oEM`` (EM re-estimating the weights; :math:`w` only
starts them) and ``sklearn`` (scikit-learn's ``GaussianMixture``, the same algorithm as oEM
from an independent implementation), all through
:func:`sinkhorn_em_repro.fitting.fit_table_method`. ARI and NMI are computed on the
annotated spots only; every spot is fitted.

Weights :math:`w` (:data:`WEIGHT_SETTINGS`)
-------------------------------------------
``oracle``
    the sample's own layer proportions among its annotated spots (not available in practice);
``adjacent``
    the layer proportions of an adjacent slice of the same donor (151673 <-> 151674,
    151675 <-> 151676), what a user could really know before annotating this slice;
``perturbed``
    :math:`(1 - s)\,\alpha + s\,\eta`, :math:`\eta \sim \mathrm{Dirichlet}(K\alpha)`,
    around the oracle :math:`\alpha` (:func:`sinkhorn_em_repro.experiments.osmfish.perturb_weights`);
``uniform``
    :math:`1/K`.

oEM and scikit-learn re-estimate the weights, which only start them: they run only under the
settings listed in ``reestimate_weights`` (:func:`fit_settings`).

Start, and which weight goes to which component
-----------------------------------------------
The weights are a multiset: nothing says which component is "Layer 3". All methods and
weight settings of one seed share one start,
:func:`sinkhorn_em_repro.experiments.osmfish.kmeanspp_init`: k-means++ centres, each spot
joined to its nearest centre, the means and (shrunk) covariances of those initial clusters.
Tied fits start from the size-weighted average :math:`\sum_k (n_k/n)\,\Sigma_k` of those
covariances. The weights are then given to components by rank
(:func:`sinkhorn_em_repro.experiments.osmfish.match_weights_by_rank`): the largest weight to
the largest initial cluster, and so on.

Seeds
-----
Seed index ``j`` of sample ``s`` and feature set ``f`` starts from
``derive_seed(base_seed, "dlpfc", "init", s, f, j)`` and perturbs the weights with
``derive_seed(base_seed, "dlpfc", "perturb", s, f, j)``: neither depends on the method, the
covariance type or the weight setting, so all comparisons are paired.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from sinkhorn_em_repro.experiments.dlpfc.features import FEATURE_SETS, SpotFeatures
from sinkhorn_em_repro.experiments.osmfish import kmeanspp_init, match_weights_by_rank, perturb_weights
from sinkhorn_em_repro.fitting import FitOptions, fit_table_method
from sinkhorn_em_repro.seeding import derive_seed

__all__ = [
    "COVARIANCE_TYPES",
    "METHODS",
    "REESTIMATING",
    "WEIGHT_SETTINGS",
    "SeedStart",
    "fit_settings",
    "run_dlpfc_chunk",
    "score_labels",
    "seed_start",
    "setting_weights",
]

WEIGHT_SETTINGS = ("oracle", "adjacent", "perturbed", "uniform")
COVARIANCE_TYPES = ("tied", "full")
METHODS = ("vEM", "oEM", "sEM", "sklearn")
#: Methods that re-estimate the weights: the weights only start them.
REESTIMATING = ("oEM", "sklearn")


def check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    """ValueError naming ``name`` unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name}={value!r} is not one of {choices}")


def fit_settings(
    feature_sets, covariance_types, weight_settings, methods, reestimate_weights
) -> list[tuple[str, str, str, str]]:
    """Every (features, covariance type, weights, method) to fit, in table order.

    The methods that re-estimate the weights (:data:`REESTIMATING`: oEM and scikit-learn)
    use them only as a start; they run only under the settings in ``reestimate_weights``.
    """
    for value in feature_sets:
        check_choice("features", value, FEATURE_SETS)
    for value in covariance_types:
        check_choice("covariance_type", value, COVARIANCE_TYPES)
    for value in [*weight_settings, *reestimate_weights]:
        check_choice("weights", value, WEIGHT_SETTINGS)
    for value in methods:
        check_choice("method", value, METHODS)
    return [
        (feature_set, covariance, setting, method)
        for feature_set in FEATURE_SETS
        if feature_set in feature_sets
        for covariance in COVARIANCE_TYPES
        if covariance in covariance_types
        for setting in WEIGHT_SETTINGS
        if setting in weight_settings
        for method in METHODS
        if method in methods and (method not in REESTIMATING or setting in reestimate_weights)
    ]


def setting_weights(features: SpotFeatures, setting: str, *, strength: float, rng: np.random.Generator) -> np.ndarray:
    """The weight vector of ``setting`` for ``features`` (see the module docstring).

    Raises
    ------
    ValueError
        ``adjacent`` for a sample without an adjacent slice.
    """
    check_choice("weights", setting, WEIGHT_SETTINGS)
    oracle = features.proportions()
    if setting == "oracle":
        return oracle
    if setting == "adjacent":
        if features.adjacent.size == 0:
            raise ValueError("this sample has no adjacent slice; use the oracle, perturbed or uniform weights")
        return np.asarray(features.adjacent, dtype=float)
    if setting == "perturbed":
        return perturb_weights(oracle, strength, rng)
    return np.full(features.n_classes, 1.0 / features.n_classes)


@dataclass(frozen=True)
class SeedStart:
    """The start shared by every method of one seed.

    ``weights`` are rank-matched to the initial cluster ``sizes``; ``weights_tv`` is the
    total-variation distance between the sorted weights and the sorted oracle proportions.
    """

    seed: int
    means: np.ndarray
    covariances: np.ndarray
    weights: np.ndarray
    sizes: np.ndarray
    weights_tv: float


def seed_start(
    features: SpotFeatures,
    *,
    sample: str,
    feature_set: str,
    covariance_type: str,
    weights: str,
    seed_index: int,
    base_seed: int,
    strength: float,
    reg_covar: float,
) -> SeedStart:
    """Start of seed ``seed_index`` (module docstring): k-means++ clusters, rank-matched weights."""
    check_choice("covariance_type", covariance_type, COVARIANCE_TYPES)
    init_seed = derive_seed(base_seed, "dlpfc", "init", sample, feature_set, seed_index)
    perturb_rng = np.random.default_rng(derive_seed(base_seed, "dlpfc", "perturb", sample, feature_set, seed_index))
    used = setting_weights(features, weights, strength=strength, rng=perturb_rng)
    means, covariances, sizes = kmeanspp_init(
        features.X, features.n_classes, np.random.default_rng(init_seed), reg_covar=reg_covar
    )
    if covariance_type == "tied":
        covariances = np.tensordot(sizes / sizes.sum(), covariances, axes=1)
    oracle = features.proportions()
    return SeedStart(
        seed=init_seed,
        means=means,
        covariances=covariances,
        weights=match_weights_by_rank(used, sizes),
        sizes=sizes,
        weights_tv=float(0.5 * np.abs(np.sort(used) - np.sort(oracle)).sum()),
    )


def score_labels(features: SpotFeatures, labels: np.ndarray) -> tuple[float, float]:
    """ARI and NMI of a clustering against the layers, on the annotated spots only."""
    from sinkhorn_em.metrics import ari, nmi

    mask = features.labelled
    labels = np.asarray(labels)
    return ari(features.layer[mask], labels[mask]), nmi(features.layer[mask], labels[mask])


def fit_from_start(method: str, features: SpotFeatures, start: SeedStart, options: FitOptions):
    """:func:`fit_table_method` of ``method`` on ``features`` from ``start`` with the fit ``options``."""
    return fit_table_method(
        method,
        features.X,
        weights=start.weights,
        means_init=start.means,
        covariances_init=start.covariances,
        options=options,
    )


def run_dlpfc_chunk(
    features: SpotFeatures,
    *,
    sample: str,
    feature_set: str,
    weights: str,
    method: str,
    seed_indices,
    base_seed: int,
    options: FitOptions,
    perturb_strength: float = 0.5,
) -> pd.DataFrame:
    """Fit one method in one setting of one sample for a chunk of seeds; one row per seed.

    ``options`` are the family's fit options (:meth:`FitOptions.from_config` of the config
    section) with the setting's ``covariance_type``, as the fits receive them;
    ``options.reg_covar`` also regularises the start's covariances.

    Returns
    -------
    DataFrame with columns slice (the sample name), features, covariance_type, weights,
    method, seed_index, seed (the derived start seed), n_components, n_features, n_spots,
    n_labelled, ari, nmi (on annotated spots), mean_loglik (average log-likelihood per
    spot of the fitted model: the criterion a user without labels would select seeds by),
    converged, sinkhorn_converged (every balanced E-step of sEM reached ``sinkhorn_tol``),
    n_iter, weights_tv and fit_seconds.
    """
    check_choice("features", feature_set, FEATURE_SETS)
    check_choice("method", method, METHODS)
    covariance_type = options.covariance_type
    check_choice("covariance_type", covariance_type, COVARIANCE_TYPES)
    rows = []
    for seed_index in seed_indices:
        start = seed_start(
            features,
            sample=sample,
            feature_set=feature_set,
            covariance_type=covariance_type,
            weights=weights,
            seed_index=int(seed_index),
            base_seed=base_seed,
            strength=perturb_strength,
            reg_covar=options.reg_covar,
        )
        outcome = fit_from_start(method, features, start, options)
        model = outcome.model
        ari, nmi = score_labels(features, model.predict(features.X))
        rows.append(
            {
                "slice": str(sample),
                "features": feature_set,
                "covariance_type": covariance_type,
                "weights": weights,
                "method": method,
                "seed_index": int(seed_index),
                "seed": start.seed,
                "n_components": features.n_classes,
                "n_features": int(features.X.shape[1]),
                "n_spots": int(features.X.shape[0]),
                "n_labelled": int(features.labelled.sum()),
                "ari": ari,
                "nmi": nmi,
                "mean_loglik": float(model.score(features.X)),
                "converged": bool(model.converged_),
                "sinkhorn_converged": bool(outcome.sinkhorn_converged),
                "n_iter": int(model.n_iter_),
                "weights_tv": start.weights_tv,
                "fit_seconds": outcome.seconds,
            }
        )
    return pd.DataFrame(rows)
