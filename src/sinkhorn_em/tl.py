r"""AnnData entry point, in scanpy's ``tl`` convention (optional extra ``sinkhorn-em[anndata]``).

:func:`gaussian_mixture` clusters the rows (cells, spots) of an :class:`anndata.AnnData` with a
Gaussian mixture :math:`p(x) = \sum_{k=1}^K \alpha_k \mathcal N(x; \mu_k, \Sigma_k)` fitted by
:class:`~sinkhorn_em.EOTGaussianMixture`, and writes the labels to ``adata.obs[key_added]`` and the
fitted parameters to ``adata.uns[key_added]``, as ``scanpy.tl.leiden`` does. It replaces the
``mclust_R(adata, num_cluster, modelNames="EEE", used_obsm=...)`` helper of GraphST, STAGATE,
STAligner and omicverse (R's ``Mclust`` through rpy2): ``covariance_type="tied"`` is mclust's
``EEE`` model (one covariance matrix shared by all components).

anndata is imported only when the function is called, so that ``import sinkhorn_em`` never needs it.
"""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd

from .mixture import EOTGaussianMixture

__all__ = ["gaussian_mixture"]

INSTALL_HINT = "pip install 'sinkhorn-em[anndata]'"
_EXAMPLES = 5


def _require_anndata():
    try:
        import anndata
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            f"sinkhorn_em.tl needs the anndata package, which is not installed; install it with {INSTALL_HINT}"
        ) from error
    return anndata


def _representation(adata, use_rep):
    """The (n_obs, d) float array that is clustered: ``adata.obsm[use_rep]``, or ``adata.X`` when ``use_rep`` is None."""
    if use_rep is None:
        if adata.X is None:
            raise ValueError("use_rep=None clusters adata.X, but adata.X is None; pass use_rep=<a key of adata.obsm>.")
        X, where = adata.X, "adata.X"
    else:
        if use_rep not in adata.obsm:
            keys = sorted(adata.obsm.keys())
            raise KeyError(
                f"use_rep={use_rep!r} is not a key of adata.obsm (keys: {keys}); compute it first "
                "(e.g. sc.pp.pca(adata) for 'X_pca'), pass one of the existing keys, or use_rep=None for adata.X."
            )
        X, where = adata.obsm[use_rep], f"adata.obsm[{use_rep!r}]"
    if hasattr(X, "toarray"):  # scipy.sparse: a Gaussian mixture needs dense rows
        X = X.toarray()
    elif isinstance(X, pd.DataFrame):
        X = X.to_numpy()
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"{where} must be 2-D (n_obs, n_features), got shape {X.shape}.")
    finite = np.all(np.isfinite(X), axis=1)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        names = [str(adata.obs_names[i]) for i in bad[:_EXAMPLES]]
        raise ValueError(
            f"{where} has {bad.size} row(s) with NaN or inf, e.g. {names}; drop them "
            "(adata = adata[np.isfinite(X).all(axis=1)].copy()) or impute them before clustering."
        )
    return X, where


def _weights(weights, n_components):
    if weights is None:
        return None
    if isinstance(weights, dict):
        raise TypeError(
            "weights must be an array of K proportions in component order, got a mapping; the components of a "
            "mixture have no names: pass e.g. np.asarray(list(proportions.values()))."
        )
    w = np.asarray(weights, dtype=float)
    if w.ndim != 1 or w.size != n_components:
        raise ValueError(
            f"weights has {w.size} proportion(s) (shape {w.shape}) but n_components={n_components}; pass one "
            "proportion per component, or set n_components to the number of proportions."
        )
    return w


def _writable(value):
    """``value`` as h5ad can store it in ``uns`` (no None; numpy scalars become Python scalars)."""
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, str):
        return value
    if isinstance(value, np.ndarray | list | tuple):
        return np.asarray(value)
    return None


