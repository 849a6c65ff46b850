r"""One trial of the C. elegans protocol: centres, scales and voxels drawn from a scene, split into train and test."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sinkhorn_em_repro.experiments.celegans.scene import NeuronScene
from sinkhorn_em_repro.seeding import derive_seed

__all__ = ["VoxelTrial", "simulate_trial", "trial_data"]


@dataclass(frozen=True)
class VoxelTrial:
    """Voxels of one trial, split into train and test, with their true neurons."""

    X_train: np.ndarray
    labels_train: np.ndarray
    X_test: np.ndarray
    labels_test: np.ndarray
    centers: np.ndarray
    scales: np.ndarray


def simulate_trial(
    scene: NeuronScene,
    rng: np.random.Generator,
    *,
    scale_log_mean: float = 1.0,
    scale_log_sd: float = 0.1,
    test_fraction: float = 0.5,
) -> VoxelTrial:
    """Draw centres, scales and voxels of one trial (see the module docstring)."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    if not scale_log_sd >= 0:
        raise ValueError(f"scale_log_sd must be >= 0, got {scale_log_sd}")
    K, d = scene.centers.shape
    if scene.center_covariances is None:
        centers = scene.centers.copy()
    else:
        centers = np.array(
            [rng.multivariate_normal(c, cov, method="eigh") for c, cov in zip(scene.centers, scene.center_covariances)]
        )
    scales = rng.lognormal(scale_log_mean, scale_log_sd, size=K)
    labels = np.repeat(np.arange(K), scene.counts)
    voxels = centers[labels] + rng.standard_normal((labels.size, d)) * np.sqrt(scales[labels])[:, None]
    is_test = np.zeros(labels.size, dtype=bool)
    start = 0
    for count in scene.counts:
        # Stratified split: each neuron keeps ~(1 - test_fraction) of its voxels for training.
        n_test = int(round(count * test_fraction))
        if count >= 2:
            n_test = min(max(n_test, 1), count - 1)
        is_test[start + rng.permutation(count)[:n_test]] = True
        start += count
    return VoxelTrial(voxels[~is_test], labels[~is_test], voxels[is_test], labels[is_test], centers, scales)


def trial_data(scene, trial_index, *, base_seed, scale_log_mean, scale_log_sd, test_fraction) -> VoxelTrial:
    """Trial ``trial_index`` of a scene, drawn from ``derive_seed(base_seed, "celegans", dataset, trial)``.

    The seed depends on neither the method nor the chunking: every method sees the same voxels.
    """
    rng = np.random.default_rng(derive_seed(base_seed, "celegans", scene.dataset, int(trial_index)))
    return simulate_trial(
        scene, rng, scale_log_mean=scale_log_mean, scale_log_sd=scale_log_sd, test_fraction=test_fraction
    )
