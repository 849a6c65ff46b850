r"""Fits of the osmFISH family: one method on a chunk of seeds, the best seeds' maps, the oEM / scikit-learn cross-check."""

from __future__ import annotations

import numpy as np
import pandas as pd

from sinkhorn_em_repro._checks import _check_choice
from sinkhorn_em_repro.datasets.osmfish import OsmFISHFeatures
from sinkhorn_em_repro.experiments.osmfish.plan import FEATURE_SETS, METHODS, TARGETS, WEIGHT_SETTINGS
from sinkhorn_em_repro.experiments.osmfish.start import seed_start
from sinkhorn_em_repro.fitting import FitOptions, fit_table_method

__all__ = ["best_seed_maps", "crosscheck_oem_sklearn", "match_labels", "run_osmfish_chunk"]


def _fit_seed(
    features, target, feature_set, weights, method, seed_index, *, base_seed, perturb_strength, options: FitOptions
):
    """Start of seed ``seed_index`` (:func:`seed_start`) and ``method`` fitted from it.

    Returns ``(start, outcome)``: the tuple of :func:`seed_start` and the
    :class:`~sinkhorn_em_repro.fitting.FitOutcome`.
    """
    start = seed_start(
        features,
        target,
        feature_set,
        weights,
        int(seed_index),
        base_seed=base_seed,
        strength=perturb_strength,
        reg_covar=options.reg_covar,
    )
    _, _, means, covariances, used, _ = start
    outcome = fit_table_method(
        method, features.X, weights=used, means_init=means, covariances_init=covariances, options=options
    )
    return start, outcome


def run_osmfish_chunk(
    features: OsmFISHFeatures,
    *,
    target: str,
    feature_set: str,
    weights: str,
    method: str,
    seed_indices,
    base_seed: int,
    options: FitOptions,
    perturb_strength: float = 0.5,
) -> pd.DataFrame:
    """Fit one method on one setting for a chunk of seeds; one row per seed.

    Parameters
    ----------
    features : OsmFISHFeatures
        Cells of the feature set named ``feature_set`` (the name is recorded and
        enters the seeds; the data come from ``features``).
    target : {"region", "celltype"}
        Ground truth; :math:`K` is its number of classes and :math:`\\alpha` its proportions.
    weights : {"true", "perturbed", "uniform"}
    method : {"vEM", "oEM", "sEM", "sklearn"}
    seed_indices : iterable of int
        Seed indices of this chunk (see the module docstring for the derived seeds).
    options : FitOptions
        The family's fit options (its config section, :meth:`FitOptions.from_config`), as the
        fits receive them; ``options.reg_covar`` also regularises the start's covariances.

    Returns
    -------
    DataFrame with columns target, features, weights, method, seed_index, seed,
    n_components, n_features, ari, nmi, mean_loglik (average log-likelihood per cell under the
    fitted model, the selection criterion across seeds), converged (outer loop reached
    ``tol`` within ``max_iter``), sinkhorn_converged (every inner Sinkhorn solve of sEM
    reached ``sinkhorn_tol``; always true for the other methods), n_iter,
    weights_tv (total-variation distance between the sorted used weights and the
    sorted true proportions) and fit_seconds.
    """
    from sinkhorn_em.metrics import ari, nmi

    _check_choice("target", target, TARGETS)
    _check_choice("features", feature_set, FEATURE_SETS)
    _check_choice("weights", weights, WEIGHT_SETTINGS)
    _check_choice("method", method, METHODS)
    rows = []
    for seed_index in seed_indices:
        start, outcome = _fit_seed(
            features,
            target,
            feature_set,
            weights,
            method,
            seed_index,
            base_seed=base_seed,
            perturb_strength=perturb_strength,
            options=options,
        )
        truth, init_seed, _, _, used, total_variation = start
        model, sinkhorn_converged, elapsed = outcome.model, outcome.sinkhorn_converged, outcome.seconds
        labels = model.predict(features.X)
        rows.append(
            {
                "target": target,
                "features": feature_set,
                "weights": weights,
                "method": method,
                "seed_index": int(seed_index),
                "seed": init_seed,
                "n_components": len(used),
                "n_features": int(features.X.shape[1]),
                "ari": ari(truth, labels),
                "nmi": nmi(truth, labels),
                "mean_loglik": float(model.score(features.X)),
                "converged": bool(model.converged_),
                "sinkhorn_converged": bool(sinkhorn_converged),
                "n_iter": int(model.n_iter_),
                "weights_tv": total_variation,
                "fit_seconds": elapsed,
            }
        )
    return pd.DataFrame(rows)


