r"""Initialisation sweeps, epsilon sweeps and epsilon annealing.

The paper's practical claim is that the EOT loss needs fewer random restarts than the
log-likelihood. This module measures how often each method reaches the global optimum
from random starts, on synthetic K-component mixtures, and how the entropic weight
:math:`\varepsilon` (constant or annealed) changes that.

Protocol
--------
*Settings.* A setting is ``(weights, d, separation)``: ``K = len(weights)`` components
with known mixing weights :math:`\alpha`, dimension ``d``, and ``separation`` = the
minimum distance between means in units of the component standard deviation
(:func:`sinkhorn_em.synthetic.make_mixture`). Each setting has ``n_datasets`` datasets
of ``n_samples`` points.

*Initialisations.* For each dataset and scheme, ``n_inits`` initial means:

``random_from_data``
    ``K`` distinct data points drawn uniformly without replacement.
``k-means++``
    the k-means++ seeding of Arthur & Vassilvitskii (:func:`sklearn.cluster.kmeans_plusplus`).
``uniform_box``
    ``K`` points uniform in the bounding box :math:`\prod_j [\min_i x_{ij}, \max_i x_{ij}]`.
``truth``
    the true means (a sanity scheme: such runs are the reference runs).

Covariances start as :class:`sinkhorn_em.EOTGaussianMixture` does when given only
``means_init`` (what a user gets, and what scikit-learn does after k-means): component
``k`` starts at the covariance (+ ``reg_covar``) of the points whose nearest initial mean is
:math:`\mu_k^{(0)}`, or at the pooled data covariance if fewer than two points are. The
``truth`` scheme starts at the true covariances. Every method starts with the known
weights :math:`\alpha` (oEM then re-estimates them). For a given dataset, scheme and initialisation
index all methods start from the same parameters, so the comparison is paired.

*Success rule.* On each dataset, every method is also run from the true parameters
:math:`(\alpha, \mu^\star, \Sigma^\star)` at constant :math:`\varepsilon = 1` with the same
options (the *reference run*). Let :math:`e` be a run's permutation-matched parameter error
(:func:`sinkhorn_em.metrics.matched_parameter_error`: root mean over components of
:math:`\|\mu_k - \hat\mu_{\pi(k)}\|^2 + \|\Sigma_k - \hat\Sigma_{\pi(k)}\|_F^2`) and
:math:`e_\mathrm{ref}` that of the reference run of the same method on the same data. The
run is a success iff

.. math:: e \le (1 + r)\, e_\mathrm{ref} + a ,

with ``success_rtol`` :math:`= r` and ``success_atol`` :math:`= a` (``a`` in units of the
component standard deviation). A run started at the truth is therefore always a success.
The reference run is capped by the same ``max_iter`` as every other run.

*Summaries.* Per (setting, scheme, method): the success fraction with a Wilson 95%
interval (:func:`wilson_interval`), the median final error, iterations and wall time.

*Epsilon sweep.* Each method also runs at constant :math:`\varepsilon \ne 1` and with
annealing schedules ending at 1; every such *variant* has its own reference run from the
truth. ``success`` keeps the rule above (against the constant-:math:`\varepsilon = 1`
reference: did the run recover the parameters as well as the unbiased method?), and
``success_own`` applies it against the variant's own reference (did the run find the
variant's own global optimum, however biased?). The bias of a variant is measured on its
reference run: ``mean_bias`` = mean over datasets of its error from the truth (sampling
error plus the :math:`\varepsilon`-induced bias; ``mean_bias_means`` the means-only part),
and ``mean_shift`` = mean over datasets of the matched distance between its reference fit
and the constant-:math:`\varepsilon = 1` reference fit on the same data (the
:math:`\varepsilon`-induced displacement alone, free of sampling noise).

Seeds and chunking
------------------
Dataset ``j`` of a setting is drawn from ``derive_seed(seed, "sweeps", "data", weights,
d, separation, n_samples, j)`` and initialisation ``i`` of scheme ``s`` from
``derive_seed(seed, "sweeps", "init", weights, d, separation, n_samples, j, s, i)``. Seeds
thus depend on what is computed, never on the chunk, the job order or ``--cores``: any
chunking of the initialisations gives the same rows, and the init and epsilon sweeps see
the same datasets and the same starting points.

Modules: :mod:`.setting` (settings, datasets, schedules, success rule), :mod:`.start`
(initial means), :mod:`.fit` (one job's runs), :mod:`.summary` (tables) and :mod:`.plan`
(the jobs of the config).
"""

from sinkhorn_em_repro.experiments.sweeps.fit import run_epsilon_sweep_chunk, run_init_sweep_chunk, run_sweep_batch
from sinkhorn_em_repro.experiments.sweeps.plan import batch_jobs, plan_epsilon_sweep, plan_init_sweep, scaled_count
from sinkhorn_em_repro.experiments.sweeps.setting import (
    SweepSetting,
    collapsed_error,
    exact_counts,
    geometric_schedule,
    is_success,
    make_sweep_dataset,
)
from sinkhorn_em_repro.experiments.sweeps.start import INIT_SCHEMES, initial_means, pair_means_with_weights
from sinkhorn_em_repro.experiments.sweeps.summary import (
    EPSILON_TABLE_COLUMNS,
    INIT_TABLE_COLUMNS,
    PAIRS_KEY,
    paired_starts,
    summarise_epsilon_sweep,
    summarise_init_sweep,
)

__all__ = [
    "EPSILON_TABLE_COLUMNS",
    "INIT_SCHEMES",
    "INIT_TABLE_COLUMNS",
    "PAIRS_KEY",
    "SweepSetting",
    "batch_jobs",
    "collapsed_error",
    "exact_counts",
    "geometric_schedule",
    "initial_means",
    "is_success",
    "make_sweep_dataset",
    "pair_means_with_weights",
    "paired_starts",
    "plan_epsilon_sweep",
    "plan_init_sweep",
    "run_epsilon_sweep_chunk",
    "run_init_sweep_chunk",
    "run_sweep_batch",
    "scaled_count",
    "summarise_epsilon_sweep",
    "summarise_init_sweep",
]
