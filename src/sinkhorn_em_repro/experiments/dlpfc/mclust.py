r"""R's mclust (model "EEE": tied full covariance) as a baseline beside our tied fits.

Spatial-domain pipelines often end with ``Mclust(embedding, G = K, modelNames = "EEE")``
in R. The rule ``dlpfc_mclust`` runs ``workflow/scripts/dlpfc_mclust.R`` on the very
features our methods cluster, in two ways:

``mclust``
    ``mclust::em(modelName = "EEE")`` from *our* start of each seed (the rank-matched
    weights of the weight setting, the k-means++ means and the tied start covariance of
    :func:`.fits.seed_start`): EM re-estimating the weights, like oEM and scikit-learn
    from the same start, but R's implementation and stopping rule (relative change of the
    log-likelihood below ``tol``);
``mclust_hc``
    ``Mclust(X, G = K, modelNames = "EEE")`` as the field calls it: mclust's own start
    (model-based hierarchical agglomeration, ``hcModelName`` = ``dlpfc: hc: model``), no
    weights (table weights ``none``, start ``hc``), one fit per sample (seed index 0). The
    tree is built as our hc start's is (``dlpfc: hc: subset``): null = every spot
    (``initialization = list(subset = seq_len(n))``, deterministic, the partition ours
    reproduces); an integer = mclust's own random subset of that size (``set.seed`` of the
    config seed, so reruns agree; R's draw is not ours).

:func:`mclust_inputs` writes what the R script reads (CSV only: base R reads it), and
:func:`score_mclust` turns its outputs into rows of the per-seed table, recomputing the
log-likelihood of mclust's fitted parameters in Python (:func:`eee_mean_loglik`), which
must equal the one R reports.
"""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd

from sinkhorn_em_repro.experiments.dlpfc.features import SpotFeatures
from sinkhorn_em_repro.experiments.dlpfc.fits import score_labels, seed_start
from sinkhorn_em_repro.seeding import derive_seed

__all__ = [
    "INSTALL_R_HINT",
    "eee_mean_loglik",
    "mclust_inputs",
    "require_rscript",
    "score_mclust",
]

INSTALL_R_HINT = (
    "R's mclust baseline is switched on (dlpfc: mclust: enabled: true) but `{rscript}` was not found on PATH. "
    "Install R and mclust (Debian/Ubuntu: `apt-get install r-base-core r-cran-mclust`), or run snakemake with "
    "`--sdm conda` (envs/mclust.yaml provides them), or switch the baseline off with "
    "`--config 'dlpfc={{mclust: {{enabled: false}}}}'`."
)


def require_rscript(rscript: str = "Rscript") -> str:
    """The path of ``rscript``; RuntimeError saying how to install R when it is missing."""
    found = shutil.which(rscript)
    if found is None:
        raise RuntimeError(INSTALL_R_HINT.format(rscript=rscript))
    return found


