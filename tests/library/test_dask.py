"""The Dask backend on a real ``distributed.LocalCluster`` (two worker processes): the in-memory fit is the reference.

Every fit here is compared with the in-memory fit of the same estimator from the same
``means_init``/``covariances_init`` on the same data (itself checked against scikit-learn,
POT and direct formulas elsewhere). The data are cut into uneven row chunks, so a chunk's
partial sums are neither a block's nor each other's.

Needs the ``dask`` extra: skipped without it, except under ``CI=true`` (or
``SINKHORN_EM_REQUIRE_DASK=1``), where a missing extra fails, so CI cannot pass by silently
not testing the backend.
"""

from __future__ import annotations

import os
import threading
import warnings

import numpy as np
import pytest

from sinkhorn_em import EOTGaussianMixture, _fit
from sinkhorn_em import _dask as dask_backend
from sinkhorn_em._design import make_design

pytestmark = pytest.mark.xdist_group("dask")

COVARIANCE_TYPES = ["full", "diag", "spherical", "tied"]
K, D, N = 3, 3, 901
CHUNKS = (137, 400, 364)  # uneven
# Tight enough that the balanced E-steps of both backends are the exact plan to rounding.
TIGHT = 1e-12


def _dask_required() -> bool:
    explicit = os.environ.get("SINKHORN_EM_REQUIRE_DASK")
    if explicit is not None:
        return explicit == "1"
    return os.environ.get("CI", "").lower() == "true"


@pytest.fixture(scope="module")
def client():
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError as error:
        reason = f"the dask extra is not installed ({error}); pip install 'sinkhorn-em[dask]'"
        if _dask_required():
            pytest.fail(f"Dask is required here (CI or SINKHORN_EM_REQUIRE_DASK=1) but {reason}")
        pytest.skip(reason)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cluster = LocalCluster(
            n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None, silence_logs=40
        )
        with Client(cluster) as client:
            yield client
        cluster.close()


def mixture_data(seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=3.0, size=(K, D))
    labels = rng.choice(K, size=N, p=[0.5, 0.3, 0.2])
    return centres, centres[labels] + rng.normal(size=(N, D))


def as_dask(X, chunks=CHUNKS):
    import dask.array as da

    return da.from_array(X, chunks=(chunks, (X.shape[1],)))


