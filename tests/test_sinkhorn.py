"""``sinkhorn_em.sinkhorn_log`` against independent references.

References: a plain log-domain Sinkhorn written here (two log-sum-exps per iteration,
no stabilisation tricks), POT's ``ot.bregman.sinkhorn_log``, and the definition of the
problem (marginal constraints). The library solver absorbs potentials into a kernel and
switches between scaling and log domains; the plain loop checks that those tricks do not
change a single iterate.
"""

from __future__ import annotations

import warnings

import numpy as np
import ot
import pytest
from scipy.special import logsumexp

from sinkhorn_em import SinkhornConvergenceWarning, SinkhornResult, sinkhorn_log


def plain_log_sinkhorn(a, b, cost, epsilon, n_iter, g_start):
    """Textbook log-domain Sinkhorn: ``n_iter`` (row, column) half-step pairs from ``g_start``.

    ``f_i = log a_i - LSE_k(g_k - C_ik/eps)``, then ``g_k = log b_k - LSE_i(f_i - C_ik/eps)``;
    the plan is ``exp(f_i + g_k - C_ik/eps)``.
    """
    scaled = cost / epsilon
    g = np.array(g_start, dtype=float)
    f = None
    for _ in range(n_iter):
        f = np.log(a) - logsumexp(g[None, :] - scaled, axis=1)
        g = np.log(b) - logsumexp(f[:, None] - scaled, axis=0)
    return f, g, np.exp(f[:, None] + g[None, :] - scaled)


