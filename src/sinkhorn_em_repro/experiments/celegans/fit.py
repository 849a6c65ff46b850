r"""Fits of the C. elegans protocol: shared starts, every method's iterates and their identification metrics."""

from __future__ import annotations

import numpy as np
import pandas as pd

from sinkhorn_em import nll
from sinkhorn_em_repro._checks import _check_choice
from sinkhorn_em_repro.experiments.celegans.scene import FEATURE_DIMS, POSITION_DIMS, NeuronScene
from sinkhorn_em_repro.experiments.celegans.simulate import VoxelTrial, trial_data
from sinkhorn_em_repro.fitting import FitOptions, fit_table_method
from sinkhorn_em_repro.seeding import derive_seed
from sinkhorn_em_repro.starts import cell_sizes, weights_by_size

__all__ = [
    "INITS",
    "METHODS",
    "METRICS",
    "accuracy_metric",
    "identification_metrics",
    "initial_parameters",
    "run_celegans_chunk",
    "segmentation_map",
]


METHODS = ("vEM", "oEM", "sEM")
INITS = ("random", "atlas")


def accuracy_metric(radius: float) -> str:
    """Column name of the identification accuracy at ``radius`` micrometres."""
    return f"accuracy_r{float(radius):g}"


#: Metrics that are not accuracies (accuracies depend on the configured radii).
METRICS = ("position_error", "train_loglik", "test_loglik")


def _match_weights_by_rank(weights: np.ndarray, X: np.ndarray, means: np.ndarray) -> np.ndarray:
    """Give the largest weight to the component with the largest nearest-centre cluster."""
    if np.allclose(weights, weights[0]):
        return weights.copy()
    return weights_by_size(weights, cell_sizes(X, means))


def _covariances_init(variance: float, K: int, covariance_type: str) -> np.ndarray:
    d = FEATURE_DIMS
    layouts = {
        "full": lambda: np.tile(np.eye(d) * variance, (K, 1, 1)),
        "diag": lambda: np.full((K, d), variance),
        "spherical": lambda: np.full(K, variance),
        "tied": lambda: np.eye(d) * variance,
    }
    _check_choice("covariance_type", covariance_type, layouts)
    return layouts[covariance_type]()


def initial_parameters(
    scene: NeuronScene,
    trial: VoxelTrial,
    init: str,
    rng: np.random.Generator,
    *,
    covariance_type: str = "spherical",
    variance: float,
):
    """Initial ``(means, covariances, weights)`` shared by every method of a trial."""
    _check_choice("init", init, INITS)
    K = scene.n_neurons
    if init == "atlas":
        means = scene.atlas_means.copy()
        weights = scene.weights
    else:
        means = trial.X_train[rng.choice(len(trial.X_train), size=K, replace=False)].copy()
        weights = _match_weights_by_rank(scene.weights, trial.X_train, means)
    return means, _covariances_init(variance, K, covariance_type), weights


def _init_rng(base_seed, scene, trial_index, init):
    return np.random.default_rng(derive_seed(base_seed, "celegans", scene.dataset, int(trial_index), "init", init))


def identification_metrics(true_positions, estimated_positions, radii=(1.0, 3.0)) -> dict:
    """Neuron-identification metrics after optimal matching of estimated to true neurons.

    Parameters
    ----------
    true_positions, estimated_positions : array-like of shape (K, p)
        Positions (micrometres); the estimated ones in any order.
    radii : sequence of float
        Radii :math:`r` of the accuracies.

    Returns
    -------
    dict
        ``accuracy_r{r}`` for each radius: :math:`\\frac1K \\#\\{k : \\|p_k -
        \\hat p_{\\pi(k)}\\| \\le r\\}`; ``position_error``: :math:`\\frac1K \\sum_k \\|p_k -
        \\hat p_{\\pi(k)}\\|`; and ``permutation`` :math:`\\pi` (true neuron ``k`` ->
        estimated index ``permutation[k]``), the assignment minimising
        :math:`\\sum_k \\|p_k - \\hat p_{\\pi(k)}\\|^2`.
    """
    from sinkhorn_em.metrics import matched_parameter_error

    true_positions = np.asarray(true_positions, dtype=float)
    estimated_positions = np.asarray(estimated_positions, dtype=float)
    permutation = matched_parameter_error(true_positions, estimated_positions).permutation
    distances = np.linalg.norm(true_positions - estimated_positions[permutation], axis=1)
    out = {accuracy_metric(r): float(np.mean(distances <= r)) for r in radii}
    out["position_error"] = float(distances.mean())
    out["permutation"] = permutation
    return out


