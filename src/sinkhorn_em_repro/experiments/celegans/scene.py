r"""Scenes of the C. elegans protocol: neurons, their centres and known voxel shares, before a trial's randomness.

The files are read by :mod:`sinkhorn_em_repro.datasets.celegans`; :func:`load_scene` turns them into a scene.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from sinkhorn_em_repro.datasets.celegans import (
    load_fdnc_worm,
    load_neuroml_worm,
    load_neuropal_atlas,
    load_table_s2,
    match_table_s2,
)

__all__ = ["NeuronScene", "atlas_scene", "load_scene", "register_atlas", "voxel_counts", "worm_scene"]


#: Features of a voxel: 3 positions (micrometres) then 3 colours.
POSITION_DIMS = 3
FEATURE_DIMS = 6


@dataclass(frozen=True)
class NeuronScene:
    """The ground truth of one dataset, before the randomness of a trial.

    Attributes
    ----------
    dataset : str
        Name used in tables (e.g. ``"atlas_tail5"``, ``"NeuroPAL_1_YAw_head"``).
    neuron_names : tuple of str, length K
    centers : ndarray of shape (K, 6)
        Base centres (x, y, z, R, G, B), positions already translated.
    center_covariances : ndarray of shape (K, 6, 6) or None
        Per-trial centres are drawn from ``N(centers, center_covariances)``; ``None``
        keeps the centres fixed (real worms).
    counts : ndarray of int, shape (K,)
        Voxels per neuron, :math:`n_k`; the known weights are ``counts / counts.sum()``.
    atlas_means : ndarray of shape (K, 6)
        Identity-carrying initial means of the ``atlas`` initialisation.
    """

    dataset: str
    neuron_names: tuple[str, ...]
    centers: np.ndarray
    center_covariances: np.ndarray | None
    counts: np.ndarray
    atlas_means: np.ndarray

    @property
    def n_neurons(self) -> int:
        return len(self.neuron_names)

    @property
    def n_voxels(self) -> int:
        return int(self.counts.sum())

    @property
    def weights(self) -> np.ndarray:
        return self.counts / self.counts.sum()


def voxel_counts(weights, n_voxels: int, min_count: int = 1) -> np.ndarray:
    r"""Integer voxel counts :math:`n_k \ge` ``min_count`` with :math:`n_k \approx N w_k`.

    Largest-remainder rounding of :math:`N w_k` (so the counts sum to :math:`N` when
    no floor binds); counts below ``min_count`` are raised to it, which adds voxels.
    """
    weights = np.asarray(weights, dtype=float)
    if weights.ndim != 1 or np.any(~np.isfinite(weights)) or np.any(weights <= 0):
        raise ValueError("weights must be a 1-D array of finite positive numbers")
    if int(n_voxels) < len(weights):
        raise ValueError(
            f"n_voxels={n_voxels} is smaller than the number of neurons {len(weights)}; "
            "increase n_voxels or voxels_per_neuron"
        )
    if int(min_count) < 1:
        raise ValueError(f"min_count must be >= 1, got {min_count}")
    target = int(n_voxels) * weights / weights.sum()
    counts = np.floor(target).astype(int)
    shortfall = int(n_voxels) - counts.sum()
    # Stable sort: ties go to the first neurons, so the counts are deterministic.
    counts[np.argsort(-(target - counts), kind="stable")[:shortfall]] += 1
    return np.maximum(counts, int(min_count))


def _translate_positions(centers: np.ndarray, min_position: float) -> np.ndarray:
    """Shift x, y, z so that the smallest centre coordinate on each axis is ``min_position``."""
    offset = np.zeros(centers.shape[1])
    offset[:POSITION_DIMS] = min_position - centers[:, :POSITION_DIMS].min(axis=0)
    return offset


def atlas_scene(
    atlas,
    *,
    dataset: str,
    neurons=None,
    n_voxels: int | None = None,
    voxels_per_neuron: int | None = None,
    min_position: float = 5.0,
) -> NeuronScene:
    """Scene of the authors' protocol: atlas neurons with uniform weights.

    Parameters
    ----------
    atlas : sinkhorn_em_repro.datasets.celegans.NeuronAtlas
    neurons : list of str, optional
        Subset of neurons (default: the whole region).
    n_voxels, voxels_per_neuron : int
        Total voxels :math:`N`, or :math:`N = K \\times` ``voxels_per_neuron``; give one.
    """
    if neurons is not None:
        atlas = atlas.subset(neurons)
    if (n_voxels is None) == (voxels_per_neuron is None):
        raise ValueError("give exactly one of n_voxels and voxels_per_neuron")
    K = atlas.n_neurons
    total = int(n_voxels) if n_voxels is not None else int(voxels_per_neuron) * K
    counts = voxel_counts(np.full(K, 1.0 / K), total)
    offset = _translate_positions(atlas.means, min_position)
    means = atlas.means + offset
    return NeuronScene(dataset, atlas.names, means, atlas.covariances.copy(), counts, means.copy())


def register_atlas(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    r"""Map atlas features into a worm's frame by least squares on known correspondences.

    Positions: the affine map :math:`p \mapsto A p + b` minimising
    :math:`\sum_k \|A p^{atlas}_k + b - p_k\|^2`; colours: per channel
    :math:`c \mapsto a c + b` by least squares. Both use every neuron (an oracle
    registration: in practice the correspondences are what is being inferred).

    Parameters
    ----------
    source, target : ndarray of shape (K, 6)
        Atlas features and the worm's features of the same neurons, same order.
    """
    source = np.asarray(source, dtype=float)
    target = np.asarray(target, dtype=float)
    K = len(source)
    if source.shape != target.shape or source.shape[1] != FEATURE_DIMS:
        raise ValueError(f"source and target must both be (K, 6), got {source.shape} and {target.shape}")
    if K < POSITION_DIMS + 1:
        raise ValueError(f"an affine registration in 3-D needs at least 4 neurons, got {K}")
    design = np.column_stack([source[:, :POSITION_DIMS], np.ones(K)])
    affine, *_ = np.linalg.lstsq(design, target[:, :POSITION_DIMS], rcond=None)
    registered = np.empty_like(target)
    registered[:, :POSITION_DIMS] = design @ affine
    for channel in range(POSITION_DIMS, FEATURE_DIMS):
        line = np.column_stack([source[:, channel], np.ones(K)])
        coefficients, *_ = np.linalg.lstsq(line, target[:, channel], rcond=None)
        registered[:, channel] = line @ coefficients
    return registered


def worm_scene(
    worm,
    table: pd.DataFrame,
    *,
    dataset: str,
    region: str,
    voxels_per_neuron: int,
    min_voxels_per_neuron: int = 5,
    volume_power: float = 1.0,
    color_std: float = 8.0,
    min_position: float = 5.0,
) -> NeuronScene:
    r"""Scene around the real positions and colours of one worm's identified neurons.

    Neurons: those of ``worm`` that Table S2 lists in ``region`` (exact name match).
    Weights: :math:`\alpha_k \propto V_k^{p}` with :math:`V_k` the Table S2 "Volume"
    of neuron :math:`k` and :math:`p` = ``volume_power``; :math:`N = K \times`
    ``voxels_per_neuron`` voxels are shared by :func:`voxel_counts` with a floor of
    ``min_voxels_per_neuron`` (the known weights are the resulting :math:`n_k / \sum n`).
    Colours: each channel is divided by its standard deviation across the worm's
    neurons and multiplied by ``color_std``, so that colour differences between neurons
    are on the scale of the atlas's (whose channels spread by 7-12 units).
    """
    matched = match_table_s2(worm, table, region)
    K = matched.n_neurons
    if K < POSITION_DIMS + 1:
        raise ValueError(
            f"worm {worm.worm} has only {K} identified {region} neurons listed in Table S2; "
            "at least 4 are needed (drop this region from celegans: real: regions)"
        )
    if not (color_std > 0):
        raise ValueError(f"color_std must be > 0, got {color_std}")
    listed = table[table["region"] == region].set_index("name").loc[list(matched.names)]
    volumes = listed["volume_um3"].to_numpy(dtype=float)
    counts = voxel_counts(volumes ** float(volume_power), int(voxels_per_neuron) * K, int(min_voxels_per_neuron))
    spread = matched.colors.std(axis=0)
    if np.any(spread <= 0):
        raise ValueError(f"worm {worm.worm}: a colour channel is constant across its {region} neurons")
    centers = np.column_stack([matched.positions, matched.colors / spread * color_std])
    atlas_features = listed[["ap_um", "dv_um", "lr_um", "red", "green", "blue"]].to_numpy(dtype=float)
    atlas_means = register_atlas(atlas_features, centers)
    offset = _translate_positions(centers, min_position)
    return NeuronScene(dataset, matched.names, centers + offset, None, counts, atlas_means + offset)


def load_scene(dataset: str, spec: dict, paths: list[str], *, min_position: float = 5.0, sha256: str | None = None):
    """Read the files of one C. elegans dataset into a scene of the protocol.

    Parameters
    ----------
    dataset, spec, min_position, sha256
        The ``scene`` entry of a job of :func:`sinkhorn_em_repro.experiments.celegans.plan_celegans`.
    paths : list of str
        The dataset's files, in the order of ``spec["inputs"]``.

    Returns
    -------
    NeuronScene
        From :func:`atlas_scene` or :func:`worm_scene`.
    """
    if spec["kind"] == "atlas":
        atlas = load_neuropal_atlas(paths[0], spec["region"])
        return atlas_scene(
            atlas,
            dataset=dataset,
            neurons=spec.get("neurons"),
            n_voxels=spec.get("n_voxels"),
            voxels_per_neuron=spec.get("voxels_per_neuron"),
            min_position=min_position,
        )
    if spec["loader"] == "neuroml":
        worm = load_neuroml_worm(paths[0], worm=spec["worm"])
    else:
        worm = load_fdnc_worm(paths[0], sha256=sha256, worm=spec["worm"])
    table = load_table_s2(paths[1])
    return worm_scene(
        worm,
        table,
        dataset=dataset,
        region=spec["region"],
        voxels_per_neuron=spec["voxels_per_neuron"],
        min_voxels_per_neuron=spec["min_voxels_per_neuron"],
        volume_power=spec["volume_power"],
        color_std=spec["color_std"],
        min_position=min_position,
    )