def gaussian_mixture(
    adata,
    n_components: int,
    *,
    use_rep: str | None = "X_pca",
    weights=None,
    method: str | None = None,
    covariance_type: str = "tied",
    init: str = "kmeans",
    n_init: int = 1,
    random_state: int | None = 0,
    key_added: str = "mixture",
    copy: bool = False,
    **estimator_kwargs,
):
    r"""Cluster observations with a Gaussian mixture; labels to ``obs[key_added]``, fit to ``uns[key_added]``.

    The mixture :math:`\sum_k \alpha_k \mathcal N(\mu_k, \Sigma_k)` is fitted to the rows
    :math:`x_i` of ``adata.obsm[use_rep]`` by :class:`~sinkhorn_em.EOTGaussianMixture`, and
    observation :math:`i` gets the label :math:`\arg\max_k \alpha_k \mathcal N(x_i; \mu_k, \Sigma_k)`
    (the estimator's ``predict``). Three fits, by ``weights`` and ``method``:

    * ``weights=None`` (default): free weights, EM re-estimating :math:`\alpha` at every M-step
      (``method="oem"``), the maximum-likelihood fit that mclust computes;
    * ``weights=`` known proportions: Sinkhorn-EM (``method="sinkhorn"``), which keeps
      :math:`\alpha` fixed and minimises the entropic optimal transport loss, whose minimisers
      give every component its known share of the data;
    * ``method="em"``: EM with :math:`\alpha` fixed (``weights``, or uniform when ``None``).

    Parameters
    ----------
    adata : anndata.AnnData
    n_components : int
        Number of clusters ``K`` (mclust's ``G``, ``num_cluster`` of ``mclust_R``).
    use_rep : str or None, default="X_pca"
        Key of ``adata.obsm`` holding the representation to cluster (e.g. ``"X_pca"``,
        ``"emb_pca"``, ``"STAGATE"``); ``None`` clusters ``adata.X`` (densified if sparse).
    weights : array-like of shape (K,), default=None
        Known proportions :math:`\alpha` (positive, summing to 1), in component order.
    method : {"oem", "sinkhorn", "em"} or None, default=None
        ``None``: ``"oem"`` without ``weights``, ``"sinkhorn"`` with them.
    covariance_type : {"tied", "full", "diag", "spherical"}, default="tied"
        ``"tied"`` is mclust's ``EEE``, the model ``mclust_R`` fits; ``"full"`` is ``VVV``.
    init : str, default="kmeans"
        Start of the means (see :class:`~sinkhorn_em.EOTGaussianMixture`).
    n_init : int, default=1
        Number of starts; the one with the lowest final objective is kept.
    random_state : int or None, default=0
        Seed of the start; the default makes repeated calls give the same labels.
    key_added : str, default="mixture"
        Name of the ``obs`` column and the ``uns`` entry written.
    copy : bool, default=False
        Work on a copy of ``adata`` and return it, leaving ``adata`` unchanged.
    **estimator_kwargs
        Further parameters of :class:`~sinkhorn_em.EOTGaussianMixture` (``tol``, ``max_iter``,
        ``reg_covar``, ``epsilon``, ...).

    Returns
    -------
    anndata.AnnData or None
        The copy when ``copy=True``, else None (``obs[key_added]`` and ``uns[key_added]`` are
        overwritten if present). Written:

        ``obs[key_added]``
            Categorical labels ``"0"``, ..., ``"K-1"`` (component index; every component is a
            category, empty or not).
        ``uns[key_added]``
            ``{"params": {...}, "weights", "means", "covariances", "converged", "n_iter",
            "objective"}``: the settings (``use_rep``, ``method``, ``covariance_type``, ``init``, ...,
            every estimator parameter that is not None) and the fitted parameters in the
            estimator's layout (``covariances`` of shape (d, d) for ``"tied"``); ``objective`` is
            the estimator's ``lower_bound_`` (NLL for oem/em, EOT loss for sinkhorn, a loss to
            minimise). Every value can be written by ``adata.write_h5ad``.

    Raises
    ------
    KeyError
        ``use_rep`` is not a key of ``adata.obsm``.
    TypeError
        ``adata`` is not an AnnData, or ``weights`` is a dict (components have no names).
    ValueError
        A row with NaN or inf, a number of proportions other than ``n_components``, or a setting
        the estimator refuses. Nothing is written to ``adata`` when an error is raised.

    Examples
    --------
    >>> from sinkhorn_em.tl import gaussian_mixture
    >>> gaussian_mixture(adata, 7, use_rep="emb_pca", key_added="mclust")  # doctest: +SKIP
    """
    anndata = _require_anndata()
    if not isinstance(adata, anndata.AnnData):
        raise TypeError(f"adata must be an anndata.AnnData, got {type(adata).__name__}.")
    if not isinstance(key_added, str) or not key_added:
        raise ValueError(f"key_added must be a non-empty string, got {key_added!r}.")
    if not isinstance(n_components, numbers.Integral) or isinstance(n_components, bool) or n_components < 1:
        raise ValueError(f"n_components must be a positive integer, got {n_components!r}.")
    alpha = _weights(weights, int(n_components))
    if method is None:
        method = "oem" if alpha is None else "sinkhorn"
    X, _ = _representation(adata, use_rep)
    estimator = EOTGaussianMixture(
        int(n_components),
        weights=alpha,
        method=method,
        covariance_type=covariance_type,
        init=init,
        n_init=n_init,
        random_state=random_state,
        **estimator_kwargs,
    )
    labels = estimator.fit_predict(X)

    # Everything that can fail has run: only now is adata (or its copy) touched.
    target = adata.copy() if copy else adata
    categories = [str(k) for k in range(estimator.n_components)]
    target.obs[key_added] = pd.Categorical.from_codes(labels, categories=categories)
    params = {"use_rep": "X" if use_rep is None else use_rep, "n_obs": int(X.shape[0]), "n_features": int(X.shape[1])}
    for name, value in estimator.get_params().items():
        stored = _writable(value)
        if stored is not None:
            params[name] = stored
    target.uns[key_added] = {
        "params": params,
        "weights": estimator.weights_,
        "means": estimator.means_,
        "covariances": estimator.covariances_,
        "converged": bool(estimator.converged_),
        "n_iter": int(estimator.n_iter_),
        "objective": float(estimator.lower_bound_),
    }
    return target if copy else None
