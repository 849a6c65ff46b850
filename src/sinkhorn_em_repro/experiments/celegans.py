r"""C. elegans neuron identification: segment simulated NeuroPAL voxels into neurons.

Generative model (the protocol of Mena et al. 2020, Section 5)
--------------------------------------------------------------
A *scene* is a set of :math:`K` named neurons, each with a 6-D centre
:math:`c_k = (x, y, z, R, G, B)` (micrometres, colour units) and a known voxel share
:math:`\alpha_k`. One *trial* draws

* the centres: :math:`\mu_k \sim \mathcal N(c_k, \Sigma^{atlas}_k)` for an atlas scene
  (the atlas covariance is the variability across animals), :math:`\mu_k = c_k` for a
  real worm (its measured positions and colours are the truth);
* a scale per neuron :math:`s_k \sim \mathrm{LogNormal}(m, \sigma)` (default
  :math:`m = 1, \sigma = 0.1`, i.e. :math:`\log s_k \sim \mathcal N(1, 0.1^2)`);
* :math:`n_k = \mathrm{round}(N \alpha_k)` voxels :math:`v \sim \mathcal N(\mu_k, s_k I_6)`;

then splits every neuron's voxels 50/50 into train and test (stratified, so that the
train proportions equal :math:`\alpha` up to rounding). Positions are translated so that
the smallest coordinate of the centres on each axis is 5 (the authors' convention; a
translation changes no metric).

Methods and initialisations
---------------------------
``vEM``, ``oEM`` and ``sEM`` (:class:`sinkhorn_em.EOTGaussianMixture` with method
``em``, ``oem``, ``sinkhorn``) run exactly ``n_iter`` iterations (``tol = 0``) from the
same start in a trial:

* ``random``: :math:`K` distinct training voxels drawn uniformly. Nothing tells which
  known weight belongs to which component, so weights go by rank: the largest weight to
  the component whose nearest-centre cluster of training voxels is largest, and so on
  (void for uniform weights);
* ``atlas``: an identity-carrying start, component :math:`k` at the atlas mean of neuron
  :math:`k` (atlas scenes: the atlas means themselves; real worms: the Table S2 means of
  Yemini et al. mapped into the worm's frame by the least-squares affine map of positions
  and per-channel linear map of colours fitted on the worm's own identified neurons, i.e.
  an oracle registration).

Initial covariances are :math:`v I` with :math:`v = E[s_k] = e^{m + \sigma^2/2}` unless
``init_variance`` is given.

Metrics at every iterate (after optimal matching)
-------------------------------------------------
The estimated centres are matched to the true ones by the Hungarian algorithm on squared
position distances (:func:`sinkhorn_em.matched_parameter_error`). Then

* ``accuracy_r{r}``: fraction of neurons whose matched estimated position lies within
  :math:`r` micrometres of the true position;
* ``position_error``: mean over neurons of that distance (micrometres);
* ``train_loglik``, ``test_loglik``: mean log-likelihood per voxel,
  :math:`\frac1n \sum_i \log \sum_k w_k \mathcal N(v_i; \hat\mu_k, \hat\Sigma_k)` with the
  iterate's weights (estimated ones for oEM);
* ``wall_seconds``: fit time from the start to the end of that iterate's E-step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from sinkhorn_em_repro.fitting import fit_table_method
from sinkhorn_em_repro.intervals import t_interval
from sinkhorn_em_repro.seeding import derive_seed

__all__ = [
    "INITS",
    "METHODS",
    "METRICS",
    "NeuronScene",
    "VoxelTrial",
    "accuracy_metric",
    "atlas_scene",
    "celegans_datasets",
    "celegans_pools",
    "final_summary",
    "identification_metrics",
    "initial_parameters",
    "load_scene",
    "plan_celegans",
    "register_atlas",
    "run_celegans_chunk",
    "segmentation_map",
    "simulate_trial",
    "summarise_celegans",
    "voxel_counts",
    "worm_scene",
]

METHODS = ("vEM", "oEM", "sEM")
INITS = ("random", "atlas")

_POSITION_DIMS = 3
_FEATURE_DIMS = 6


def accuracy_metric(radius: float) -> str:
    """Column name of the identification accuracy at ``radius`` micrometres."""
    return f"accuracy_r{float(radius):g}"


#: Metrics that are not accuracies (accuracies depend on the configured radii).
METRICS = ("position_error", "train_loglik", "test_loglik")


def _check_choice(name: str, value: str, choices) -> None:
    if value not in choices:
        raise ValueError(f"{name}={value!r} is not one of {tuple(choices)}")


# --------------------------------------------------------------------------- scenes
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
    offset[:_POSITION_DIMS] = min_position - centers[:, :_POSITION_DIMS].min(axis=0)
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
    if source.shape != target.shape or source.shape[1] != _FEATURE_DIMS:
        raise ValueError(f"source and target must both be (K, 6), got {source.shape} and {target.shape}")
    if K < _POSITION_DIMS + 1:
        raise ValueError(f"an affine registration in 3-D needs at least 4 neurons, got {K}")
    design = np.column_stack([source[:, :_POSITION_DIMS], np.ones(K)])
    affine, *_ = np.linalg.lstsq(design, target[:, :_POSITION_DIMS], rcond=None)
    registered = np.empty_like(target)
    registered[:, :_POSITION_DIMS] = design @ affine
    for channel in range(_POSITION_DIMS, _FEATURE_DIMS):
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
    from sinkhorn_em_repro.datasets.celegans import match_table_s2

    matched = match_table_s2(worm, table, region)
    K = matched.n_neurons
    if K < _POSITION_DIMS + 1:
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


# --------------------------------------------------------------------------- trials
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


def _match_weights_by_rank(weights: np.ndarray, X: np.ndarray, means: np.ndarray) -> np.ndarray:
    """Give the largest weight to the component with the largest nearest-centre cluster."""
    if np.allclose(weights, weights[0]):
        return weights.copy()
    sq_dist = (X**2).sum(1)[:, None] - 2.0 * X @ means.T + (means**2).sum(1)[None, :]
    sizes = np.bincount(sq_dist.argmin(axis=1), minlength=len(means))
    ranked = np.empty_like(weights)
    ranked[np.argsort(-sizes, kind="stable")] = np.sort(weights)[::-1]
    return ranked


def _covariances_init(variance: float, K: int, covariance_type: str) -> np.ndarray:
    d = _FEATURE_DIMS
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


# --------------------------------------------------------------------------- metrics
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


def _mean_loglik(features, weights, means, covariances, covariance_type) -> float:
    """:math:`\\frac1n \\sum_i \\log \\sum_k w_k \\mathcal N(x_i; \\mu_k, \\Sigma_k)`."""
    from sinkhorn_em.gaussian import gaussian_cost

    log_joint = np.log(weights)[None, :] - gaussian_cost(features, means, covariances, covariance_type)
    # Plain max-shifted log-sum-exp: scipy.special.logsumexp costs ~3x more on (n, K)
    # arrays, and this runs at every iterate of every fit.
    row_max = log_joint.max(axis=1)
    log_joint -= row_max[:, None]
    np.exp(log_joint, out=log_joint)
    return float(np.mean(row_max + np.log(log_joint.sum(axis=1))))


def _trial_setup(scene, trial_index, *, base_seed, scale_log_mean, scale_log_sd, test_fraction):
    rng = np.random.default_rng(derive_seed(base_seed, "celegans", scene.dataset, int(trial_index)))
    return simulate_trial(
        scene, rng, scale_log_mean=scale_log_mean, scale_log_sd=scale_log_sd, test_fraction=test_fraction
    )


def _init_rng(base_seed, scene, trial_index, init):
    return np.random.default_rng(derive_seed(base_seed, "celegans", scene.dataset, int(trial_index), "init", init))


def run_celegans_chunk(
    scene: NeuronScene,
    *,
    method: str,
    trials,
    base_seed: int,
    inits=INITS,
    n_iter: int = 50,
    radii=(1.0, 3.0),
    covariance_type: str = "spherical",
    epsilon: float = 1.0,
    reg_covar: float = 1e-6,
    sinkhorn_tol: float = 1e-4,
    sinkhorn_max_iter: int = 1000,
    scale_log_mean: float = 1.0,
    scale_log_sd: float = 0.1,
    test_fraction: float = 0.5,
    init_variance: float | None = None,
) -> pd.DataFrame:
    """Fit one method on a chunk of trials of one scene; one row per (trial, init, iterate).

    The voxels of trial ``t`` come from ``derive_seed(base_seed, "celegans", dataset, t)``
    and its initialisation from ``derive_seed(..., t, "init", init)``: neither depends on
    the method, so every method sees the same data and the same start.

    Returns
    -------
    DataFrame with columns dataset, n_neurons, n_voxels, init, method, trial, iteration,
    ``accuracy_r{r}`` per radius, position_error, train_loglik, test_loglik,
    sinkhorn_iterations and wall_seconds (see the module docstring).
    """
    from sinkhorn_em.gaussian import MomentFeatures

    _check_choice("method", method, METHODS)
    for init in inits:
        _check_choice("init", init, INITS)
    if int(n_iter) < 1:
        raise ValueError(f"n_iter must be >= 1, got {n_iter}")
    variance = float(np.exp(scale_log_mean + scale_log_sd**2 / 2)) if init_variance is None else float(init_variance)
    if not variance > 0:
        raise ValueError(f"init_variance must be > 0, got {init_variance}")
    rows = []
    for trial_index in trials:
        trial = _trial_setup(
            scene,
            trial_index,
            base_seed=base_seed,
            scale_log_mean=scale_log_mean,
            scale_log_sd=scale_log_sd,
            test_fraction=test_fraction,
        )
        test_features = MomentFeatures.from_data(trial.X_test)
        true_positions = trial.centers[:, :_POSITION_DIMS]
        for init in inits:
            means, covariances, weights = initial_parameters(
                scene,
                trial,
                init,
                _init_rng(base_seed, scene, trial_index, init),
                covariance_type=covariance_type,
                variance=variance,
            )
            model = fit_table_method(
                method,
                trial.X_train,
                weights=weights,
                means_init=means,
                covariances_init=covariances,
                covariance_type=covariance_type,
                tol=0.0,
                max_iter=n_iter,
                epsilon=epsilon,
                reg_covar=reg_covar,
                sinkhorn_tol=sinkhorn_tol,
                sinkhorn_max_iter=sinkhorn_max_iter,
                keep_trajectory=True,
            ).model
            history = model.history_
            for state, (_, record) in zip(model.trajectory_, history.iterrows()):
                metrics = identification_metrics(true_positions, state["means"][:, :_POSITION_DIMS], radii)
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
                            test_features, state["weights"], state["means"], state["covariances"], covariance_type
                        ),
                        "sinkhorn_iterations": int(record["sinkhorn_iterations"]),
                        "wall_seconds": float(record["seconds"]),
                    }
                )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- summaries
_KEYS = ["dataset", "n_neurons", "n_voxels", "n_datasets", "pool", "init", "method"]


def _metric_columns(per_iteration: pd.DataFrame) -> list[str]:
    accuracies = sorted(
        (c for c in per_iteration.columns if c.startswith("accuracy_r")), key=lambda c: float(c[len("accuracy_r") :])
    )
    return [*accuracies, *METRICS]


def _pooled(per_iteration: pd.DataFrame, pools: dict) -> list[pd.DataFrame]:
    """Rows of several datasets relabelled as one pooled dataset (each worm-trial one sample)."""
    frames = []
    for pooled_name, members in (pools or {}).items():
        rows = per_iteration[per_iteration["dataset"].isin(members)]
        if rows.empty:
            continue
        sizes = rows.drop_duplicates("dataset")
        frames.append(
            rows.assign(
                dataset=pooled_name,
                n_neurons=int(round(sizes["n_neurons"].mean())),
                n_voxels=int(round(sizes["n_voxels"].mean())),
                n_datasets=len(sizes),
                pool="",
                trial=rows["dataset"] + ":" + rows["trial"].astype(str),
            )
        )
    return frames


def summarise_celegans(
    per_iteration: pd.DataFrame, pools: dict | None = None, confidence: float = 0.95
) -> pd.DataFrame:
    """Mean and Student-t confidence interval of each metric over trials, per iterate.

    Parameters
    ----------
    per_iteration : DataFrame
        Rows of :func:`run_celegans_chunk` (any number of datasets, methods, chunks).
    pools : dict of str -> list of str, optional
        Extra pooled datasets: name -> member datasets. A pooled dataset treats every
        (member, trial) as one sample; its ``n_neurons`` and ``n_voxels`` are the
        members' means and ``n_datasets`` their number.
    confidence : float
        Level of the interval.

    Returns
    -------
    DataFrame
        One row per (dataset, init, method, metric, iteration) with columns dataset,
        n_neurons, n_voxels, n_datasets, pool (the pooled dataset that includes this one,
        empty if none), init, method, metric, iteration, ``mean``,
        ``ci_low``, ``ci_high`` (:math:`\\bar x \\pm t_{n-1, (1+c)/2}\\, s/\\sqrt n`, clipped
        to [0, 1] for accuracies and to >= 0 for the position error; equal to the mean when
        ``n_trials = 1``), ``n_trials`` and ``mean_wall_seconds`` (mean fit
        time up to that iterate).
    """
    if per_iteration.empty:
        raise ValueError("no per-iteration rows to summarise")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    metrics = _metric_columns(per_iteration)
    pool_of = {member: name for name, members in (pools or {}).items() for member in members}
    singles = per_iteration.assign(
        n_datasets=1, pool=per_iteration["dataset"].map(pool_of).fillna(""), trial=per_iteration["trial"].astype(str)
    )
    rows = pd.concat([singles, *_pooled(per_iteration, pools)], ignore_index=True)
    long = rows.melt(
        id_vars=[*_KEYS, "trial", "iteration", "wall_seconds"],
        value_vars=metrics,
        var_name="metric",
        value_name="value",
    )
    summary = (
        long.groupby([*_KEYS, "metric", "iteration"], sort=False)
        .agg(
            mean=("value", "mean"),
            sd=("value", "std"),
            n_trials=("value", "size"),
            mean_wall_seconds=("wall_seconds", "mean"),
        )
        .reset_index()
    )
    summary["ci_low"], summary["ci_high"] = t_interval(
        summary["mean"], summary["sd"], summary["n_trials"], confidence, single_width=0.0
    )
    # Accuracies live in [0, 1] and distances are >= 0: clip the symmetric interval there.
    bounded = summary["metric"].str.startswith("accuracy_r")
    summary.loc[bounded, ["ci_low", "ci_high"]] = summary.loc[bounded, ["ci_low", "ci_high"]].clip(0.0, 1.0)
    distance = summary["metric"] == "position_error"
    summary.loc[distance, "ci_low"] = summary.loc[distance, "ci_low"].clip(lower=0.0)
    rank = {
        "metric": {name: k for k, name in enumerate(metrics)},
        "method": {name: k for k, name in enumerate(METHODS)},
        "init": {name: k for k, name in enumerate(INITS)},
    }
    summary = summary.sort_values(
        ["n_datasets", "dataset", "init", "metric", "method", "iteration"],
        key=lambda col: col.map(rank[col.name]) if col.name in rank else col,
        kind="stable",
    )
    columns = [
        *_KEYS[:5],
        "init",
        "method",
        "metric",
        "iteration",
        "mean",
        "ci_low",
        "ci_high",
        "n_trials",
        "mean_wall_seconds",
    ]
    return summary[columns].reset_index(drop=True)


def final_summary(summary: pd.DataFrame) -> pd.DataFrame:
    """Rows of :func:`summarise_celegans` at the last iterate of each setting."""
    last = summary.groupby(["dataset", "init", "method", "metric"], sort=False)["iteration"].transform("max")
    return summary[summary["iteration"] == last].reset_index(drop=True)


# --------------------------------------------------------------------------- segmentation
def segmentation_map(
    scene: NeuronScene,
    *,
    trial: int,
    base_seed: int,
    inits=INITS,
    methods=METHODS,
    n_iter: int = 50,
    covariance_type: str = "spherical",
    epsilon: float = 1.0,
    reg_covar: float = 1e-6,
    sinkhorn_tol: float = 1e-4,
    sinkhorn_max_iter: int = 1000,
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
    variance = float(np.exp(scale_log_mean + scale_log_sd**2 / 2)) if init_variance is None else float(init_variance)
    data = _trial_setup(
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
        means, covariances, weights = initial_parameters(
            scene,
            data,
            init,
            _init_rng(base_seed, scene, trial, init),
            covariance_type=covariance_type,
            variance=variance,
        )
        for method in methods:
            model = fit_table_method(
                method,
                data.X_train,
                weights=weights,
                means_init=means,
                covariances_init=covariances,
                covariance_type=covariance_type,
                tol=0.0,
                max_iter=n_iter,
                epsilon=epsilon,
                reg_covar=reg_covar,
                sinkhorn_tol=sinkhorn_tol,
                sinkhorn_max_iter=sinkhorn_max_iter,
            ).model
            permutation = identification_metrics(data.centers[:, :_POSITION_DIMS], model.means_[:, :_POSITION_DIMS])[
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


# --------------------------------------------------------------------------- datasets
#: Real worms: dataset key (``datasets: files:``) -> (loader, worm name, regions with data).
#: The fDNC example worms are head recordings.
REAL_WORMS = {
    "openworm_NeuroPAL_1_YAw": ("neuroml", "NeuroPAL_1_YAw", ("head", "tail")),
    "openworm_NeuroPAL_2_AMw": ("neuroml", "NeuroPAL_2_AMw", ("head", "tail")),
    "openworm_NeuroPAL_3_NPv16_64_YAw": ("neuroml", "NeuroPAL_3_NPv16_64_YAw", ("head", "tail")),
    "openworm_NeuroPAL_7_YAw": ("neuroml", "NeuroPAL_7_YAw", ("head", "tail")),
    "openworm_NeuroPAL_9_YAw": ("neuroml", "NeuroPAL_9_YAw", ("head", "tail")),
    "openworm_NeuroPAL_14_Aw": ("neuroml", "NeuroPAL_14_Aw", ("head", "tail")),
    "openworm_NeuroPAL_24_L4w": ("neuroml", "NeuroPAL_24_L4w", ("head", "tail")),
    "fdnc_template": ("fdnc", "fDNC_template", ("head",)),
    "fdnc_test": ("fdnc", "fDNC_test", ("head",)),
}


def celegans_datasets(cfg: dict) -> dict[str, dict]:
    """Every dataset of the ``celegans`` config section, by name, with what builds it.

    Each value has ``kind`` (``atlas`` or ``worm``), ``inputs`` (dataset keys of the
    ``datasets: files:`` section it reads), ``n_trials``, ``n_iter`` and the scene
    arguments. Names: ``atlas_<region>5`` style for the protocol (``protocol.name``),
    ``atlas_<region>`` for whole atlas regions, ``<worm>_<region>`` for real worms.
    """
    out = {}
    protocol = cfg["protocol"]
    if protocol["enabled"]:
        out[protocol["name"]] = {
            "kind": "atlas",
            "inputs": [cfg["atlas"]],
            "region": protocol["region"],
            "neurons": list(protocol["neurons"]),
            "n_voxels": int(protocol["n_voxels"]),
            "n_trials": int(protocol["n_trials"]),
            "n_iter": int(protocol["n_iter"]),
        }
    scaled = cfg["scaled"]
    for region in scaled["regions"]:
        out[f"atlas_{region}"] = {
            "kind": "atlas",
            "inputs": [cfg["atlas"]],
            "region": region,
            "voxels_per_neuron": int(scaled["voxels_per_neuron"][region]),
            "n_trials": int(scaled["n_trials"][region]),
            "n_iter": int(scaled["n_iter"][region]),
        }
    real = cfg["real"]
    for key in real["worms"]:
        if key not in REAL_WORMS:
            raise ValueError(f"celegans: real: worms: unknown worm {key!r}; choose among {sorted(REAL_WORMS)}")
        loader, worm, available = REAL_WORMS[key]
        for region in real["regions"][loader]:
            if region not in available:
                raise ValueError(
                    f"celegans: real: regions: {loader}: worm {worm} has no {region} recording; "
                    f"its regions are {list(available)}"
                )
            out[f"{worm}_{region}"] = {
                "kind": "worm",
                "inputs": [key, cfg["table_s2"]],
                "loader": loader,
                "worm": worm,
                "region": region,
                "voxels_per_neuron": int(real["voxels_per_neuron"][region]),
                "min_voxels_per_neuron": int(real["min_voxels_per_neuron"]),
                "volume_power": float(real["volume_power"]),
                "color_std": float(real["color_std"]),
                "n_trials": int(real["n_trials"][region]),
                "n_iter": int(real["n_iter"][region]),
            }
    return out


def celegans_pools(datasets: dict) -> dict[str, list[str]]:
    """Pooled datasets of the summary: the real worms of one source and region (>= 2 worms).

    Names: ``NeuroPAL_worms_<region>`` (openworm NeuroML worms), ``fDNC_worms_<region>``.
    """
    groups: dict[str, list[str]] = {}
    for name, spec in datasets.items():
        if spec["kind"] == "worm":
            source = "NeuroPAL" if spec["loader"] == "neuroml" else "fDNC"
            groups.setdefault(f"{source}_worms_{spec['region']}", []).append(name)
    return {name: members for name, members in groups.items() if len(members) >= 2}


#: Keywords of run_celegans_chunk / segmentation_map taken from the config section as is.
_FIT_KEYS = (
    "covariance_type",
    "epsilon",
    "reg_covar",
    "sinkhorn_tol",
    "sinkhorn_max_iter",
    "scale_log_mean",
    "scale_log_sd",
    "test_fraction",
    "init_variance",
)
# Upper bounds on K for resource estimates of real worms (their K is known only after loading).
_MAX_NEURONS = {"head": 195, "tail": 45}


def _job_resources(spec: dict, n_inits: int, n_trials: int) -> dict:
    """Memory (MB) and time limit (minutes) of a job, from the size of its (n, K) arrays.

    About 3e7 voxel-component products per second per core for an EM iteration; sEM's
    Sinkhorn solves cost up to ~10x more, hence the margin.
    """
    K = len(spec["neurons"]) if "neurons" in spec else _MAX_NEURONS[spec["region"]]
    n = spec.get("n_voxels") or 2 * spec["voxels_per_neuron"] * K
    products = n * K * (spec["n_iter"] + 1) * n_inits * n_trials
    return {"mem_mb": 400 + int(12 * 8 * n * K / 1e6), "runtime": 5 + int(10 * products / 3e7 / 60)}


def plan_celegans(cfg: dict, base_seed: int, dataset_files: dict) -> dict:
    """Every job of the C. elegans family, for the rule file.

    Parameters
    ----------
    cfg : dict
        The validated ``celegans`` config section.
    base_seed : int
    dataset_files : dict
        ``datasets: files:`` (key -> url, sha256, path), for the fDNC checksums.

    Returns
    -------
    dict with
        ``datasets`` (:func:`celegans_datasets`), ``pools`` (:func:`celegans_pools`),
        ``fits``: job id ``"<dataset>/<method>/chunk<i>"`` -> ``wildcards`` (of its
        output file), ``inputs`` (dataset keys),
        ``scene`` (keywords of :func:`load_scene` but the paths), ``cfg`` (keywords of
        :func:`run_celegans_chunk`), ``mem_mb``, ``runtime``;
        ``segmentation``: the same for :func:`segmentation_map`.
    """
    datasets = celegans_datasets(cfg)
    fit_keywords = {key: cfg[key] for key in _FIT_KEYS}

    def scene_args(name):
        spec = datasets[name]
        sha256 = dataset_files[spec["inputs"][0]]["sha256"] if spec.get("loader") == "fdnc" else None
        return {"dataset": name, "spec": spec, "min_position": cfg["min_position"], "sha256": sha256}

    fits = {}
    for name, spec in datasets.items():
        size = int(cfg["trials_per_job"])
        chunks = [list(range(s, min(s + size, spec["n_trials"]))) for s in range(0, spec["n_trials"], size)]
        for method in cfg["methods"]:
            for index, trials in enumerate(chunks):
                fits[f"{name}/{method}/chunk{index}"] = {
                    "wildcards": {"dataset": name, "method": method, "chunk": index},
                    "inputs": list(spec["inputs"]),
                    "scene": scene_args(name),
                    "cfg": {
                        "method": method,
                        "trials": trials,
                        "base_seed": int(base_seed),
                        "inits": list(cfg["inits"]),
                        "n_iter": spec["n_iter"],
                        "radii": list(cfg["radii"]),
                        **fit_keywords,
                    },
                    **_job_resources(spec, len(cfg["inits"]), len(trials)),
                }
    chosen = cfg["segmentation"]["dataset"]
    if chosen not in datasets:
        raise ValueError(
            f"celegans: segmentation: dataset {chosen!r} is not among the configured datasets "
            f"{sorted(datasets)}; pick one of them or add its worm and region under celegans: real"
        )
    segmentation = {
        "inputs": list(datasets[chosen]["inputs"]),
        "scene": scene_args(chosen),
        "cfg": {
            "trial": int(cfg["segmentation"]["trial"]),
            "base_seed": int(base_seed),
            "inits": list(cfg["inits"]),
            "methods": list(cfg["methods"]),
            "n_iter": datasets[chosen]["n_iter"],
            **fit_keywords,
        },
        **_job_resources(datasets[chosen], len(cfg["inits"]) * len(cfg["methods"]), 1),
    }
    return {"datasets": datasets, "pools": celegans_pools(datasets), "fits": fits, "segmentation": segmentation}


def load_scene(
    dataset: str, spec: dict, paths: list[str], *, min_position: float = 5.0, sha256: str | None = None
) -> NeuronScene:
    """Read the files of one dataset (``paths`` in the order of ``spec["inputs"]``) into a scene."""
    from sinkhorn_em_repro.datasets import celegans as loaders

    if spec["kind"] == "atlas":
        atlas = loaders.load_neuropal_atlas(paths[0], spec["region"])
        return atlas_scene(
            atlas,
            dataset=dataset,
            neurons=spec.get("neurons"),
            n_voxels=spec.get("n_voxels"),
            voxels_per_neuron=spec.get("voxels_per_neuron"),
            min_position=min_position,
        )
    if spec["loader"] == "neuroml":
        worm = loaders.load_neuroml_worm(paths[0], worm=spec["worm"])
    else:
        worm = loaders.load_fdnc_worm(paths[0], sha256=sha256, worm=spec["worm"])
    table = loaders.load_table_s2(paths[1])
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