def match_labels(truth: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Relabel clusters onto truth classes by maximum overlap (Hungarian on the contingency table).

    Returns the predicted labels expressed as truth class codes, so that a cluster and
    the class it covers best share a colour in maps.
    """
    from scipy.optimize import linear_sum_assignment

    contingency = np.zeros((n_classes, n_classes))
    np.add.at(contingency, (np.asarray(labels), np.asarray(truth)), 1.0)
    cluster, cls = linear_sum_assignment(contingency, maximize=True)
    mapping = np.empty(n_classes, dtype=np.int64)
    mapping[cluster] = cls
    return mapping[np.asarray(labels)]


def best_seed_maps(
    features_by_set: dict[str, OsmFISHFeatures],
    per_seed: pd.DataFrame,
    *,
    target: str = "region",
    weights: str = "true",
    base_seed: int,
    options: FitOptions,
    perturb_strength: float = 0.5,
) -> pd.DataFrame:
    """Cell labels of each method's highest-likelihood seed, for maps.

    For every feature set in ``features_by_set`` and every method present in
    ``per_seed`` (restricted to ``target`` and ``weights``), the seed with the largest
    ``mean_loglik`` is refitted (fits are deterministic given the seed) and its clusters
    are renamed after the truth class they overlap most (:func:`match_labels`). The
    refit must reproduce the recorded log-likelihood; otherwise ValueError.

    Returns
    -------
    Wide DataFrame, one row per (features, cell): features, cell, x, y, truth, then one
    column per method holding the matched class name, plus ``<method>_seed_index`` and
    ``<method>_ari`` (constant per features) for titles.
    """
    from sinkhorn_em.metrics import ari

    frames = []
    for feature_set, features in features_by_set.items():
        truth, names = features.labels(target)
        frame = pd.DataFrame(
            {
                "features": feature_set,
                "cell": np.arange(len(truth)),
                "x": features.x,
                "y": features.y,
                "truth": names[truth],
            }
        )
        rows = per_seed[
            (per_seed["target"] == target) & (per_seed["features"] == feature_set) & (per_seed["weights"] == weights)
        ]
        for method in [m for m in METHODS if m in set(rows["method"])]:
            best = (
                rows[rows["method"] == method]
                .sort_values(["mean_loglik", "seed_index"], ascending=[False, True])
                .iloc[0]
            )
            _, outcome = _fit_seed(
                features,
                target,
                feature_set,
                weights,
                method,
                best["seed_index"],
                base_seed=base_seed,
                perturb_strength=perturb_strength,
                options=options,
            )
            model = outcome.model
            refit_loglik = float(model.score(features.X))
            if not np.isclose(refit_loglik, best["mean_loglik"], rtol=1e-7, atol=1e-7):
                raise ValueError(
                    f"refit of {method} seed {int(best['seed_index'])} ({feature_set}) gives mean log-likelihood "
                    f"{refit_loglik} instead of the recorded {best['mean_loglik']}: the per-seed table was made "
                    "with another configuration; rerun the osmFISH fit jobs"
                )
            labels = model.predict(features.X)
            frame[method] = names[match_labels(truth, labels, len(names))]
            frame[f"{method}_seed_index"] = int(best["seed_index"])
            frame[f"{method}_ari"] = ari(truth, labels)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def crosscheck_oem_sklearn(
    features: OsmFISHFeatures,
    *,
    target: str = "region",
    feature_set: str = "expr",
    n_seeds: int = 3,
    n_iter: int = 20,
    base_seed: int,
    reg_covar: float = 1e-6,
) -> pd.DataFrame:
    """oEM against scikit-learn's GaussianMixture from the same initial parameters.

    Both run exactly ``n_iter`` EM iterations (``tol=0``) from the initialisation of
    seed indices ``0..n_seeds-1`` with the true proportions as initial weights. They
    implement the same algorithm, so their parameters must agree to rounding.

    Returns
    -------
    DataFrame, one row per seed: target, features, seed_index, n_iter,
    max_abs_mean_diff, max_abs_covariance_diff, max_abs_weight_diff,
    loglik_diff (ours minus scikit-learn's mean log-likelihood), label_agreement
    (fraction of cells with the same predicted component; components are not permuted
    since both start from the same ordered parameters).
    """
    rows = []
    for seed_index in range(n_seeds):
        _, _, means, covariances, used, _ = seed_start(
            features,
            target,
            feature_set,
            "true",
            seed_index,
            base_seed=base_seed,
            strength=0.0,
            reg_covar=reg_covar,
        )
        fitted = {
            method: fit_table_method(
                method,
                features.X,
                weights=used,
                means_init=means,
                covariances_init=covariances,
                options=FitOptions(tol=0.0, max_iter=n_iter, reg_covar=reg_covar),
            ).model
            for method in ("oEM", "sklearn")
        }
        ours, theirs = fitted["oEM"], fitted["sklearn"]
        rows.append(
            {
                "target": target,
                "features": feature_set,
                "seed_index": seed_index,
                "n_iter": n_iter,
                "max_abs_mean_diff": float(np.abs(ours.means_ - theirs.means_).max()),
                "max_abs_covariance_diff": float(np.abs(ours.covariances_ - theirs.covariances_).max()),
                "max_abs_weight_diff": float(np.abs(ours.weights_ - theirs.weights_).max()),
                "loglik_diff": float(ours.score(features.X) - theirs.score(features.X)),
                "label_agreement": float(np.mean(ours.predict(features.X) == theirs.predict(features.X))),
            }
        )
    return pd.DataFrame(rows)
