"""``n_jobs``: the block passes on threads give the same fit, bit for bit, as one thread.

The reference is the single-threaded fit of the same estimator (itself checked against
scikit-learn, POT and direct formulas elsewhere). Cases with more than four blocks per pass
are the ones where a reduction in completion order instead of block order would show.
"""

from __future__ import annotations

import threading
import warnings

import numpy as np
import pytest
from sklearn.base import clone

from sinkhorn_em import EOTGaussianMixture
from sinkhorn_em._balanced import sample_blocks
from sinkhorn_em._parallel import Workers
from sinkhorn_em.mixture import fit_many
from sinkhorn_em.sinkhorn import sinkhorn_log, sinkhorn_newton

COVARIANCE_TYPES = ["full", "diag", "spherical", "tied"]
# (n, K): one block, and many blocks (a pass's blocks hold ~1 MiB of the (K, n) kernel).
SIZES = [(600, 3), (14_000, 40)]


def mixture_data(n, K, d=3, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=4.0, size=(K, d))
    return centres[rng.integers(K, size=n)] + rng.normal(size=(n, d))


def fitted(**params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return EOTGaussianMixture(**params)


def fit(estimator, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return estimator.fit(X)


def assert_same_fit(a, b):
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert a.lower_bound_ == b.lower_bound_ and a.n_iter_ == b.n_iter_ and a.converged_ == b.converged_
    columns = [c for c in a.history_.columns if c != "seconds"]
    assert np.array_equal(a.history_[columns].to_numpy(float), b.history_[columns].to_numpy(float), equal_nan=True)


def test_the_large_cases_have_many_blocks():
    n, K = SIZES[-1]
    assert len(sample_blocks(n, K)) > 4


@pytest.mark.parametrize("n, K", SIZES)
@pytest.mark.parametrize("weights", ["uniform", "given"])
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("method", ["em", "oem", "sinkhorn"])
def test_fit_is_bit_identical_whatever_n_jobs(method, covariance_type, weights, n, K):
    X = mixture_data(n, K, seed=K + n % 7)
    alpha = None if weights == "uniform" else np.arange(1, K + 1) / (K * (K + 1) / 2)
    params = dict(
        n_components=K,
        method=method,
        covariance_type=covariance_type,
        weights=alpha,
        max_iter=3 if K > 3 else 20,
        random_state=1,
        # A second start (batched passes) and, for em/oem, the tracked EOT loss's balanced solve.
        n_init=2 if covariance_type in ("full", "tied") else 1,
        track_eot_loss=method != "sinkhorn" and covariance_type == "diag",
        # Sinkhorn-EM's kernel recomputed in every pass (1 MiB budget) as well as stored.
        working_memory=1.0 if covariance_type == "spherical" else None,
        epsilon=0.7 if covariance_type == "tied" else 1.0,
    )
    reference = fit(fitted(**params, n_jobs=1), X)
    # Large case: 3 threads over 5 blocks (uneven shares, more threads than CI's 2 cores);
    # small case: 2 and "all cores".
    for n_jobs in (3,) if n > 1000 else (2, -1):
        assert_same_fit(fit(fitted(**params, n_jobs=n_jobs), X), reference)


@pytest.mark.parametrize("method", ["em", "sinkhorn"])
def test_fit_above_sixteen_dimensions_is_bit_identical(method):
    # Full covariances in d > 16 loop over components (another design of the costs).
    X = mixture_data(6000, 12, d=18, seed=3)
    params = dict(n_components=12, method=method, max_iter=3, random_state=0)
    assert_same_fit(fit(fitted(**params, n_jobs=2), X), fit(fitted(**params), X))


def test_fit_many_and_clone_keep_n_jobs():
    X = mixture_data(20_000, 40, seed=2)
    rng = np.random.default_rng(0)
    starts = X[rng.choice(X.shape[0], size=(2, 40), replace=False)]
    base = fitted(n_components=40, max_iter=3)
    threaded = clone(base.set_params(n_jobs=2))
    assert threaded.get_params()["n_jobs"] == 2 and EOTGaussianMixture().get_params()["n_jobs"] == 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        one = fit_many(fitted(n_components=40, max_iter=3, n_jobs=1), X, starts)
        two = fit_many(threaded, X, starts)
    for a, b in zip(one, two):
        assert b.n_jobs == 2
        assert_same_fit(a, b)


@pytest.mark.parametrize("solver", [sinkhorn_log, sinkhorn_newton])
def test_public_solvers_are_bit_identical_when_a_column_mass_underflows(solver):
    # Column 2 costs at least 1 more than column 0: at eps = 1e-3 its mass underflows and the
    # solver takes log-domain column steps, over many blocks of rows.
    rng = np.random.default_rng(5)
    n = 200_000
    cost = rng.random((n, 4))
    cost[:, 2] += cost[:, 0] + 1.0
    a, b = np.full(n, 1 / n), np.array([0.1, 0.2, 0.3, 0.4])
    assert len(sample_blocks(n, 4)) > 4
    one = solver(a, b, cost, 1e-3, tol=0.0, max_iter=7, warn=False)
    two = solver(a, b, cost, 1e-3, tol=0.0, max_iter=7, warn=False, n_jobs=2)
    for name in ("f", "g", "plan", "row_marginal"):
        assert np.array_equal(getattr(one, name), getattr(two, name)), name


def test_threads_run_the_blocks_and_blas_comes_back():
    from threadpoolctl import threadpool_info

    before = [info["num_threads"] for info in threadpool_info()]
    names = set()
    gate = threading.Barrier(2, timeout=10)

    def block(b, cols):
        name = threading.current_thread().name
        if name not in names:
            names.add(name)
            gate.wait()  # each thread's first block only passes once both threads run at the same time
        return b

    with Workers(2) as workers:
        assert list(workers.map(block, sample_blocks(10_000, 1, block_bytes=8 * 64))) == list(range(157))
    assert len(names) == 2 and all(name.startswith("sinkhorn-em") for name in names)
    assert [info["num_threads"] for info in threadpool_info()] == before


def test_results_come_in_block_order_whatever_finishes_first():
    import time

    def block(b, cols):
        time.sleep(0.002 * (b % 3 == 0))  # every third block finishes last
        return b

    with Workers(2) as workers:
        assert list(workers.map(block, [slice(i, i + 1) for i in range(30)])) == list(range(30))


@pytest.mark.parametrize("n_jobs", [0, -5, 1.5, "a", None, True])
def test_invalid_n_jobs_is_rejected_with_the_fix(n_jobs):
    X = mixture_data(200, 2)
    with pytest.raises(ValueError, match=r"n_jobs must be a positive integer .* or -1 \(all cores\).*n_jobs=1"):
        EOTGaussianMixture(n_components=2, n_jobs=n_jobs).fit(X)
    with pytest.raises(ValueError, match="n_jobs must be"):
        sinkhorn_log(np.full(3, 1 / 3), np.full(2, 0.5), np.ones((3, 2)), n_jobs=n_jobs)
