r"""osmFISH application: cluster cortex cells into regions / cell types with known proportions.

Setting
-------
The 4,839 valid cells of the osmFISH cortex dataset (:mod:`sinkhorn_em_repro.datasets.osmfish`)
are embedded by their expression (``expr``: library-size normalised, ``log1p``, 10 PCs) and
optionally their standardised position (``expr+xy``). A Gaussian mixture with
:math:`K = 11` components is fitted and compared with the anatomical regions, or
:math:`K = 31` with the cell-type annotation. The "known weights" :math:`\alpha` are the
class proportions of the target labels: an oracle, so every method is also run with

* ``perturbed`` weights :math:`w = (1 - s)\,\alpha + s\,\eta`, :math:`\eta \sim
  \mathrm{Dirichlet}(K\alpha)`, with strength :math:`s \in [0, 1)`. :math:`\eta` has mean
  :math:`\alpha` and the spread of a uniformly random point of the simplex (total
  concentration :math:`K`), so :math:`w` is unbiased, stays positive and sums to 1;
* ``uniform`` weights :math:`w_k = 1/K`.

Methods: ``vEM`` (EM, weights fixed at :math:`w`), ``sEM`` (Sinkhorn-EM, columns of the
coupling constrained to :math:`w`), ``oEM`` (EM re-estimating the weights, :math:`w` only
initialises them) and ``sklearn`` (scikit-learn's ``GaussianMixture``, the same algorithm
as oEM from an independent implementation).

Which weight goes to which component
-------------------------------------
The proportions are known as a multiset only: nothing says which Gaussian is "Layer 6".
All methods of one seed share one initialisation: k-means++ centres (scikit-learn's
``kmeans_plusplus``), each cell assigned to its nearest centre, and the means and
(shrunk) covariances of those initial clusters. The weights are then given to the
components by *rank*: the largest weight to the largest initial cluster, and so on.
Among all one-to-one assignments this one minimises :math:`\sum_k |n_k/n - w_{\pi(k)}|^p`
for every :math:`p \ge 1` (monotone rearrangement), so each component starts with the
weight closest to the mass it already holds. The same rule applies to perturbed weights;
for uniform weights it is void.

Seeds
-----
The initialisation of seed index ``j`` comes from
``derive_seed(base_seed, "osmfish", "init", target, features, j)`` and its perturbed
weights from ``derive_seed(base_seed, "osmfish", "perturb", target, features, j)``: neither
depends on the method nor on the weight setting, so all comparisons are paired.

Modules: :mod:`.plan` (settings, seed chunks, jobs), :mod:`.start` (weights and initial
clusters), :mod:`.fit` (fits, best-seed maps, cross-check) and :mod:`.summary`. The
features of the cells come from :mod:`sinkhorn_em_repro.datasets.osmfish`.
"""

from sinkhorn_em_repro.experiments.osmfish.fit import (
    best_seed_maps,
    crosscheck_oem_sklearn,
    match_labels,
    run_osmfish_chunk,
)
from sinkhorn_em_repro.experiments.osmfish.plan import (
    FEATURE_SETS,
    METHODS,
    TARGETS,
    WEIGHT_SETTINGS,
    fit_settings,
    plan_osmfish,
    seed_chunks,
)
from sinkhorn_em_repro.experiments.osmfish.start import (
    class_proportions,
    kmeanspp_init,
    match_weights_by_rank,
    perturb_weights,
    seed_start,
    setting_weights,
)
from sinkhorn_em_repro.experiments.osmfish.summary import combine_per_seed, summarise_osmfish

__all__ = [
    "FEATURE_SETS",
    "METHODS",
    "TARGETS",
    "WEIGHT_SETTINGS",
    "best_seed_maps",
    "class_proportions",
    "combine_per_seed",
    "crosscheck_oem_sklearn",
    "fit_settings",
    "kmeanspp_init",
    "match_labels",
    "match_weights_by_rank",
    "perturb_weights",
    "plan_osmfish",
    "run_osmfish_chunk",
    "seed_chunks",
    "seed_start",
    "setting_weights",
    "summarise_osmfish",
]
