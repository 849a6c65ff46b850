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

Starts (:data:`STARTS`, config ``dlpfc: starts``)
-------------------------------------------------
``kmeans++``
    the seeded start above (``n_seeds`` fits per setting);
``hc``
    R mclust's start (``Mclust``'s default): the partition of mclust's model-based
    agglomerative clustering ``hclass(hc(X, modelName = hc_model, use = "SVD"), K)``
    (:func:`sinkhorn_em._hc.hierarchical_partition`, equal to R's on the DLPFC features), then
    the M-step of the fitted covariance type on that hard partition (means, per-cluster or
    pooled covariances plus ``reg_covar``), weights rank-matched to the cluster sizes as above.
    With ``hc_subset`` null the tree is built on every spot: the start is deterministic, one
    fit per setting (seed index 0, ``seed`` -1). With an integer ``hc_subset`` smaller than the
    sample, seed index ``j`` builds the tree on ``hc_subset`` spots drawn with
    ``derive_seed(base_seed, "dlpfc", "hc", s, f, j)`` and assigns the rest by one E-step, as
    ``Mclust`` does above ``mclust.options("subset")`` = 2000 spots (``n_seeds`` fits).
    oEM and scikit-learn start from the same means, covariances and rank-matched weights.

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
    "STARTS",
    "WEIGHT_SETTINGS",
    "SeedStart",
    "fit_settings",
    "hc_partitions",
    "hc_seed_indices",
    "hc_start",
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
#: Starts of the fits (module docstring), in table order.
STARTS = ("kmeans++", "hc")


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


def hc_seed_indices(n_seeds: int, hc_subset: int | None) -> list[int]:
    """Seed indices fitted from the hc start: ``[0]`` when the tree uses every spot (deterministic), else all."""
    return [0] if hc_subset is None else list(range(n_seeds))


def hc_partitions(
    features: SpotFeatures,
    *,
    sample: str,
    feature_set: str,
    seed_indices,
    base_seed: int,
    hc_model: str = "VVV",
    hc_subset: int | None = None,
) -> pd.DataFrame:
    """The hc partition of each seed (module docstring): long table seed_index, seed, spot, label.

    ``seed`` is -1 when the tree uses every spot (no draw), else the seed of the subset draw.
    """
    from sinkhorn_em._hc import hierarchical_partition

    frames = []
    for seed_index in seed_indices:
        seed = -1 if hc_subset is None else derive_seed(base_seed, "dlpfc", "hc", sample, feature_set, int(seed_index))
        labels = hierarchical_partition(
            features.X,
            features.n_classes,
            model=hc_model,
            subset=hc_subset,
            random_state=None if seed < 0 else np.random.RandomState(seed % 2**32),
        )
        frames.append(
            pd.DataFrame({"seed_index": int(seed_index), "seed": seed, "spot": np.arange(labels.size), "label": labels})
        )
    return pd.concat(frames, ignore_index=True)


def hc_start(
    features: SpotFeatures,
    partitions: pd.DataFrame,
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
    """The hc start of seed ``seed_index`` from its partition (:func:`hc_partitions`): M-step, rank-matched weights."""
    from sinkhorn_em.gaussian import estimate_gaussian_parameters

    check_choice("covariance_type", covariance_type, COVARIANCE_TYPES)
    rows = partitions[partitions["seed_index"] == seed_index].sort_values("spot")
    labels = rows["label"].to_numpy(dtype=np.int64)
    if labels.size != features.X.shape[0]:
        raise ValueError(
            f"the hc partition of seed {seed_index} has {labels.size} spots, the features {features.X.shape[0]}: "
            "it was made from other features; rerun the dlpfc_hc_start job"
        )
    K = features.n_classes
    resp = np.zeros((labels.size, K))
    resp[np.arange(labels.size), labels] = 1.0
    _, means, covariances = estimate_gaussian_parameters(features.X, resp, reg_covar, covariance_type)
    sizes = np.bincount(labels, minlength=K)
    # The weight perturbation of seed j is the k-means++ start's: weights paired across starts.
    perturb_rng = np.random.default_rng(derive_seed(base_seed, "dlpfc", "perturb", sample, feature_set, seed_index))
    used = setting_weights(features, weights, strength=strength, rng=perturb_rng)
    oracle = features.proportions()
    return SeedStart(
        seed=int(rows["seed"].iloc[0]),
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
    starts=("kmeans++",),
    hc_partitions: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Fit one method in one setting of one sample for a chunk of seeds; one row per seed and start.

    ``starts`` (:data:`STARTS`): ``kmeans++`` fits every seed of ``seed_indices``; ``hc``
    fits those of them that have a partition in ``hc_partitions`` (:func:`hc_partitions`).

    ``options`` are the family's fit options (:meth:`FitOptions.from_config` of the config
    section) with the setting's ``covariance_type``, as the fits receive them;
    ``options.reg_covar`` also regularises the start's covariances.

    Returns
    -------
    DataFrame with columns slice (the sample name), features, covariance_type, weights,
    method, start, seed_index, seed (the derived start seed; -1 for a deterministic start), n_components, n_features, n_spots,
    n_labelled, ari, nmi (on annotated spots), mean_loglik (average log-likelihood per
    spot of the fitted model: the criterion a user without labels would select seeds by),
    converged, sinkhorn_converged (every balanced E-step of sEM reached ``sinkhorn_tol``),
    n_iter, weights_tv and fit_seconds.
    """
    check_choice("features", feature_set, FEATURE_SETS)
    check_choice("method", method, METHODS)
    covariance_type = options.covariance_type
    check_choice("covariance_type", covariance_type, COVARIANCE_TYPES)
    for value in starts:
        check_choice("start", value, STARTS)
    if "hc" in starts and hc_partitions is None:
        raise ValueError("the hc start needs hc_partitions (the output of the dlpfc_hc_start job)")
    common = dict(
        sample=sample,
        feature_set=feature_set,
        covariance_type=covariance_type,
        weights=weights,
        base_seed=base_seed,
        strength=perturb_strength,
        reg_covar=options.reg_covar,
    )
    jobs = []
    for start_name in [value for value in STARTS if value in starts]:
        for seed_index in seed_indices:
            if start_name == "kmeans++":
                jobs.append((start_name, int(seed_index), lambda j: seed_start(features, seed_index=j, **common)))
            elif int(seed_index) in set(hc_partitions["seed_index"]):
                jobs.append(
                    (start_name, int(seed_index), lambda j: hc_start(features, hc_partitions, seed_index=j, **common))
                )
    rows = []
    for start_name, seed_index, make_start in jobs:
        start = make_start(seed_index)
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
                "start": start_name,
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