def _mean_loglik(X, weights, means, covariances, covariance_type) -> float:
    """:math:`\\frac1n \\sum_i \\log \\sum_k w_k \\mathcal N(x_i; \\mu_k, \\Sigma_k)` (the library's blocked :func:`~sinkhorn_em.nll`).

    A component oEM has emptied (weight 0) contributes nothing and is left out.
    """
    weights = np.asarray(weights, dtype=float)
    kept = weights > 0
    if covariance_type != "tied":
        covariances = np.asarray(covariances)[kept]
    return -nll(X, weights[kept] / weights[kept].sum(), np.asarray(means)[kept], covariances, covariance_type)


def _init_variance(scale_log_mean: float, scale_log_sd: float, init_variance: float | None) -> float:
    """Initial variance of every component: ``init_variance``, by default :math:`E[s_k] = e^{m + \\sigma^2/2}`."""
    variance = float(np.exp(scale_log_mean + scale_log_sd**2 / 2)) if init_variance is None else float(init_variance)
    if not variance > 0:
        raise ValueError(f"init_variance must be > 0, got {init_variance}")
    return variance


def _start(scene, trial, trial_index, init, *, base_seed, covariance_type, variance):
    """The start of every method on one (trial, init), seeded by (dataset, trial, init) only."""
    rng = _init_rng(base_seed, scene, trial_index, init)
    return initial_parameters(scene, trial, init, rng, covariance_type=covariance_type, variance=variance)


def _check_options(options: FitOptions) -> None:
    """The C. elegans protocol: exactly ``options.max_iter`` iterations (``tol = 0``), as the plan sets."""
    FitOptions.check(options, fixed_budget_for="C. elegans fits (max_iter is the dataset's n_iter)")


def _fit(method, trial: VoxelTrial, start, options: FitOptions, *, keep_trajectory=False):
    """``method`` on the training voxels with ``options`` from ``start``."""
    means, covariances, weights = start
    return fit_table_method(
        method,
        trial.X_train,
        weights=weights,
        means_init=means,
        covariances_init=covariances,
        keep_trajectory=keep_trajectory,
        options=options,
    ).model


def run_celegans_chunk(
    scene: NeuronScene,
    *,
    method: str,
    trials,
    base_seed: int,
    inits=INITS,
    options: FitOptions,
    radii=(1.0, 3.0),
    scale_log_mean: float = 1.0,
    scale_log_sd: float = 0.1,
    test_fraction: float = 0.5,
    init_variance: float | None = None,
) -> pd.DataFrame:
    """Fit one method on a chunk of trials of one scene; one row per (trial, init, iterate).

    ``options`` are the family's fit options (:meth:`FitOptions.from_config` of the config
    section, with ``tol=0`` and ``max_iter`` the dataset's ``n_iter``): every fit runs exactly
    ``options.max_iter`` iterations; ``options.n_jobs`` threads run each fit's passes (the
    rule's ``threads:``), which changes no row but ``wall_seconds``. The voxels of trial ``t`` come from ``derive_seed(base_seed, "celegans", dataset, t)``
    and its initialisation from ``derive_seed(..., t, "init", init)``: neither depends on
    the method, so every method sees the same data and the same start.

    Returns
    -------
    DataFrame with columns dataset, n_neurons, n_voxels, init, method, trial, iteration,
    ``accuracy_r{r}`` per radius, position_error, train_loglik, test_loglik,
    sinkhorn_iterations, wall_seconds (see the module docstring) and protocol
    (``"project"``).
    """

    _check_choice("method", method, METHODS)
    for init in inits:
        _check_choice("init", init, INITS)
    _check_options(options)
    covariance_type = options.covariance_type
    variance = _init_variance(scale_log_mean, scale_log_sd, init_variance)
    rows = []
    for trial_index in trials:
        trial = trial_data(
            scene,
            trial_index,
            base_seed=base_seed,
            scale_log_mean=scale_log_mean,
            scale_log_sd=scale_log_sd,
            test_fraction=test_fraction,
        )
        true_positions = trial.centers[:, :POSITION_DIMS]
        for init in inits:
            start = _start(
                scene, trial, trial_index, init, base_seed=base_seed, covariance_type=covariance_type, variance=variance
            )
            model = _fit(method, trial, start, options, keep_trajectory=True)
            history = model.history_
            for state, (_, record) in zip(model.trajectory_, history.iterrows()):
                metrics = identification_metrics(true_positions, state["means"][:, :POSITION_DIMS], radii)
                metrics.pop("permutation")
                rows.append(
                    {
                        "dataset": scene.dataset,
                        "n_neurons": scene.n_neurons,
                        "n_voxels": scene.n_voxels,
                        "init": init,
                        "method": method,
                        "trial": int(trial_index),
                        "iteration": int(record["iteration"]),
                        **metrics,
                        # history_.nll is the training NLL of this iterate at eps = 1.
                        "train_loglik": -float(record["nll"]),
                        "test_loglik": _mean_loglik(
                            trial.X_test, state["weights"], state["means"], state["covariances"], covariance_type
                        ),
                        "sinkhorn_iterations": int(record["sinkhorn_iterations"]),
                        "wall_seconds": float(record["seconds"]),
                        "protocol": "project",
                    }
                )
    return pd.DataFrame(rows)