def random_problem(seed, n=None, K=None, cost_scale=None, uniform_rows=False):
    """Random marginals (Dirichlet) and a random non-negative cost matrix."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 60)) if n is None else n
    K = int(rng.integers(2, 7)) if K is None else K
    a = np.full(n, 1.0 / n) if uniform_rows else rng.dirichlet(np.ones(n))
    b = rng.dirichlet(np.ones(K))
    scale = rng.uniform(0.5, 10.0) if cost_scale is None else cost_scale
    return a, b, scale * rng.random((n, K))


def solve_quietly(*args, **kwargs) -> SinkhornResult:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SinkhornConvergenceWarning)
        return sinkhorn_log(*args, **kwargs)


# --------------------------------------------------------------------------- iterates
@pytest.mark.parametrize("n_iter", [1, 2, 7, 60])
@pytest.mark.parametrize("epsilon, cost_scale", [(1.0, 3.0), (0.05, 5.0), (1e-3, 2.0)])
def test_iterates_equal_plain_log_domain_sinkhorn(n_iter, epsilon, cost_scale):
    # eps = 1e-3 with costs of order 1 puts the scalings far outside [e^-50, e^50]:
    # every absorption / log-domain fallback branch of the solver is exercised.
    for seed in range(3):
        a, b, cost = random_problem(seed, cost_scale=cost_scale)
        with pytest.warns(SinkhornConvergenceWarning):  # tol=0 can never be reached
            result = sinkhorn_log(a, b, cost, epsilon, tol=0.0, max_iter=n_iter)
        f, g, plan = plain_log_sinkhorn(a, b, cost, epsilon, n_iter, np.zeros(b.size))
        assert result.n_iter == n_iter
        assert not result.converged
        # f and g are compared themselves, not only the plan: they are what a warm start reuses.
        np.testing.assert_allclose(result.f, f, rtol=1e-11, atol=1e-9)
        np.testing.assert_allclose(result.g, g, rtol=1e-11, atol=1e-9)
        np.testing.assert_allclose(result.plan, plan, rtol=1e-9, atol=1e-15)
        row_error = np.abs(plan.sum(axis=1) - a).sum()
        assert result.marginal_error == pytest.approx(row_error, rel=1e-6, abs=1e-15)


def test_g_init_is_the_starting_column_potential():
    a, b, cost = random_problem(11)
    g_start = np.random.default_rng(0).normal(scale=3.0, size=b.size)
    result = solve_quietly(a, b, cost, 0.3, tol=0.0, max_iter=3, g_init=g_start)
    f, g, plan = plain_log_sinkhorn(a, b, cost, 0.3, 3, g_start)
    np.testing.assert_allclose(result.f, f, rtol=1e-11, atol=1e-10)
    np.testing.assert_allclose(result.g, g, rtol=1e-11, atol=1e-10)
    np.testing.assert_allclose(result.plan, plan, rtol=1e-9, atol=1e-15)


def test_f_init_starts_from_the_column_step_it_implies():
    a, b, cost = random_problem(12)
    f_start = np.random.default_rng(1).normal(size=a.size)
    g_start = np.log(b) - logsumexp(f_start[:, None] - cost / 0.7, axis=0)
    result = solve_quietly(a, b, cost, 0.7, tol=0.0, max_iter=2, f_init=f_start)
    f, g, plan = plain_log_sinkhorn(a, b, cost, 0.7, 2, g_start)
    np.testing.assert_allclose(result.f, f, rtol=1e-11, atol=1e-10)
    np.testing.assert_allclose(result.g, g, rtol=1e-11, atol=1e-10)


# --------------------------------------------------------------------------- solution
@pytest.mark.parametrize("tol", [1e-4, 1e-7, 1e-11])
def test_both_marginals_within_tol(tol):
    for seed in range(5):
        a, b, cost = random_problem(seed)
        epsilon = [1.0, 0.2, 0.05, 2.0, 0.5][seed]
        result = sinkhorn_log(a, b, cost, epsilon, tol=tol, max_iter=100_000)
        assert result.converged
        plan = result.plan
        assert np.all(plan >= 0) and np.all(np.isfinite(plan))
        assert np.abs(plan.sum(axis=1) - a).sum() <= tol * (1 + 1e-6)
        # The column step comes last: that marginal is exact up to rounding.
        assert np.abs(plan.sum(axis=0) - b).sum() <= 1e-13
        # The plan has the Gibbs form the potentials describe.
        np.testing.assert_allclose(plan, np.exp(result.f[:, None] + result.g[None, :] - cost / epsilon),
                                   rtol=1e-10, atol=1e-300)
        assert result.epsilon == epsilon


@pytest.mark.parametrize("epsilon", [2.0, 1.0, 0.3, 0.1])
def test_agrees_with_pot(epsilon):
    for seed in range(4):
        a, b, cost = random_problem(100 + seed, uniform_rows=seed % 2 == 0)
        ours = sinkhorn_log(a, b, cost, epsilon, tol=1e-13, max_iter=100_000)
        pot = ot.bregman.sinkhorn_log(a, b, cost, epsilon, stopThr=1e-14, numItermax=100_000)
        assert ours.converged
        np.testing.assert_allclose(ours.plan, pot, rtol=0, atol=1e-8 * pot.max())
        np.testing.assert_allclose(ours.plan, pot, rtol=1e-6, atol=1e-13)


def test_warm_start_same_solution_in_fewer_iterations():
    rng = np.random.default_rng(5)
    for seed in range(4):
        a, b, cost = random_problem(200 + seed, n=80, K=5, cost_scale=6.0, uniform_rows=True)
        neighbour = cost + 0.02 * rng.standard_normal(cost.shape)
        previous = sinkhorn_log(a, b, neighbour, 0.5, tol=1e-11, max_iter=100_000)
        cold = sinkhorn_log(a, b, cost, 0.5, tol=1e-11, max_iter=100_000)
        warm = sinkhorn_log(a, b, cost, 0.5, tol=1e-11, max_iter=100_000, g_init=previous.g)
        assert cold.converged and warm.converged
        np.testing.assert_allclose(warm.plan, cold.plan, rtol=1e-7, atol=1e-12)
        assert warm.n_iter < cold.n_iter


def test_restart_from_own_solution_stops_after_one_iteration():
    a, b, cost = random_problem(7)
    solved = sinkhorn_log(a, b, cost, 0.4, tol=1e-10, max_iter=100_000)
    again = sinkhorn_log(a, b, cost, 0.4, tol=1e-10, max_iter=100_000, g_init=solved.g)
    assert solved.n_iter > 1
    assert again.n_iter == 1
    np.testing.assert_allclose(again.plan, solved.plan, rtol=1e-8, atol=1e-15)


@pytest.mark.parametrize("epsilon", [1.0, 0.2])
def test_dual_potentials_give_the_primal_value(epsilon):
    # Strong duality for min <P, C> + eps KL(P || a ⊗ b): at the optimum the dual objective
    # <phi, a> + <psi, b> equals the primal value.
    a, b, cost = random_problem(8)
    result = sinkhorn_log(a, b, cost, epsilon, tol=1e-13, max_iter=100_000)
    plan = result.plan
    primal = np.sum(plan * cost) + epsilon * np.sum(plan * np.log(plan / np.outer(a, b)))
    phi, psi = result.dual_potentials(epsilon)
    assert phi @ a + psi @ b == pytest.approx(primal, rel=1e-10, abs=1e-12)


# --------------------------------------------------------------------------- small epsilon
def two_far_clusters(sizes=(30, 20), separation=50.0, seed=0):
    """1-D data from N(0, 1) and N(separation, 1) with the cost -log N(x; mu_k, 1)."""
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.standard_normal(sizes[0]), separation + rng.standard_normal(sizes[1])])
    centres = np.array([0.0, separation])
    cost = 0.5 * (x[:, None] - centres[None, :]) ** 2 + 0.5 * np.log(2 * np.pi)
    return x, cost


def test_eps_1e_3_with_components_50_sigma_apart_converges_and_stays_finite():
    sizes = (30, 20)
    x, cost = two_far_clusters(sizes)
    n = x.size
    a = np.full(n, 1.0 / n)
    b = np.array(sizes, dtype=float) / n  # the cluster masses: the problem is well posed
    result = sinkhorn_log(a, b, cost, 1e-3, tol=1e-10, max_iter=10_000)
    assert result.converged
    for array in (result.f, result.g, result.plan):
        assert np.all(np.isfinite(array))
    # C/eps is of order 1e6 between clusters: the plan is the hard cluster assignment.
    hard = np.zeros((n, 2))
    hard[np.arange(n), (x > 25).astype(int)] = 1.0 / n
    np.testing.assert_allclose(result.plan, hard, rtol=0, atol=1e-12)


def test_eps_1e_3_with_mismatched_marginals_warns_and_stays_finite():
    # Moving mass across 50 sigma costs ~1e6 in units of eps: Sinkhorn crawls and stops at
    # max_iter. It must say so and still return finite numbers with an exact column marginal.
    x, cost = two_far_clusters((30, 20))
    n = x.size
    a = np.full(n, 1.0 / n)
    b = np.array([0.5, 0.5])
    with pytest.warns(SinkhornConvergenceWarning, match="did not converge"):
        result = sinkhorn_log(a, b, cost, 1e-3, tol=1e-9, max_iter=300)
    assert not result.converged
    assert result.n_iter == 300
    for array in (result.f, result.g, result.plan):
        assert np.all(np.isfinite(array))
    assert np.isfinite(result.marginal_error) and result.marginal_error > 1e-9
    np.testing.assert_allclose(result.plan.sum(axis=0), b, rtol=1e-12)
    assert result.marginal_error == pytest.approx(np.abs(result.plan.sum(axis=1) - a).sum(), rel=1e-9)


def test_warn_false_silences_the_convergence_warning():
    a, b, cost = random_problem(3)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SinkhornConvergenceWarning)
        result = sinkhorn_log(a, b, cost, 0.1, tol=0.0, max_iter=2, warn=False)
    assert not result.converged


# --------------------------------------------------------------------------- bad input
GOOD_A = np.full(4, 0.25)
GOOD_B = np.array([0.5, 0.5])
GOOD_COST = np.arange(8.0).reshape(4, 2)


@pytest.mark.parametrize(
    "a, b, cost, kwargs, word",
    [
        (GOOD_A, np.array([0.5, 0.6]), GOOD_COST, {}, "equal mass"),
        (np.array([0.5, 0.5, 0.0, 0.0]), GOOD_B, GOOD_COST, {}, "strictly positive"),
        (GOOD_A, np.array([1.2, -0.2]), GOOD_COST, {}, "strictly positive"),
        (GOOD_A, np.array([np.nan, 0.5]), GOOD_COST, {}, "finite"),
        (GOOD_A.reshape(2, 2), GOOD_B, GOOD_COST, {}, "1-D"),
        (GOOD_A, GOOD_B, GOOD_COST.T, {}, "shape"),
        (GOOD_A, GOOD_B, GOOD_COST[:3], {}, "shape"),
        (GOOD_A, GOOD_B, np.where(GOOD_COST == 3.0, np.nan, GOOD_COST), {}, "NaN"),
        (GOOD_A, GOOD_B, np.where(GOOD_COST == 3.0, np.inf, GOOD_COST), {}, "inf"),
        (GOOD_A, GOOD_B, GOOD_COST, {"epsilon": 0.0}, "epsilon"),
        (GOOD_A, GOOD_B, GOOD_COST, {"epsilon": -1.0}, "epsilon"),
        (GOOD_A, GOOD_B, GOOD_COST, {"max_iter": 0}, "max_iter"),
        (GOOD_A, GOOD_B, GOOD_COST, {"g_init": np.zeros(3)}, "g_init"),
        (GOOD_A, GOOD_B, GOOD_COST, {"g_init": np.array([0.0, np.nan])}, "g_init"),
    ],
)
def test_bad_input_raises_value_error_naming_the_problem(a, b, cost, kwargs, word):
    with pytest.raises(ValueError, match=word):
        sinkhorn_log(a, b, cost, **kwargs)
