"""Gaussian mixtures with known weights fitted by EM, overparametrised EM or Sinkhorn-EM.

All three methods are block-coordinate descent on the free energy

.. math:: F(\\theta, P) = \\langle P, C_\\theta \\rangle + \\varepsilon\\,\\mathrm{KL}(P \\,\\|\\, (1/n) \\otimes \\alpha),
          \\qquad C_\\theta[i, k] = -\\log N(x_i; \\mu_k, \\Sigma_k),

alternating an E-step (minimise over the coupling ``P``) and an M-step (minimise over
``theta``, the usual weighted Gaussian estimates). They differ only in the E-step's
constraint set and in the weight update:

=============  ===========================================  ==========================
``method``     E-step (coupling constraints)                weights after the M-step
=============  ===========================================  ==========================
``"em"``       rows sum to 1/n (EM responsibilities)        fixed at ``alpha`` (vEM)
``"oem"``      rows sum to 1/n (EM responsibilities)        column masses of ``P`` (oEM)
``"sinkhorn"`` rows 1/n and columns ``alpha`` (Sinkhorn)     fixed at ``alpha`` (sEM)
=============  ===========================================  ==========================

The objective minimised is the NLL for ``em``/``oem`` and the EOT loss for ``sinkhorn``
(Mena, Nejatbakhsh, Varol & Niles-Weed 2020; Vayer & Lasalle 2025), so each is
non-increasing along the iterations.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn import get_config
from sklearn.base import BaseEstimator, DensityMixin, clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from . import _dask, _fit
from ._balanced import sample_blocks
from ._covariance import get_covariance
from ._design import make_design
from ._hc import check_hc_options, hierarchical_subset_partition
from ._parallel import check_n_jobs
from ._validation import (
    check_covariance_type,
    check_covariances,
    check_means,
    check_weights,
)
from .gaussian import (
    estimate_gaussian_parameters,
    gaussian_cost,
    n_covariance_parameters,
    precision_cholesky,
)
from .losses import balanced_value, free_energy
from .sinkhorn import SinkhornConvergenceWarning

__all__ = ["INITS", "METHODS", "WEIGHTS_PAIRINGS", "EOTGaussianMixture", "pairing_by_size"]

METHODS = ("em", "oem", "sinkhorn")
SINKHORN_SOLVERS = ("newton", "sinkhorn")
INITS = ("kmeans", "k-means++", "random_from_data", "random", "hc")
WEIGHTS_PAIRINGS = ("size", "given")
#: Column-marginal L1 tolerance of every balanced solve of a fit by default: the E-steps are
#: then exact Sinkhorn-EM E-steps to rounding (the fit's iterates agree with E-steps solved to
#: 1e-13 by POT's ``sinkhorn_log`` to ~1e-10), and the EOT loss decreases at every iteration.
DEFAULT_SINKHORN_TOL = 1e-10
#: Tolerance and iteration budget of the balanced solves of :meth:`EOTGaussianMixture.eot_loss`
#: and :meth:`~EOTGaussianMixture.transport_plan`, whatever the fit's own settings.
INFERENCE_SINKHORN_TOL = 1e-12
INFERENCE_SINKHORN_MAX_ITER = 10_000
#: Rows gathered on the client for the default initialisation of a fit to a dask array
#: (k-means++ on a uniform random sample of this many rows; the data stay on the workers).
DASK_INIT_SAMPLE = 100_000
# A rise of the objective beyond this (relative) is more than rounding: the fit warns.
_RISE_RTOL = 1e-10


class EOTGaussianMixture(DensityMixin, BaseEstimator):
    """Gaussian mixture with known mixing weights, fitted by EM, oEM or Sinkhorn-EM.

    Parameters
    ----------
    n_components : int, default=1
        Number of components ``K``.
    weights : array-like of shape (K,), default=None
        Known mixing weights ``alpha`` (positive, summing to 1). ``None`` means uniform.
        For ``method="oem"`` they are only the starting weights.
    method : {"sinkhorn", "em", "oem"}, default="sinkhorn"
        ``"sinkhorn"``: Sinkhorn-EM (balanced E-step, weights fixed); ``"em"``: EM with
        weights fixed (vEM); ``"oem"``: EM re-estimating weights (overparametrised EM).
        An em/oem iteration is one pass over the data (costs, responsibilities and M-step
        sums block by block); a Sinkhorn-EM iteration adds the balanced solve, a few
        matrix-vector passes over the stored kernel (see ``working_memory``).
    covariance_type : {"full", "diag", "spherical", "tied"}, default="full"
    epsilon : float, default=1.0
        Entropic weight. ``1`` gives the likelihood/EOT loss of the paper; other values
        temper the E-step (responsibilities proportional to ``alpha_k exp(-C_ik/eps)``).
        Cost: any ``epsilon != 1`` adds one pass of exponentials per iteration for the
        ``nll`` column of ``history_``.
    tol : float, default=1e-6
        Stop when the objective decreases by less than ``tol``. ``0`` runs exactly
        ``max_iter`` iterations.
    max_iter : int, default=500
        Maximum number of EM iterations (M-steps).
    reg_covar : float, default=1e-6
        Added to the diagonal of every covariance estimate.
    init : {"kmeans", "k-means++", "random_from_data", "random", "hc"}, default="kmeans"
        Initial means: the centres of k-means (Lloyd's algorithm to convergence from a
        k-means++ seeding, :class:`sklearn.cluster.KMeans` with ``n_init=1``, as
        scikit-learn's ``GaussianMixture`` default), the k-means++ seeding alone, random
        data points, or (as scikit-learn's ``"random"``) an M-step on random
        responsibilities. Unless ``covariances_init`` is given, initial covariances come
        from an M-step on the hard assignment of each point to its nearest initial mean
        (the pooled data covariance for a component with fewer than two points).
        ``"hc"``: R mclust's start (``Mclust``/``mclustBIC``): the partition of the
        model-based agglomerative clustering ``hclass(hc(X, modelName=hc_model,
        use="SVD"), K)`` (Fraley 1998; Scrucca et al. 2016;
        :func:`sinkhorn_em._hc.hierarchical_partition`) on ``hc_subset`` random rows when
        ``n`` is larger, then an M-step of ``covariance_type`` on those rows' hard
        partition gives the initial means and covariances (and, for ``method="oem"``
        without ``weights``, the starting weights ``n_k / n``), as ``mclustBIC`` does.
    hc_model : {"VVV", "EEE", "VII", "EII"}, default="VVV"
        Merge criterion of ``init="hc"``. The default is mclust's whatever the fitted
        model (``mclust.options("hcModelName")`` is ``"VVV"``: ``Mclust(X, G, modelNames=
        "EEE")`` starts from the VVV tree).
    hc_subset : int or None, default=2000
        Rows the ``init="hc"`` tree is built on when ``n`` is larger
        (``mclust.options("subset")``; time and memory grow as its square); ``None``: all
        rows. The rows are drawn with ``random_state``.
    weights_pairing : {"size", "given"}, default="size"
        Which initial component gets which known weight. ``"size"``: the initial means
        (with their covariances) are reordered so that the component with the ``j``-th
        largest weight starts at the mean with the ``j``-th largest cell (the points
        nearest to it; ties keep the lower index first). Among all pairings this one
        minimises :math:`\\sum_k |n_k / n - \alpha_{\\pi(k)}|^p` for every
        :math:`p \\ge 1` (monotone rearrangement), and a start whose large cluster gets a
        small weight is a common way to a wrong optimum. Applies to every start: drawn
        (``init``, ``n_init``), given (``means_init``) or batched (:func:`fit_many`); not to
        a ``warm_start`` continuation. Nothing changes for uniform weights. ``"given"``:
        ``means_init[k]`` starts the component of ``weights[k]`` as passed (e.g. a start
        from known or previously fitted parameters).
    n_init : int, default=1
        Number of initialisations; the fit with the lowest final objective is kept.
        Costs ``n_init`` fits; starts of small problems are fitted together, sharing
        their passes over the data (see :func:`fit_many`).
    means_init : array-like of shape (K, d), default=None
        Initial means (overrides ``init``).
    covariances_init : array-like, default=None
        Initial covariances in the layout of ``covariance_type``.
    sinkhorn_tol : float, default=1e-10
        Tolerance on the column marginal's L1 error of every balanced solve of the fit
        (every Sinkhorn-EM E-step, every tracked EOT loss); the rows are exact. The default
        makes every E-step an exact Sinkhorn-EM E-step to rounding, so that the EOT loss
        of the iterates never rises and ``lower_bound_`` is the loss of the returned
        parameters. A larger value is an approximation the user opts into: the M-step
        then uses a plan whose column masses are off by up to ``sinkhorn_tol`` and the
        loss may rise by about that much per iteration (the fit warns when it rises).
        Cost: each tenfold tightening costs about one more pass over the kernel per solve
        once Newton's steps converge quadratically.
    sinkhorn_max_iter : int, default=1000
        Maximum iterations per balanced solve of the fit. An E-step that stops here has
        not reached ``sinkhorn_tol``: the fit warns, and ``converged_`` is False if such an
        E-step decided convergence. :meth:`eot_loss` and :meth:`transport_plan` use their
        own budget (``INFERENCE_SINKHORN_TOL``, ``INFERENCE_SINKHORN_MAX_ITER``).
    sinkhorn_solver : {"newton", "sinkhorn"}, default="newton"
        Algorithm for the balanced solves of the fit (the Sinkhorn-EM E-step and the
        tracked EOT loss): ``"newton"`` keeps Sinkhorn's row update but takes Newton steps
        on the ``K``-dimensional column potential (as
        :func:`~sinkhorn_em.sinkhorn.sinkhorn_newton`), a few passes over the kernel where
        ``"sinkhorn"`` (plain Sinkhorn iterations, one pass each) can need hundreds
        (well-separated components whose known weights differ from their current
        masses). Both stop at the same tolerance and reach the same plan. ``transport_plan``
        and ``eot_loss`` use the corresponding public solver.
    random_state : int, RandomState or None, default=None
    warm_start : bool, default=False
        As scikit-learn's ``GaussianMixture``: if True and the estimator is fitted, the
        next :meth:`fit` starts from the fitted parameters (one start; ``init``,
        ``n_init``, ``means_init`` and ``weights_pairing`` are ignored).
    epsilon_schedule : array-like of float, default=None
        Entropic weights for the first ``len(epsilon_schedule)`` iterations (annealing);
        ``epsilon`` afterwards. The convergence test starts once the schedule is over.
    track_eot_loss : bool, default=False
        For ``em``/``oem``, also solve the balanced problem at every iteration so that
        ``history_`` holds the EOT loss. Cost: one warm-started balanced solve per
        iteration, i.e. the work of a Sinkhorn-EM E-step (about one to two EM iterations);
        to get the EOT loss of the fitted parameters only, call :meth:`eot_loss` once
        after the fit instead.
    keep_trajectory : bool, default=False
        Store the parameters of every iterate in ``trajectory_``. Cost: memory for
        ``K (d^2 + d + 1)`` numbers per iteration.
    verbose : int, default=0
        ``1`` prints one line per initialisation when it stops (converged or not, final
        objective, seconds); ``2`` also prints every ``verbose_interval`` iterations the
        iteration, objective, its change, seconds since the start and the balanced
        solver's iterations (as scikit-learn's ``GaussianMixture``). Negligible cost.
    verbose_interval : int, default=10
        Iterations between two progress lines with ``verbose=2``.
    working_memory : float or None, default=None
        Memory, in MiB, for the ``(n, K)`` kernel that Sinkhorn-EM keeps between the passes
        of a balanced solve (``8 n K`` bytes per start; ``4 n K`` in single-precision
        E-steps, whose sampled Hessians also keep a copy of the kernel's columns of every
        ``r``-th sample they use, ``4 n K / r`` bytes with ``2 <= r <= 8``). Above it the
        kernel is not stored but recomputed from the data block by block in every pass (a
        product with the moment features and an exponential per block), so that memory
        stays ``O(n d^2)`` plus a few MiB of blocks whatever ``n K``, at the price of about
        one EM iteration of work per pass. ``None`` uses scikit-learn's ``working_memory``
        setting (``sklearn.set_config``, default 1024 MiB). em/oem never store an
        ``(n, K)`` array.
    n_jobs : int, default=1
        Threads for the passes over the data (costs, E-step reductions, M-step moment
        sums: block by block of samples); ``-1`` uses every core available to the process.
        The result is the same bit for bit whatever ``n_jobs``: the blocks do not depend on
        it and their partial sums are added in block order. BLAS is held at one thread
        while the fit's threads run (process-wide, through threadpoolctl). It pays once a
        pass has several blocks of ~1 MiB (``n K`` above ~10^5); the Newton steps on the
        ``K x K`` systems and the other per-iteration work outside the passes stay serial.
        Not used for a dask ``X`` (the scheduler's workers run the passes).

    Notes
    -----
    ``fit`` also takes a row-chunked ``dask.array`` (extra ``sinkhorn-em[dask]``): every
    pass is then a map-reduce over its chunks on the current ``distributed`` client (else
    dask's default scheduler), the data never gathered, and the fitted parameters equal the
    in-memory fit's to rounding. ``means_init``/``covariances_init`` work as in memory;
    without them every ``init`` is k-means++ on a uniform random sample of at most
    ``DASK_INIT_SAMPLE`` (100,000) rows, the only rows that reach the client, then the
    covariances around those means by one pass. ``predict``, ``predict_proba``,
    ``score_samples`` and ``transport_plan`` return dask arrays; ``score``, ``eot_loss``,
    ``bic`` and ``aic`` floats.

    Attributes
    ----------
    weights_ : ndarray of shape (K,)
    means_ : ndarray of shape (K, d)
    covariances_ : ndarray
    precisions_cholesky_ : ndarray
    precisions_ : ndarray
        Inverses of ``covariances_`` (scikit-learn layout).
    converged_ : bool
        True when the objective's last change was below ``tol`` and both E-steps whose
        objectives were compared reached ``sinkhorn_tol`` (Sinkhorn-EM).
    n_iter_ : int
        Number of M-steps of the best initialisation.
    lower_bound_ : float
        Objective at the returned parameters (NLL for em/oem, EOT loss for sinkhorn, at
        ``epsilon``), computed by the E-step at those parameters. Note the sign: this is a
        loss to minimise, where scikit-learn's ``lower_bound_`` is a log-likelihood
        (per sample) to maximise.
    history_ : pandas.DataFrame
        One row per iterate ``t = 0..n_iter_`` (``t = 0`` is the initialisation):
        ``iteration``, ``epsilon``, ``objective``, ``nll`` (at eps = 1), ``eot_loss`` (at the
        iteration's eps; NaN for em/oem unless ``track_eot_loss``), ``sinkhorn_iterations``
        (iterations of the balanced solve: Newton steps with the default
        ``sinkhorn_solver``, those on a sample of the rows included), ``seconds`` (wall time since the start of the fit),
        ``sinkhorn_tol`` (the marginal tolerance that iteration's balanced solve was held
        to, see ``sinkhorn_tol="auto"``; NaN without a balanced solve).
    trajectory_ : list of dict or None
        ``{"weights", "means", "covariances"}`` per iterate when ``keep_trajectory``.
    n_features_in_ : int
    """

    def __init__(
        self,
        n_components=1,
        *,
        weights=None,
        method="sinkhorn",
        covariance_type="full",
        epsilon=1.0,
        tol=1e-6,
        max_iter=500,
        reg_covar=1e-6,
        init="kmeans",
        hc_model="VVV",
        hc_subset=2000,
        weights_pairing="size",
        n_init=1,
        means_init=None,
        covariances_init=None,
        sinkhorn_tol=DEFAULT_SINKHORN_TOL,
        sinkhorn_max_iter=1000,
        sinkhorn_solver="newton",
        random_state=None,
        warm_start=False,
        epsilon_schedule=None,
        track_eot_loss=False,
        keep_trajectory=False,
        verbose=0,
        verbose_interval=10,
        working_memory=None,
        n_jobs=1,
    ):
        self.n_components = n_components
        self.weights = weights
        self.method = method
        self.covariance_type = covariance_type
        self.epsilon = epsilon
        self.tol = tol
        self.max_iter = max_iter
        self.reg_covar = reg_covar
        self.init = init
        self.hc_model = hc_model
        self.hc_subset = hc_subset
        self.weights_pairing = weights_pairing
        self.n_init = n_init
        self.means_init = means_init
        self.covariances_init = covariances_init
        self.sinkhorn_tol = sinkhorn_tol
        self.sinkhorn_max_iter = sinkhorn_max_iter
        self.sinkhorn_solver = sinkhorn_solver
        self.random_state = random_state
        self.warm_start = warm_start
        self.epsilon_schedule = epsilon_schedule
        self.track_eot_loss = track_eot_loss
        self.keep_trajectory = keep_trajectory
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.working_memory = working_memory
        self.n_jobs = n_jobs

    # ------------------------------------------------------------------ checks
    def _check_hyperparameters(self):
        K = self.n_components
        if not isinstance(K, (int, np.integer)) or K < 1:
            raise ValueError(f"n_components must be a positive integer, got {K!r}.")
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}.")
        check_covariance_type(self.covariance_type)
        if self.init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {self.init!r}.")
        if self.init == "hc":
            check_hc_options(
                self.hc_model, self.hc_subset, self.n_components, model_name="hc_model", subset_name="hc_subset"
            )
        if self.weights_pairing not in WEIGHTS_PAIRINGS:
            raise ValueError(f"weights_pairing must be one of {WEIGHTS_PAIRINGS}, got {self.weights_pairing!r}.")
        if self.sinkhorn_solver not in SINKHORN_SOLVERS:
            raise ValueError(f"sinkhorn_solver must be one of {SINKHORN_SOLVERS}, got {self.sinkhorn_solver!r}.")
        value = self.sinkhorn_tol
        if isinstance(value, (str, bool)) or not (np.isscalar(value) and np.isfinite(value) and value > 0):
            raise ValueError(
                f"sinkhorn_tol must be a finite number > 0, got {value!r}; the default "
                f"({DEFAULT_SINKHORN_TOL:g}) gives exact Sinkhorn-EM E-steps."
            )
        for name in ("epsilon", "reg_covar", "tol"):
            value = getattr(self, name)
            lower_ok = value > 0 if name == "epsilon" else value >= 0
            if not (np.isscalar(value) and np.isfinite(value) and lower_ok):
                bound = "> 0" if name == "epsilon" else ">= 0"
                raise ValueError(f"{name} must be a finite number {bound}, got {value!r}.")
        for name in ("max_iter", "n_init", "sinkhorn_max_iter", "verbose_interval"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}.")
        if not isinstance(self.verbose, (int, np.integer, bool)) or self.verbose < 0:
            raise ValueError(f"verbose must be an integer >= 0, got {self.verbose!r}.")
        memory = self.working_memory
        if memory is not None and not (np.isscalar(memory) and np.isfinite(memory) and memory > 0):
            raise ValueError(f"working_memory must be a number of MiB > 0 or None, got {memory!r}.")
        check_n_jobs(self.n_jobs)
        schedule = np.asarray([] if self.epsilon_schedule is None else self.epsilon_schedule, dtype=float)
        if schedule.ndim != 1 or not np.all(np.isfinite(schedule)) or np.any(schedule <= 0):
            raise ValueError("epsilon_schedule must be a 1-D sequence of finite numbers > 0.")
        return check_weights(self.weights, K), schedule

    def _options(self, schedule):
        memory = get_config()["working_memory"] if self.working_memory is None else self.working_memory
        return _fit.Options(
            method=self.method,
            covariance_type=self.covariance_type,
            epsilon=float(self.epsilon),
            tol=float(self.tol),
            max_iter=int(self.max_iter),
            reg_covar=float(self.reg_covar),
            sinkhorn_tol=float(self.sinkhorn_tol),
            sinkhorn_max_iter=int(self.sinkhorn_max_iter),
            sinkhorn_solver=self.sinkhorn_solver,
            schedule=schedule,
            track_eot_loss=bool(self.track_eot_loss),
            keep_trajectory=bool(self.keep_trajectory),
            working_memory=float(memory) * 2**20,
            verbose=int(self.verbose),
            verbose_interval=int(self.verbose_interval),
            n_jobs=check_n_jobs(self.n_jobs),
        )

    def _validated_data(self, X, reset=True):
        X = validate_data(self, X, dtype=[np.float64, np.float32], ensure_min_samples=2, reset=reset)
        X = np.asarray(X, dtype=np.float64)
        if X.shape[0] < self.n_components:
            raise ValueError(
                f"Expected n_samples >= n_components but got n_components={self.n_components}, "
                f"n_samples={X.shape[0]}; reduce n_components or provide more data."
            )
        return X

    # ------------------------------------------------------------------ fit
    def fit(self, X, y=None):
        """Fit the mixture to ``X`` (array of shape (n_samples, n_features))."""
        self._fit(X)
        return self

    def fit_predict(self, X, y=None):
        """Fit the mixture to ``X`` and return the most probable component of each sample.

        As scikit-learn's ``GaussianMixture.fit_predict``: the labels are those of
        :meth:`predict` at the fitted parameters.
        """
        return self.predict(self._fit(X))

    def _fit(self, X):
        """Fit to ``X``; returns the validated data (labels are computed only when asked for)."""
        alpha, schedule = self._check_hyperparameters()
        continuing = self.warm_start and hasattr(self, "means_")
        if _dask.is_dask_array(X):
            return self._fit_dask(X, alpha, schedule, continuing)
        X = self._validated_data(X, reset=not continuing)
        design = make_design(X, self.covariance_type)
        if continuing:
            if self.method == "oem":
                alpha = self.weights_
            starts = [(self.means_.copy(), self.covariances_.copy())]
        else:
            rng = check_random_state(self.random_state)
            # The starts draw from the random stream in turn, as n_init sequential fits would.
            starts = [self._initial_parameters(X, design, rng, alpha) for _ in range(self.n_init)]
            if self.method == "oem" and self.weights is None and starts[0][2] is not None:
                # mclust's EM starts from the M-step of the hc partition: proportions n_k / n.
                alpha = np.stack([proportions for _, _, proportions in starts])
            starts = [(means, covariances) for means, covariances, _ in starts]
        self._fit_best(design, alpha, starts, schedule)
        return X

    def _fit_dask(self, X, alpha, schedule, continuing):
        """:meth:`_fit` on a row-chunked dask array: the passes are map-reduces over its chunks.

        The data stay on the workers (those of the current ``distributed`` client, else dask's
        default scheduler): each chunk's design is built and persisted where it is computed,
        and only parameters and ``K``-, ``K x p``- and ``K x K``-sized sums travel
        (:mod:`._dask`). ``means_init``/``covariances_init`` work as in memory. The default
        initialisation (any ``init``) runs k-means++ on a uniform random sample of at most
        ``DASK_INIT_SAMPLE`` rows, the only rows gathered on the client, then the covariances
        around those means by one map-reduce pass. Returns ``X``.
        """
        _dask.check_dask_array(X, self.n_features_in_ if continuing else None)
        if X.shape[0] < self.n_components:
            raise ValueError(
                f"Expected n_samples >= n_components but got n_components={self.n_components}, "
                f"n_samples={X.shape[0]}; reduce n_components or provide more data."
            )
        if not continuing:
            self.n_features_in_ = int(X.shape[1])
            if hasattr(self, "feature_names_in_"):
                del self.feature_names_in_
        design = _dask.DaskDesign(X, self.covariance_type)
        K, d = self.n_components, design.d
        if continuing:
            if self.method == "oem":
                alpha = self.weights_
            starts = [(self.means_.copy(), self.covariances_.copy())]
        else:
            rng = check_random_state(self.random_state)
            starts = []
            for _ in range(self.n_init):
                if self.means_init is not None:
                    means = check_means(self.means_init, K, d).copy()
                else:
                    from sklearn.cluster import kmeans_plusplus

                    sample = _dask.sample_rows(X, DASK_INIT_SAMPLE, rng)
                    means, _ = kmeans_plusplus(sample, K, random_state=rng)
                if self.covariances_init is not None:
                    covariances = self._checked_covariances_init(d)
                else:
                    covariances = _dask.covariances_around(design, means, self.reg_covar)
                if self.weights_pairing == "size" and not np.all(alpha == alpha[0]):
                    order = _order_by_size(_dask.cell_sizes(design, means), alpha)
                    means = means[order]
                    covariances = get_covariance(self.covariance_type).reorder(covariances, order)
                starts.append((means, covariances))
        self._fit_best(design, alpha, starts, schedule)
        return X

    def _fit_best(self, design, alpha, starts, schedule):
        """Run every start (in memory or on Dask: the design decides) and keep the lowest objective."""
        runs = _fit.run_starts(design, alpha, starts, self._options(schedule))
        best = runs[0]
        for run in runs[1:]:
            if run.objective < best.objective:
                best = run
        self._set_fitted(best)

    def _set_fitted(self, run):
        self.weights_, self.means_, self.covariances_ = run.weights, run.means, run.covariances
        self.precisions_cholesky_ = precision_cholesky(self.covariances_, self.covariance_type)
        self.precisions_ = get_covariance(self.covariance_type).precisions(self.precisions_cholesky_)
        self.converged_, self.n_iter_, self.lower_bound_ = run.converged, run.n_iter, run.objective
        self.history_, self.trajectory_ = run.history, run.trajectory
        if run.sinkhorn_failures:
            what = (
                "Sinkhorn E-step(s)"
                if self.method == "sinkhorn"
                else "Sinkhorn solve(s) tracking the EOT loss (history_['eot_loss'] is approximate there; "
                "the fit itself is unaffected)"
            )
            consequence = " converged_ is False." if self.method == "sinkhorn" and not self.converged_ else ""
            warnings.warn(
                f"{run.sinkhorn_failures} {what} stopped at sinkhorn_max_iter="
                f"{self.sinkhorn_max_iter} before reaching sinkhorn_tol={float(self.sinkhorn_tol):g}; "
                "increase sinkhorn_max_iter or epsilon"
                + ("." if self.method == "sinkhorn" else ", or set track_eot_loss=False.")
                + consequence,
                SinkhornConvergenceWarning,
                stacklevel=3,
            )
        if run.largest_rise > _RISE_RTOL:
            warnings.warn(
                f"The objective of {type(self).__name__} ({self.method}) rose by up to {run.largest_rise:.2e} "
                "(relative) between iterations: the E-steps were not exact enough for a descent method; "
                f"decrease sinkhorn_tol (now {float(self.sinkhorn_tol):g}) or increase sinkhorn_max_iter.",
                ConvergenceWarning,
                stacklevel=3,
            )
        distinct = _count_distinct(self.means_)
        if distinct < self.n_components:
            warnings.warn(
                f"Number of distinct components ({distinct}) found smaller than n_components "
                f"({self.n_components}). Possibly due to duplicate points in X; reduce n_components.",
                ConvergenceWarning,
                stacklevel=3,
            )
        if not self.converged_ and self.tol > 0 and self.n_iter_ >= self.max_iter:
            warnings.warn(
                f"{type(self).__name__} ({self.method}) did not converge within max_iter="
                f"{self.max_iter} iterations (tol={self.tol:g}); increase max_iter or tol.",
                ConvergenceWarning,
                stacklevel=3,
            )

    def _initial_parameters(self, X, design, rng, alpha):
        """One start ``(means, covariances, proportions)``, paired with ``alpha`` as ``weights_pairing`` says.

        ``proportions`` is None unless the start estimates them (``init="hc"``: ``n_k / n`` of
        its partition, in the start's component order).
        """
        K, (n, d) = self.n_components, X.shape
        covariances = proportions = None
        if self.means_init is not None:
            means = check_means(self.means_init, K, d).copy()
        elif self.init == "kmeans":
            from sklearn.cluster import KMeans

            means = KMeans(n_clusters=K, n_init=1, random_state=rng).fit(X).cluster_centers_
        elif self.init == "k-means++":
            from sklearn.cluster import kmeans_plusplus

            means, _ = kmeans_plusplus(X, K, random_state=rng)
        elif self.init == "random_from_data":
            means = X[rng.choice(n, size=K, replace=False)].copy()
        elif self.init == "hc":
            rows, labels = hierarchical_subset_partition(X, K, self.hc_model, self.hc_subset, rng)
            resp = np.zeros((labels.size, K))
            resp[np.arange(labels.size), labels] = 1.0
            nk, means, covariances = estimate_gaussian_parameters(
                X if rows is None else X[rows], resp, self.reg_covar, self.covariance_type
            )
            proportions = nk / nk.sum()
        else:  # "random": an M-step on random responsibilities, as scikit-learn does
            # Drawn block by block: the same numbers as one (n, K) draw, without the array.
            stats = None
            for cols in sample_blocks(n, K):
                resp = rng.uniform(size=(cols.stop - cols.start, K))
                resp /= resp.sum(axis=1, keepdims=True)
                part = design.statistics(resp.T[None], cols)
                stats = part if stats is None else stats + part
            _, means, covariances = design.parameters(stats, self.reg_covar)
            means, covariances = means[0], covariances[0]
        if self.covariances_init is not None:
            covariances = self._checked_covariances_init(d)
        elif covariances is None:
            covariances = _fit.covariances_around(design, X, means, self.reg_covar)
        if self.weights_pairing == "size":
            order = pairing_by_size(X, means, alpha)
            means = means[order]
            covariances = get_covariance(self.covariance_type).reorder(covariances, order)
            proportions = None if proportions is None else proportions[order]
        return means, covariances, proportions

    def _checked_covariances_init(self, d):
        return check_covariances(self.covariances_init, self.covariance_type, self.n_components, d).copy()

    # ------------------------------------------------------------------ balanced problems
    def _balanced(self, cost, weights, eps):
        """The balanced problem of :meth:`eot_loss` and :meth:`transport_plan`, to its own tolerance."""
        return balanced_value(
            cost,
            weights,
            eps,
            tol=INFERENCE_SINKHORN_TOL,
            max_iter=INFERENCE_SINKHORN_MAX_ITER,
            warn=True,
            solver=self.sinkhorn_solver,
            n_jobs=self.n_jobs,
        )

    # ------------------------------------------------------------------ inference
    def _cost(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        return gaussian_cost(
            np.asarray(X, dtype=np.float64),
            self.means_,
            self.covariances_,
            self.covariance_type,
            prec_chol=self.precisions_cholesky_,
        )

    def _dask_rows(self, X, method, n_columns):
        """The in-memory ``method`` on every row chunk of a dask array ``X``: a dask array.

        ``method`` is a method's name, or a function of a chunk's ``(B, K)`` costs. The fitted
        estimator travels to the workers with the task (its parameters are small).
        """
        check_is_fitted(self)
        _dask.check_dask_array(X, self.n_features_in_, min_samples=1)

        def block(chunk):
            chunk = np.asarray(chunk, dtype=np.float64)
            if callable(method):
                return method(self._cost(chunk))
            return getattr(self, method)(chunk)

        return _dask.map_rows(X, block, n_columns)

    def _log_joint(self, X):
        """``log w_k - C_ik = log w_k N(x_i; mu_k, Sigma_k)``, ``(n, K)``."""
        log_joint = self._cost(X)
        np.subtract(np.log(self.weights_)[None, :], log_joint, out=log_joint)
        return log_joint

    def score_samples(self, X):
        """Log-density ``log sum_k w_k N(x; mu_k, Sigma_k)`` of each sample (a dask array for a dask ``X``)."""
        if _dask.is_dask_array(X):
            return self._dask_rows(X, "score_samples", None)
        return _log_sum_exp_rows(self._log_joint(X))

    def score(self, X, y=None):
        """Mean log-likelihood of ``X`` under the fitted mixture (a float, for a dask ``X`` too)."""
        scores = self.score_samples(X)
        return float(scores.mean().compute() if _dask.is_dask_array(X) else scores.mean())

    def predict_proba(self, X):
        """Posterior probabilities ``P(component k | x_i)`` under ``weights_`` (rows sum to 1).

        A dask array for a dask ``X`` (computed chunk by chunk where the chunks are).
        """
        if _dask.is_dask_array(X):
            return self._dask_rows(X, "predict_proba", self.n_components)
        log_joint = self._log_joint(X)
        log_joint -= _log_sum_exp_rows(log_joint)[:, None]
        return np.exp(log_joint, out=log_joint)

    def predict(self, X):
        """Most probable component of each sample (the largest ``log w_k N(x; mu_k, Sigma_k)``; dask for dask)."""
        if _dask.is_dask_array(X):
            return self._dask_rows(X, "predict", None)
        return self._log_joint(X).argmax(axis=1)

    def _dask_potential(self, X):
        """Column potential and EOT loss of the balanced problem of a dask ``X`` at the fitted parameters."""
        check_is_fitted(self)
        _dask.check_dask_array(X, self.n_features_in_)
        design = _dask.DaskDesign(X, self.covariance_type)
        g, ratio, value, solved = _dask.balanced_potential(
            design,
            self.means_,
            self.covariances_,
            self.weights_,
            float(self.epsilon),
            INFERENCE_SINKHORN_TOL,
            INFERENCE_SINKHORN_MAX_ITER,
        )
        if not solved:
            warnings.warn(
                f"The balanced solve stopped at {INFERENCE_SINKHORN_MAX_ITER} iterations before reaching "
                f"{INFERENCE_SINKHORN_TOL:g}; increase epsilon.",
                SinkhornConvergenceWarning,
                stacklevel=3,
            )
        return g, ratio, value, design.n

    def transport_plan(self, X):
        """Balanced plan (rows 1/n, columns ``weights_``) between ``X`` and the components.

        For a dask ``X``: a dask array, ``P_ik = (1/n) q_ik alpha_k / c_k`` with ``q_ik``
        proportional to ``alpha_k e^{g_k - C_ik / eps}`` (rows summing to 1) at the column
        potential ``g`` of a balanced solve at the fitted parameters (:mod:`._dask`, to
        ``INFERENCE_SINKHORN_TOL``), ``c`` its column masses: the last column step makes
        the columns exact, as in memory.
        """
        if _dask.is_dask_array(X):
            g, ratio, _, n = self._dask_potential(X)
            log_weights = np.log(self.weights_)[None, :] + g[None, :]
            eps = float(self.epsilon)

            def plan(cost):
                logits = log_weights - cost / eps
                logits -= _log_sum_exp_rows(logits)[:, None]
                return np.exp(logits) * (ratio / n)[None, :]

            return self._dask_rows(X, plan, self.n_components)
        _, result = self._balanced(self._cost(X), self.weights_, float(self.epsilon))
        return result.plan

    def eot_loss(self, X):
        """EOT loss of ``X`` at the fitted parameters (entropic weight ``epsilon``); a float."""
        if _dask.is_dask_array(X):
            return self._dask_potential(X)[2]
        value, _ = self._balanced(self._cost(X), self.weights_, float(self.epsilon))
        return value

    def _n_parameters(self):
        K, d = self.means_.shape
        free_weights = K - 1 if self.method == "oem" else 0
        return free_weights + K * d + n_covariance_parameters(K, d, self.covariance_type)

    def bic(self, X):
        """Bayesian information criterion ``-2 log L + p log n``.

        Known weights (``em``, ``sinkhorn``) are not counted as free parameters.
        """
        X = X if _dask.is_dask_array(X) else np.asarray(X)
        return -2.0 * self.score(X) * X.shape[0] + self._n_parameters() * np.log(X.shape[0])

    def aic(self, X):
        """Akaike information criterion ``-2 log L + 2 p`` (parameters counted as in :meth:`bic`)."""
        X = X if _dask.is_dask_array(X) else np.asarray(X)
        return -2.0 * self.score(X) * X.shape[0] + 2.0 * self._n_parameters()

    def sample(self, n_samples=1):
        """Draw ``n_samples`` points from the fitted mixture, as scikit-learn's ``GaussianMixture.sample``.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        y : ndarray of shape (n_samples,)
            The component of each sample.
        """
        check_is_fitted(self)
        if not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
            raise ValueError(f"n_samples must be an integer >= 1, got {n_samples!r}.")
        rng = check_random_state(self.random_state)
        counts = rng.multinomial(n_samples, self.weights_)
        covariance = get_covariance(self.covariance_type)
        parts = [
            covariance.sample_component(rng, mean, self.covariances_, k, int(count))
            for k, (mean, count) in enumerate(zip(self.means_, counts))
        ]
        labels = np.repeat(np.arange(self.n_components), counts)
        return np.vstack(parts), labels


def _order_by_size(sizes, weights):
    """The order of :func:`pairing_by_size` from the cell sizes."""
    order = np.empty(weights.size, dtype=int)
    order[np.argsort(-weights, kind="stable")] = np.argsort(-np.asarray(sizes), kind="stable")
    return order


def _log_sum_exp_rows(values):
    """``log sum_k exp(values[i, k])`` per row, against each row's maximum (finite rows)."""
    top = values.max(axis=1)
    return top + np.log(np.exp(values - top[:, None]).sum(axis=1))


def pairing_by_size(X, means, weights):
    """Order of ``means`` that pairs the ``j``-th largest weight with the ``j``-th largest cell.

    The cell of a mean is the set of points nearest to it (Euclidean). Returns ``order``
    such that ``means[order][k]`` starts the component of ``weights[k]``; the identity for
    uniform weights. Equal sizes or weights keep the lower index first (a stable sort).
    """
    weights = np.asarray(weights, dtype=float)
    K = weights.size
    if np.all(weights == weights[0]):
        return np.arange(K)
    sizes = np.zeros(K, dtype=np.int64)
    squared_means = np.einsum("kd,kd->k", means, means)
    for cols in sample_blocks(X.shape[0], K):
        labels = (squared_means[None, :] - 2.0 * X[cols] @ means.T).argmin(axis=1)
        sizes += np.bincount(labels, minlength=K)
    order = np.empty(K, dtype=int)
    order[np.argsort(-weights, kind="stable")] = np.argsort(-sizes, kind="stable")
    return order


def _count_distinct(means, rtol=1e-8):
    """Number of distinct rows of ``means`` (equal within ``rtol`` of the largest coordinate)."""
    scale = rtol * max(1.0, float(np.abs(means).max()))
    distinct = []
    for mean in means:
        if not any(np.abs(mean - other).max() <= scale for other in distinct):
            distinct.append(mean)
    return len(distinct)


def fit_many(estimator, X, means_init, covariances_init=None):
    """Fit ``estimator`` from several starts at once; one fitted copy per start.

    Equivalent to fitting ``clone(estimator).set_params(means_init=means_init[s],
    covariances_init=covariances_init[s])`` for every ``s`` (the same iterations and
    results, to rounding: each start's arithmetic does not depend on the others), but small
    problems share their passes over the data, which divides the per-iteration overhead of
    many small fits by the number of starts batched together.

    Parameters
    ----------
    estimator : EOTGaussianMixture
        Settings of every fit (``means_init``, ``covariances_init`` and ``n_init`` are
        ignored).
    X : array-like of shape (n_samples, n_features)
    means_init : array-like of shape (n_starts, K, d)
    covariances_init : array-like of shape (n_starts, ...) or None
        Initial covariances per start, in the layout of ``covariance_type``; ``None``
        gives each start the estimator's default (covariances around its initial means).

    Returns
    -------
    list of EOTGaussianMixture
        Fitted clones of ``estimator`` in the order of the starts.
    """
    if _dask.is_dask_array(X):
        raise TypeError(
            "fit_many takes an in-memory array; for a dask array, fit one estimator per start "
            "(EOTGaussianMixture(means_init=...).fit(X)), each pass a map-reduce over its chunks."
        )
    means_init = np.asarray(means_init, dtype=float)
    if means_init.ndim != 3:
        raise ValueError(f"means_init must have shape (n_starts, n_components, n_features), got {means_init.shape}.")
    count = means_init.shape[0]
    if covariances_init is not None and len(covariances_init) != count:
        raise ValueError(
            f"covariances_init must hold one covariance set per start ({count}), got {len(covariances_init)}."
        )
    models = [
        clone(estimator).set_params(
            means_init=means_init[s],
            covariances_init=None if covariances_init is None else np.asarray(covariances_init[s], dtype=float),
            n_init=1,
        )
        for s in range(count)
    ]
    if not models:
        return []
    first = models[0]
    alpha, schedule = first._check_hyperparameters()
    X = first._validated_data(X)
    design = make_design(X, first.covariance_type)
    starts = [model._initial_parameters(X, design, None, alpha)[:2] for model in models]
    runs = _fit.run_starts(design, alpha, starts, first._options(schedule))
    for model, run in zip(models, runs):
        for name in ("n_features_in_", "feature_names_in_"):
            if hasattr(first, name):
                setattr(model, name, getattr(first, name))
        model._set_fitted(run)
    return models


# Keep free_energy importable from here for users reading the maths next to the loop.
__all__ += ["fit_many", "free_energy"]
