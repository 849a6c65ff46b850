"""sinkhorn_em.tl.gaussian_mixture: the AnnData entry point, checked against the estimator it wraps.

The reference is :class:`sinkhorn_em.EOTGaussianMixture` fitted directly to the same array with the
same settings: the entry point must give its labels, write its parameters, use the known
proportions, and write nothing when it refuses its input. The real case is DLPFC slice 151673
(3,639 Visium spots, 7 annotated layers) as an AnnData with its first 15 principal components in
``obsm["X_pca"]``, the layout that GraphST/STAGATE hand to ``mclust_R``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

anndata = pytest.importorskip(
    "anndata", reason="the anndata extra is not installed (pip install 'sinkhorn-em[anndata]')"
)

import sinkhorn_em  # noqa: E402
from sinkhorn_em import EOTGaussianMixture, ari  # noqa: E402
from sinkhorn_em.tl import gaussian_mixture  # noqa: E402

DLPFC_DIR = "spatial/dlpfc"
COUNTS = f"{DLPFC_DIR}/dlpfc151673.rda"
POSITIONS = f"{DLPFC_DIR}/positions/151673_tissue_positions_list.txt"
LAYER_MAP = f"{DLPFC_DIR}/barcode_level_layer_map.tsv"
K = 7


@pytest.fixture(scope="module")
def dlpfc_adata(mirror_dir):
    """Slice 151673 as AnnData: raw counts in X (sparse), 15 PCs in obsm['X_pca'], layers in obs."""
    if mirror_dir is None or not (mirror_dir / COUNTS).is_file():
        pytest.skip(f"the DLPFC files are not in the dataset mirror ({COUNTS}); set SINKHORN_EM_MIRROR")
    from sinkhorn_em_repro.datasets.dlpfc import DLPFC_LAYERS, layer_proportions, load_dlpfc_slice, read_layer_map
    from sinkhorn_em_repro.experiments.dlpfc.features import principal_components

    layer_map = read_layer_map(mirror_dir / LAYER_MAP)
    sample = load_dlpfc_slice(mirror_dir / COUNTS, mirror_dir / POSITIONS, layer_map, "151673")
    adata = anndata.AnnData(
        X=sp.csr_matrix(sample.counts),
        obs=pd.DataFrame({"layer": pd.Categorical(sample.layer)}, index=pd.Index(sample.barcodes, dtype=str)),
        var=pd.DataFrame(index=pd.Index(sample.genes, dtype=str)),
    )
    adata.obsm["X_pca"] = principal_components(sample.counts, 15)
    adata.uns["layer_proportions"] = layer_proportions(layer_map, "151673", DLPFC_LAYERS)
    return adata


def blobs_adata(n=120, seed=0):
    rng = np.random.default_rng(seed)
    X = np.repeat(6.0 * np.eye(3), n // 3, axis=0) + rng.normal(size=(n, 3))
    adata = anndata.AnnData(X=X, obs=pd.DataFrame(index=[f"cell{i}" for i in range(n)]))
    adata.obsm["X_pca"] = X.copy()
    return adata


def snapshot(adata):
    return list(adata.obs.columns), sorted(adata.uns.keys()), adata.obs.copy()


# ----------------------------------------------------------------------------- the real slice
def test_free_weight_labels_equal_the_estimator_fitted_directly(dlpfc_adata):
    adata = dlpfc_adata.copy()
    assert gaussian_mixture(adata, K, use_rep="X_pca", key_added="mclust") is None
    reference = EOTGaussianMixture(K, method="oem", covariance_type="tied", init="kmeans", random_state=0)
    expected = reference.fit_predict(adata.obsm["X_pca"])
    labels = adata.obs["mclust"]
    assert isinstance(labels.dtype, pd.CategoricalDtype)
    assert list(labels.cat.categories) == [str(k) for k in range(K)]
    np.testing.assert_array_equal(labels.cat.codes.to_numpy(), expected)
    fit = adata.uns["mclust"]
    np.testing.assert_allclose(fit["means"], reference.means_)
    np.testing.assert_allclose(fit["covariances"], reference.covariances_)
    np.testing.assert_allclose(fit["weights"], reference.weights_)
    assert fit["covariances"].shape == (15, 15)  # tied = mclust's EEE: one shared matrix
    assert fit["params"]["method"] == "oem" and fit["params"]["use_rep"] == "X_pca"
    assert fit["objective"] == pytest.approx(reference.lower_bound_)


def test_known_proportions_give_sinkhorn_em_with_those_weights(dlpfc_adata):
    adata = dlpfc_adata.copy()
    proportions = adata.uns["layer_proportions"]
    gaussian_mixture(adata, K, weights=proportions, key_added="sem")
    reference = EOTGaussianMixture(K, weights=proportions, method="sinkhorn", covariance_type="tied", random_state=0)
    np.testing.assert_array_equal(adata.obs["sem"].cat.codes.to_numpy(), reference.fit_predict(adata.obsm["X_pca"]))
    fit = adata.uns["sem"]
    assert fit["params"]["method"] == "sinkhorn"
    np.testing.assert_allclose(fit["weights"], proportions, rtol=1e-12)
    # the weights change the fit: Sinkhorn-EM's plan gives each component its known share
    gaussian_mixture(adata, K, key_added="free")
    assert not np.allclose(adata.uns["free"]["weights"], proportions, atol=1e-3)


def test_adata_x_is_clustered_when_use_rep_is_none(dlpfc_adata):
    pcs = anndata.AnnData(X=sp.csr_matrix(dlpfc_adata.obsm["X_pca"]), obs=dlpfc_adata.obs[[]].copy())
    gaussian_mixture(pcs, K, use_rep=None, method="em", max_iter=50)
    reference = EOTGaussianMixture(K, method="em", covariance_type="tied", random_state=0, max_iter=50)
    np.testing.assert_array_equal(pcs.obs["mixture"].cat.codes, reference.fit_predict(dlpfc_adata.obsm["X_pca"]))
    assert pcs.uns["mixture"]["params"]["use_rep"] == "X"


def test_the_result_survives_an_h5ad_round_trip(dlpfc_adata, tmp_path):
    adata = anndata.AnnData(X=dlpfc_adata.obsm["X_pca"], obs=dlpfc_adata.obs.copy())
    adata.obsm["X_pca"] = dlpfc_adata.obsm["X_pca"]
    gaussian_mixture(adata, K, weights=dlpfc_adata.uns["layer_proportions"], key_added="sem")
    path = tmp_path / "slice.h5ad"
    adata.write_h5ad(path)
    back = anndata.read_h5ad(path)
    pd.testing.assert_series_equal(back.obs["sem"], adata.obs["sem"])
    for name in ("weights", "means", "covariances"):
        np.testing.assert_array_equal(back.uns["sem"][name], adata.uns["sem"][name])
    assert back.uns["sem"]["params"]["method"] == "sinkhorn"
    # mclust_R users score against the manual layers: the labels are usable as they are
    annotated = adata.obs["layer"].astype(str) != ""
    assert 0 < ari(adata.obs["layer"][annotated].astype(str), back.obs["sem"][annotated].astype(str)) <= 1


# ----------------------------------------------------------------------------- refusals
def test_copy_returns_a_new_object_and_leaves_the_input_alone():
    adata = blobs_adata()
    before = snapshot(adata)
    out = gaussian_mixture(adata, 3, copy=True)
    assert out is not adata and "mixture" in out.obs and "mixture" in out.uns
    assert snapshot(adata)[:2] == before[:2]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"use_rep": "X_umap"}, KeyError, r"use_rep='X_umap' is not a key of adata.obsm \(keys: \['X_pca'\]\)"),
        ({"weights": [0.5, 0.5]}, ValueError, r"weights has 2 proportion\(s\).*n_components=3"),
        ({"weights": [0.5, 0.3, 0.3]}, ValueError, "weights must sum to 1"),
        ({"weights": {"a": 0.5, "b": 0.5}}, TypeError, "got a mapping"),
        ({"covariance_type": "EEE"}, ValueError, "covariance_type"),
    ],
)
def test_bad_settings_are_refused_and_nothing_is_written(kwargs, error, match):
    adata = blobs_adata()
    before = snapshot(adata)
    with pytest.raises(error, match=match):
        gaussian_mixture(adata, 3, **kwargs)
    assert snapshot(adata)[:2] == before[:2]


def test_nan_rows_are_refused_by_name_and_nothing_is_written():
    adata = blobs_adata()
    adata.obsm["X_pca"][[4, 9], 1] = np.nan
    before = snapshot(adata)
    with pytest.raises(
        ValueError, match=r"adata.obsm\['X_pca'\] has 2 row\(s\) with NaN or inf, e.g. \['cell4', 'cell9'\]"
    ):
        gaussian_mixture(adata, 3)
    assert snapshot(adata)[:2] == before[:2]


def test_a_non_anndata_is_refused():
    with pytest.raises(TypeError, match="anndata.AnnData"):
        gaussian_mixture(np.zeros((10, 2)), 2)


def test_the_module_is_reachable_from_the_package():
    assert sinkhorn_em.tl.gaussian_mixture is gaussian_mixture
