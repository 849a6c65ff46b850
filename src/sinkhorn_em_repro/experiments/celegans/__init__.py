r"""C. elegans neuron identification: segment simulated NeuroPAL voxels into neurons.

Generative model (this project's protocol; the authors' is below)
-----------------------------------------------------------------
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

The authors' protocol
---------------------
Beside this project's protocol, :mod:`.authors` runs the authors' demo (github.com/amin-nejat/
SinkhornEM) on the protocol's neurons: i.i.d. labels, a random split, a MAP M-step under the
prior :math:`N(\text{atlas mean}, \text{atlas covariance}/10)` whose density also enters the
E-step, full covariances with clipped positional eigenvalues, start covariance :math:`10 I`,
identity accuracy (component :math:`k` against neuron :math:`k`) and iteration budgets that
stand for the demo's 1 s of wall time. Its rows carry ``protocol = "authors"``, this
project's ``"project"``.

Modules, in the order of the protocol: :mod:`.scene` (ground truth of a dataset),
:mod:`.simulate` (one trial's voxels), :mod:`.fit` (starts, fits, metrics),
:mod:`.authors` (the authors' protocol variant), :mod:`.summary` (intervals over trials)
and :mod:`.plan` (the jobs of the config). The
files of a dataset are read into a scene by :func:`.scene.load_scene`.
"""

from sinkhorn_em_repro.experiments.celegans.authors import (
    AUTHORS,
    PROJECT,
    AuthorsPrior,
    fit_authors_protocol,
    identity_metrics,
    run_authors_chunk,
    simulate_authors_trial,
)
from sinkhorn_em_repro.experiments.celegans.fit import (
    INITS,
    METHODS,
    METRICS,
    accuracy_metric,
    identification_metrics,
    initial_parameters,
    run_celegans_chunk,
    segmentation_map,
)
from sinkhorn_em_repro.experiments.celegans.plan import (
    REAL_WORMS,
    authors_protocol_dataset,
    celegans_datasets,
    celegans_pools,
    plan_celegans,
)
from sinkhorn_em_repro.experiments.celegans.scene import (
    NeuronScene,
    atlas_scene,
    load_scene,
    register_atlas,
    voxel_counts,
    worm_scene,
)
from sinkhorn_em_repro.experiments.celegans.simulate import VoxelTrial, simulate_trial, trial_data
from sinkhorn_em_repro.experiments.celegans.summary import final_summary, final_trials, summarise_celegans

__all__ = [
    "AUTHORS",
    "INITS",
    "METHODS",
    "METRICS",
    "PROJECT",
    "REAL_WORMS",
    "AuthorsPrior",
    "NeuronScene",
    "VoxelTrial",
    "accuracy_metric",
    "atlas_scene",
    "authors_protocol_dataset",
    "celegans_datasets",
    "celegans_pools",
    "final_summary",
    "final_trials",
    "fit_authors_protocol",
    "identification_metrics",
    "identity_metrics",
    "initial_parameters",
    "load_scene",
    "plan_celegans",
    "register_atlas",
    "run_authors_chunk",
    "run_celegans_chunk",
    "segmentation_map",
    "simulate_authors_trial",
    "simulate_trial",
    "summarise_celegans",
    "trial_data",
    "voxel_counts",
    "worm_scene",
]