def segmentation_map(
    scene: NeuronScene,
    *,
    trial: int,
    base_seed: int,
    inits=INITS,
    methods=METHODS,
    options: FitOptions,
    scale_log_mean: float = 1.0,
    scale_log_sd: float = 0.1,
    test_fraction: float = 0.5,
    init_variance: float | None = None,
) -> pd.DataFrame:
    """Every voxel of one trial with its true neuron and each method's assignment.

    The trial and the initialisations are those of :func:`run_celegans_chunk` (same
    seeds), so the map shows one of the fits summarised in the tables. Each fitted
    component is renamed to the neuron it is matched with (as in
    :func:`identification_metrics`), so ``label == truth`` means the voxel went to the
    right neuron. Voxels (train and test) are assigned by the fitted posterior
    (``predict``).

    Returns
    -------
    DataFrame with one row per (init, method, voxel): dataset, trial, init, method,
    split (train/test), x, y, z, R, G, B, truth, truth_name, label.
    """
    for init in inits:
        _check_choice("init", init, INITS)
    for method in methods:
        _check_choice("method", method, METHODS)
    _check_options(options)
    covariance_type = options.covariance_type
    variance = _init_variance(scale_log_mean, scale_log_sd, init_variance)
    data = trial_data(
        scene,
        trial,
        base_seed=base_seed,
        scale_log_mean=scale_log_mean,
        scale_log_sd=scale_log_sd,
        test_fraction=test_fraction,
    )
    X = np.vstack([data.X_train, data.X_test])
    truth = np.concatenate([data.labels_train, data.labels_test])
    voxels = pd.DataFrame(X, columns=["x", "y", "z", "R", "G", "B"])
    voxels.insert(0, "split", ["train"] * len(data.X_train) + ["test"] * len(data.X_test))
    voxels["truth"] = truth
    voxels["truth_name"] = np.asarray(scene.neuron_names)[truth]
    tables = []
    for init in inits:
        start = _start(
            scene, data, trial, init, base_seed=base_seed, covariance_type=covariance_type, variance=variance
        )
        for method in methods:
            model = _fit(method, data, start, options)
            permutation = identification_metrics(data.centers[:, :POSITION_DIMS], model.means_[:, :POSITION_DIMS])[
                "permutation"
            ]
            neuron_of_component = np.empty(len(permutation), dtype=int)
            neuron_of_component[permutation] = np.arange(len(permutation))
            table = voxels.copy()
            table.insert(0, "method", method)
            table.insert(0, "init", init)
            table["label"] = neuron_of_component[model.predict(X)]
            tables.append(table)
    out = pd.concat(tables, ignore_index=True)
    out.insert(0, "trial", int(trial))
    out.insert(0, "dataset", scene.dataset)
    return out