def quiet_fit(estimator, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return estimator.fit(X)


def params(method, covariance_type, weights, **extra):
    centres, _ = mixture_data()
    return {
        **dict(
            n_components=K,
            method=method,
            covariance_type=covariance_type,
            weights=None if weights == "free" else np.array([0.5, 0.3, 0.2]),
            means_init=centres + 0.4,
            sinkhorn_tol=TIGHT,
            tol=0.0,  # exactly max_iter iterations on both backends: no stopping decided by rounding
            max_iter=8,
        ),
        **extra,
    }


def assert_close_fit(a, b, atol=1e-10):
    for name in ("weights_", "means_", "covariances_"):
        np.testing.assert_allclose(getattr(b, name), getattr(a, name), rtol=0, atol=atol, err_msg=name)
    assert b.n_iter_ == a.n_iter_
    assert abs(b.lower_bound_ - a.lower_bound_) <= atol


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("method", ["em", "oem", "sinkhorn"])
def test_fit_equals_the_in_memory_fit(client, method, covariance_type):
    _, X = mixture_data()
    # Known weights, and free weights for oEM ("free" = uniform start for em/sinkhorn).
    for weights in ("given", "free"):
        kw = params(method, covariance_type, weights, epsilon=0.8 if covariance_type == "tied" else 1.0)
        reference = quiet_fit(EOTGaussianMixture(**kw), X)
        distributed = quiet_fit(EOTGaussianMixture(**kw), as_dask(X))
        assert_close_fit(reference, distributed)
        assert distributed.converged_ == reference.converged_
        if method == "sinkhorn":
            # Newton with the exact Hessian: as few iterations per E-step as the in-memory Newton
            # solver (within a factor 2); a wrong Hessian still converges, but linearly.
            steps, reference_steps = (m.history_["sinkhorn_iterations"].max() for m in (distributed, reference))
            assert steps <= 2 * reference_steps


def test_covariances_init_and_default_init(client):
    centres, X = mixture_data(1)
    kw = params("sinkhorn", "full", "given", covariances_init=np.stack([np.eye(D) * 1.5] * K))
    assert_close_fit(quiet_fit(EOTGaussianMixture(**kw), X), quiet_fit(EOTGaussianMixture(**kw), as_dask(X)))
    # The default initialisation on a dask array: k-means++ on a gathered sample, the covariances
    # around those means by a map-reduce pass: the same covariances as in memory, then the same fit.
    kw = dict(
        n_components=K,
        weights=[0.5, 0.3, 0.2],
        random_state=0,
        max_iter=5,
        tol=0.0,
        keep_trajectory=True,
        sinkhorn_tol=TIGHT,
    )
    model = quiet_fit(EOTGaussianMixture(**kw), as_dask(X))
    start = model.trajectory_[0]
    design = make_design(X, "full")
    np.testing.assert_allclose(
        start["covariances"], _fit.covariances_around(design, X, start["means"], 1e-6), rtol=1e-12, atol=1e-14
    )
    sizes = np.bincount(np.linalg.norm(X[:, None] - start["means"][None], axis=2).argmin(axis=1), minlength=K)
    assert np.all(np.diff(sizes) <= 0)  # paired by size: the largest weight starts at the largest cell
    in_memory = quiet_fit(
        EOTGaussianMixture(**kw, means_init=start["means"], covariances_init=start["covariances"]).set_params(
            weights_pairing="given"
        ),
        X,
    )
    assert_close_fit(in_memory, model)


def test_inference_returns_dask_arrays_equal_to_in_memory(client):
    import dask.array as da

    _, X = mixture_data(2)
    kw = params("sinkhorn", "diag", "given")
    model = quiet_fit(EOTGaussianMixture(**kw), X)
    Xd = as_dask(X)
    for name in ("predict", "predict_proba", "transport_plan", "score_samples"):
        lazy = getattr(model, name)(Xd)
        assert isinstance(lazy, da.Array), name
        np.testing.assert_allclose(lazy.compute(), getattr(model, name)(X), rtol=1e-9, atol=1e-13, err_msg=name)
    plan = model.transport_plan(Xd).compute()
    # The balanced plan's marginals: rows 1/n (to the inference tolerance), columns alpha (exact).
    assert np.abs(plan.sum(axis=1) - 1.0 / N).sum() <= 1e-11
    np.testing.assert_allclose(plan.sum(axis=0), model.weights_, rtol=1e-13)
    assert isinstance(model.score(Xd), float) and abs(model.score(Xd) - model.score(X)) < 1e-12
    assert isinstance(model.eot_loss(Xd), float) and abs(model.eot_loss(Xd) - model.eot_loss(X)) < 1e-10


def test_balanced_estep_marginals(client):
    """The Dask E-step's plan: rows 1/n and columns alpha, its objective the semi-dual at the solution."""
    centres, X = mixture_data(3)
    alpha = np.array([0.6, 0.3, 0.1])  # far from the data's proportions: a real balancing
    design = dask_backend.DaskDesign(as_dask(X), "full")
    covariances = np.stack([np.eye(D)] * K)
    g, ratio, value, solved = dask_backend.balanced_potential(design, centres, covariances, alpha, 1.0, TIGHT, 100)
    assert solved
    model = EOTGaussianMixture(n_components=K, weights=alpha, covariance_type="full")
    model.weights_, model.means_, model.covariances_ = alpha, centres, covariances
    from sinkhorn_em.gaussian import precision_cholesky

    model.precisions_cholesky_ = precision_cholesky(covariances, "full")
    model.n_features_in_ = D
    plan = model.transport_plan(as_dask(X)).compute()
    assert np.abs(plan.sum(axis=1) - 1.0 / N).sum() <= 10 * TIGHT
    np.testing.assert_allclose(plan.sum(axis=0), alpha, rtol=1e-12)
    assert abs(value - model.eot_loss(X)) < 1e-10


def test_bad_input_gives_clear_errors(client):
    _, X = mixture_data()
    bad = X.copy()
    bad[600, 1] = np.nan
    with pytest.raises(ValueError, match="NaN or infinity in chunk 2 .*row 600"):
        EOTGaussianMixture(n_components=K, means_init=X[:K]).fit(as_dask(bad))
    import dask.array as da

    with pytest.raises(ValueError, match="chunked along its columns.*rechunk"):
        EOTGaussianMixture(n_components=K).fit(da.from_array(X, chunks=(300, 1)))
    with pytest.raises(ValueError, match="length n_components=3"):
        EOTGaussianMixture(n_components=K, weights=[0.5, 0.5]).fit(as_dask(X))
    model = quiet_fit(EOTGaussianMixture(**params("em", "full", "given")), X)
    with pytest.raises(ValueError, match="2 features, but the estimator was fitted with 3"):
        model.predict(as_dask(X[:, :2]))


def test_a_worker_killed_mid_fit_does_not_change_the_result(client, monkeypatch):
    """A worker process dies after the first iterations; the nanny restarts it and Dask recomputes
    the lost chunk designs from the graph: the fit ends as the in-memory fit does."""
    _, X = mixture_data(4)
    kw = params("sinkhorn", "full", "given", max_iter=10)
    reference = quiet_fit(EOTGaussianMixture(**kw), X)
    original = dask_backend.DaskDesign.map_reduce
    calls = {"count": 0}
    victim = sorted(client.scheduler_info()["workers"])[0]
    killed = threading.Event()

    def map_reduce(self, function, *args):
        calls["count"] += 1
        if calls["count"] == 6:
            # os._exit never answers: run it from a thread, whose call fails when the worker dies.
            def kill():
                try:
                    client.run(os._exit, 1, workers=[victim])
                except Exception:
                    pass
                killed.set()

            threading.Thread(target=kill, daemon=True).start()
        return original(self, function, *args)

    monkeypatch.setattr(dask_backend.DaskDesign, "map_reduce", map_reduce)
    distributed = quiet_fit(EOTGaussianMixture(**kw), as_dask(X))
    assert killed.wait(30)
    assert_close_fit(reference, distributed)
    client.wait_for_workers(2, timeout=60)
    assert victim not in client.scheduler_info()["workers"]  # it did die (the nanny started a new one)


def test_many_dimensions_loop_design(client):
    """Full covariances above d = 16 (one product per component instead of moment features)."""
    rng = np.random.default_rng(5)
    centres = rng.normal(scale=3.0, size=(K, 17))
    X = centres[rng.integers(K, size=N)] + rng.normal(size=(N, 17))
    kw = dict(n_components=K, method="sinkhorn", means_init=centres + 0.2, sinkhorn_tol=TIGHT, tol=0.0, max_iter=4)
    assert_close_fit(quiet_fit(EOTGaussianMixture(**kw), X), quiet_fit(EOTGaussianMixture(**kw), as_dask(X)))


def test_missing_dask_names_the_extra(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "dask", None)
    with pytest.raises(ImportError, match=r"pip install 'sinkhorn-em\[dask\]'"):
        dask_backend.import_dask()


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # the objective's rises: expected
def test_unsolved_estep_keeps_converged_honest(client):
    """E-steps cut at sinkhorn_max_iter are not solved: the fit warns and converged_ is False, as in memory."""
    from sinkhorn_em.sinkhorn import SinkhornConvergenceWarning

    _, X = mixture_data(6)
    kw = params("sinkhorn", "full", "given", sinkhorn_max_iter=1, tol=1e-3, max_iter=30)
    for data in (X, as_dask(X)):
        with pytest.warns(SinkhornConvergenceWarning, match="stopped at sinkhorn_max_iter=1"):
            model = EOTGaussianMixture(**kw).fit(data)
        assert not model.converged_


def test_repeated_fits_are_bit_identical(client):
    """Partial sums added in chunk order, whichever worker finishes first: the same fit bit for bit."""
    _, X = mixture_data(7)
    kw = params("sinkhorn", "full", "given")
    first, second = (quiet_fit(EOTGaussianMixture(**kw), as_dask(X)) for _ in range(2))
    for name in ("means_", "covariances_"):
        assert np.array_equal(getattr(first, name), getattr(second, name)), name
    assert first.lower_bound_ == second.lower_bound_


def test_estep_across_a_large_cost_gap_equals_the_in_memory_fit(client):
    """The right-by-default problem whose E-steps pull samples across ~7,000 nats
    (test_right_by_default's large-cost-gap test): half the mass known to sit in a tight component
    40 sigma away from 90% of the samples. Sinkhorn's steps move the far component's potential about
    a nat each and Newton's are capped, so without the loose-group root every E-step stops at
    sinkhorn_max_iter; the Dask fit must solve every E-step and end as the in-memory fit does."""
    from sklearn.exceptions import ConvergenceWarning

    from sinkhorn_em.sinkhorn import SinkhornConvergenceWarning

    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(0.0, 1.0, (540, 2)), rng.normal(40.0, 0.3, (60, 2))])
    kw = dict(
        n_components=2,
        method="sinkhorn",
        weights=np.array([0.5, 0.5]),
        means_init=np.array([[0.0, 0.0], [40.0, 40.0]]),
        covariances_init=np.stack([np.eye(2), 0.09 * np.eye(2)]),
        weights_pairing="given",
        sinkhorn_tol=TIGHT,
        sinkhorn_max_iter=100,  # either backend needs at most 6; a stalled one fails in seconds
        tol=0.0,
        max_iter=8,
    )
    fits = []
    # Uneven chunks, the far samples (rows 540-599) split between the last two.
    for data in (X, as_dask(X, chunks=(250, 320, 30))):
        with warnings.catch_warnings():
            warnings.simplefilter("error", ConvergenceWarning)
            warnings.simplefilter("error", SinkhornConvergenceWarning)
            fits.append(EOTGaussianMixture(**kw).fit(data))
    reference, distributed = fits
    assert reference.history_["objective"].iloc[0] > 1000.0  # the start really is that far from balanced
    # As few balanced iterations as in memory (within a factor 2): the next E-step's warm start, thousands
    # of nats off for the moved parameters, gives way to the plain start (without it: 34 iterations).
    steps, reference_steps = (m.history_["sinkhorn_iterations"].max() for m in (distributed, reference))
    assert steps <= 2 * reference_steps
    assert_close_fit(reference, distributed)