def mclust_inputs(
    features: SpotFeatures,
    *,
    sample: str,
    feature_set: str,
    weights: str,
    seed_indices,
    base_seed: int,
    perturb_strength: float = 0.5,
    reg_covar: float = 1e-6,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The three CSV tables the R script reads.

    Returns
    -------
    data : DataFrame (n_spots x d), columns f1..fd
        The features.
    starts : DataFrame, one row per (seed, component)
        seed_index, seed, component, weight, m1..md: rank-matched weights and means.
    sigmas : DataFrame, one row per (seed, row of the tied covariance)
        seed_index, row, s1..sd.
    """
    d = features.X.shape[1]
    data = pd.DataFrame(features.X, columns=[f"f{j + 1}" for j in range(d)])
    starts, sigmas = [], []
    for seed_index in seed_indices:
        start = seed_start(
            features,
            sample=sample,
            feature_set=feature_set,
            covariance_type="tied",
            weights=weights,
            seed_index=int(seed_index),
            base_seed=base_seed,
            strength=perturb_strength,
            reg_covar=reg_covar,
        )
        block = pd.DataFrame(start.means, columns=[f"m{j + 1}" for j in range(d)])
        block.insert(0, "weight", start.weights)
        block.insert(0, "component", np.arange(1, features.n_classes + 1))
        block.insert(0, "seed", start.seed)
        block.insert(0, "seed_index", int(seed_index))
        starts.append(block)
        sigma = pd.DataFrame(start.covariances, columns=[f"s{j + 1}" for j in range(d)])
        sigma.insert(0, "row", np.arange(1, d + 1))
        sigma.insert(0, "seed_index", int(seed_index))
        sigmas.append(sigma)
    return data, pd.concat(starts, ignore_index=True), pd.concat(sigmas, ignore_index=True)


def eee_mean_loglik(X: np.ndarray, weights: np.ndarray, means: np.ndarray, sigma: np.ndarray) -> float:
    r"""Average log-likelihood :math:`n^{-1} \sum_i \log \sum_k \pi_k N(x_i; \mu_k, \Sigma)` of a tied mixture.

    Computed by scikit-learn's ``GaussianMixture.score`` with the parameters set directly,
    an implementation independent of both R and :mod:`sinkhorn_em`.
    """
    from sklearn.mixture import GaussianMixture

    model = GaussianMixture(n_components=len(weights), covariance_type="tied")
    model.weights_ = np.asarray(weights, dtype=float)
    model.means_ = np.asarray(means, dtype=float)
    model.covariances_ = np.asarray(sigma, dtype=float)
    # scikit-learn's tied precisions_cholesky_ is the upper factor U with U U^T = Sigma^{-1}.
    model.precisions_cholesky_ = np.linalg.inv(np.linalg.cholesky(model.covariances_)).T
    return float(model.score(np.asarray(X, dtype=float)))


def score_mclust(
    features: SpotFeatures,
    fits: pd.DataFrame,
    labels: pd.DataFrame,
    parameters: pd.DataFrame,
    sigmas: pd.DataFrame,
    *,
    sample: str,
    feature_set: str,
    base_seed: int,
) -> pd.DataFrame:
    """Per-seed rows (columns of :func:`.fits.run_dlpfc_chunk`) of the R script's outputs.

    Parameters
    ----------
    fits : DataFrame
        One row per fit: method, weights, seed_index, loglik (R's total), n_iter,
        converged, fit_seconds.
    labels : DataFrame
        One column per fit named ``<method>_<seed_index>``: the classification (1..K).
    parameters : DataFrame
        method, seed_index, component, weight, m1..md: the fitted weights and means.
    sigmas : DataFrame
        method, seed_index, row, s1..sd: the fitted tied covariance.

    Returns
    -------
    DataFrame; ``seed`` is our start seed for ``mclust`` and -1 for ``mclust_hc`` (its
    start is deterministic). The extra column ``r_mean_loglik`` is R's log-likelihood
    divided by the number of spots; ``mean_loglik`` is :func:`eee_mean_loglik` at R's
    fitted parameters. A fit R could not finish (singular covariance) has NaN scores and
    ``converged`` False.
    """
    n, d = features.X.shape
    rows = []
    for fit in fits.itertuples(index=False):
        key = (parameters["method"] == fit.method) & (parameters["seed_index"] == fit.seed_index)
        params = parameters[key].sort_values("component")
        sigma = sigmas[(sigmas["method"] == fit.method) & (sigmas["seed_index"] == fit.seed_index)].sort_values("row")
        column = f"{fit.method}_{int(fit.seed_index)}"
        ok = (
            bool(np.isfinite(fit.loglik))
            and column in labels.columns
            and len(params) == features.n_classes
            and len(sigma) == d
        )
        ari = nmi = mean_loglik = np.nan
        if ok:
            ari, nmi = score_labels(features, labels[column].to_numpy(dtype=np.int64) - 1)
            mean_loglik = eee_mean_loglik(
                features.X,
                params["weight"].to_numpy(),
                params[[f"m{j + 1}" for j in range(d)]].to_numpy(),
                sigma[[f"s{j + 1}" for j in range(d)]].to_numpy(),
            )
        seed = derive_seed(base_seed, "dlpfc", "init", sample, feature_set, int(fit.seed_index))
        rows.append(
            {
                "slice": str(sample),
                "features": feature_set,
                "covariance_type": "tied",
                "weights": fit.weights,
                "method": fit.method,
                "start": "hc" if fit.method == "mclust_hc" else "kmeans++",
                "seed_index": int(fit.seed_index),
                "seed": seed if fit.method == "mclust" else -1,
                "n_components": features.n_classes,
                "n_features": d,
                "n_spots": n,
                "n_labelled": int(features.labelled.sum()),
                "ari": ari,
                "nmi": nmi,
                "mean_loglik": mean_loglik,
                "converged": bool(fit.converged) and ok,
                "sinkhorn_converged": True,
                "n_iter": int(fit.n_iter),
                "weights_tv": np.nan,
                "fit_seconds": float(fit.fit_seconds),
                "r_mean_loglik": float(fit.loglik) / n,
            }
        )
    return pd.DataFrame(rows)