@pytest.mark.parametrize("method", ["em", "oem", "sinkhorn"])
def test_warm_start_continues_the_previous_fit_as_in_memory(client, method):
    """warm_start=True on a dask array: the second fit starts from the first one's parameters, as in
    memory (and oEM from its weights): 4 + 4 iterations on each backend end where the in-memory 4 + 4
    end, and where one fit of 8 does (the E-steps are solved to TIGHT: the potentials they restart
    from change only their cost)."""
    _, X = mixture_data(8)
    kw = params(method, "full", "given", max_iter=4, warm_start=True)
    models = []
    for data in (X, as_dask(X)):
        model = EOTGaussianMixture(**kw)
        quiet_fit(model, data)
        first = model.means_.copy()
        quiet_fit(model, data)
        assert np.abs(model.means_ - first).max() > 1e-6  # it moved on from the first fit
        models.append(model)
    assert_close_fit(*models)
    eight = quiet_fit(EOTGaussianMixture(**{**kw, "max_iter": 8, "warm_start": False}), X)
    for name in ("weights_", "means_", "covariances_"):
        np.testing.assert_allclose(getattr(models[1], name), getattr(eight, name), rtol=0, atol=1e-10, err_msg=name)


def test_group_root_solves_the_in_memory_root_equation(client):
    """group_roots (logits kept on the workers, a bracket by counts, Newton on map-reduced masses)
    finds the root of the in-memory equation ``mean_i expit(c + l_i) = target`` that
    _balanced._sigmoid_root solves by brentq on the gathered logits: for the far component of the
    large-cost-gap problem (a root thousands of nats away, every logit beyond the kernel's floor on
    one side) and for groups of overlapping components (logits of a few nats)."""
    from scipy import special

    from sinkhorn_em._balanced import _sigmoid_root

    rng = np.random.default_rng(0)
    gap = np.concatenate([rng.normal(0.0, 1.0, (540, 2)), rng.normal(40.0, 0.3, (60, 2))])
    centres, mixed = mixture_data(9)
    cases = [
        (gap, (250, 320, 30), np.array([[0.0, 0.0], [40.0, 40.0]]), np.stack([np.eye(2), 0.09 * np.eye(2)]), [1]),
        (mixed, CHUNKS, centres + 0.4, np.stack([np.eye(D)] * K), [2]),
        (mixed, CHUNKS, centres + 0.4, np.stack([np.eye(D)] * K), [0, 2]),
    ]
    for X, chunks, means, covariances, group in cases:
        K_ = means.shape[0]
        log_weights = np.log(np.full((1, K_), 1.0 / K_))
        mask = np.isin(np.arange(K_), group)
        memory = make_design(X, "full")
        block = memory.log_kernel(
            memory.log_kernel_coefficients(memory.coefficients(means[None], covariances[None]), log_weights, 1.0),
            slice(0, X.shape[0]),
        )[0]
        logits = special.logsumexp(block[mask], axis=0) - special.logsumexp(block[~mask], axis=0)
        design = dask_backend.DaskDesign(as_dask(X, chunks=chunks), "full")
        log_joint = design.log_kernel_coefficients(
            design.coefficients(means[None], covariances[None]), log_weights, 1.0
        )
        for target in (0.2, 0.5, 0.9):
            (root,) = dask_backend.group_roots(design, log_joint, np.array([0]), mask[None], np.array([target]))
            expected = _sigmoid_root(logits, np.full(X.shape[0], 1.0 / X.shape[0]), target)
            if X is gap:
                assert root > 1000.0  # thousands of nats away (the far 10% of the samples must carry more)
            assert abs(root - expected) <= 2e-8 * max(1.0, abs(expected))
            assert abs(special.expit(root + logits).mean() - target) <= 1e-9
