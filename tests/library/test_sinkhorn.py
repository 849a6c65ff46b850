"""``sinkhorn_em.sinkhorn_log`` and ``sinkhorn_newton`` against independent references.

References: a plain log-domain Sinkhorn written here (two log-sum-exps per iteration,
no stabilisation tricks), POT's ``ot.bregman.sinkhorn_log``, and the definition of the
problem (marginal constraints). The library solver absorbs potentials into a kernel and
switches between scaling and log domains; the plain loop checks that those tricks do not
change a single iterate. ``sinkhorn_newton`` solves the same problem with other iterations:
every test of the solution runs on both solvers.
"""

from __future__ import annotations

import warnings

import numpy as np
import ot
import pytest
from scipy.special import logsumexp

from sinkhorn_em import SinkhornConvergenceWarning, SinkhornResult, sinkhorn_log, sinkhorn_newton
from sinkhorn_em.sinkhorn import BALANCED_SOLVERS, solve_balanced

SOLVERS = pytest.mark.parametrize("solve", [sinkhorn_log, sinkhorn_newton], ids=["sinkhorn", "newton"])


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


@pytest.mark.parametrize("n_iter", [1, 2, 7, 60])
def test_iterates_equal_plain_sinkhorn_when_a_column_mass_underflows(n_iter):
    # Column 2 costs at least 1 more than column 0 on every row: at eps = 1e-3 its kernel
    # entries are below e^-1000 of each row's largest, its mass underflows, and the
    # solver takes that column step in the log domain. The iterates must not notice.
    for seed in range(3):
        a, b, cost = random_problem(seed, K=4, cost_scale=1.0)
        cost[:, 2] += cost[:, 0] + 1.0
        result = solve_quietly(a, b, cost, 1e-3, tol=0.0, max_iter=n_iter)
        f, g, plan = plain_log_sinkhorn(a, b, cost, 1e-3, n_iter, np.zeros(b.size))
        assert result.n_iter == n_iter
        np.testing.assert_allclose(result.f, f, rtol=1e-11, atol=1e-9)
        np.testing.assert_allclose(result.g, g, rtol=1e-11, atol=1e-9)
        np.testing.assert_allclose(result.plan, plan, rtol=1e-9, atol=1e-15)
        assert result.marginal_error == pytest.approx(np.abs(plan.sum(axis=1) - a).sum(), rel=1e-9)


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
@SOLVERS
@pytest.mark.parametrize("tol", [1e-4, 1e-7, 1e-11])
def test_both_marginals_within_tol(solve, tol):
    for seed in range(5):
        a, b, cost = random_problem(seed)
        epsilon = [1.0, 0.2, 0.05, 2.0, 0.5][seed]
        result = solve(a, b, cost, epsilon, tol=tol, max_iter=100_000)
        assert result.converged
        plan = result.plan
        assert np.all(plan >= 0) and np.all(np.isfinite(plan))
        assert np.abs(plan.sum(axis=1) - a).sum() <= tol * (1 + 1e-6)
        # The column step comes last: that marginal is exact up to rounding.
        assert np.abs(plan.sum(axis=0) - b).sum() <= 1e-13
        # The reported row marginal and error are those of the returned plan.
        np.testing.assert_allclose(result.row_marginal, plan.sum(axis=1), rtol=1e-12)
        assert result.marginal_error == pytest.approx(np.abs(plan.sum(axis=1) - a).sum(), rel=1e-6, abs=1e-16)
        # The plan has the Gibbs form the potentials describe.
        np.testing.assert_allclose(
            plan, np.exp(result.f[:, None] + result.g[None, :] - cost / epsilon), rtol=1e-10, atol=1e-300
        )
        assert result.epsilon == epsilon


@SOLVERS
@pytest.mark.parametrize("epsilon", [2.0, 1.0, 0.3, 0.1])
def test_agrees_with_pot(solve, epsilon):
    for seed in range(4):
        a, b, cost = random_problem(100 + seed, uniform_rows=seed % 2 == 0)
        ours = solve(a, b, cost, epsilon, tol=1e-13, max_iter=100_000)
        pot = ot.bregman.sinkhorn_log(a, b, cost, epsilon, stopThr=1e-14, numItermax=100_000)
        assert ours.converged
        np.testing.assert_allclose(ours.plan, pot, rtol=0, atol=1e-8 * pot.max())
        np.testing.assert_allclose(ours.plan, pot, rtol=1e-6, atol=1e-13)


@SOLVERS
def test_warm_start_same_solution_in_fewer_iterations(solve):
    rng = np.random.default_rng(5)
    for seed in range(4):
        a, b, cost = random_problem(200 + seed, n=80, K=5, cost_scale=6.0, uniform_rows=True)
        neighbour = cost + 0.02 * rng.standard_normal(cost.shape)
        previous = solve(a, b, neighbour, 0.5, tol=1e-11, max_iter=100_000)
        cold = solve(a, b, cost, 0.5, tol=1e-11, max_iter=100_000)
        curvature = {"hessian_init": previous.hessian} if solve is sinkhorn_newton else {}
        warm = solve(a, b, cost, 0.5, tol=1e-11, max_iter=100_000, g_init=previous.g, **curvature)
        assert cold.converged and warm.converged
        np.testing.assert_allclose(warm.plan, cold.plan, rtol=1e-7, atol=1e-12)
        assert warm.n_iter < cold.n_iter


@SOLVERS
def test_restart_from_own_solution_stops_after_one_iteration(solve):
    a, b, cost = random_problem(7)
    solved = solve(a, b, cost, 0.4, tol=1e-10, max_iter=100_000)
    again = solve(a, b, cost, 0.4, tol=1e-10, max_iter=100_000, g_init=solved.g)
    assert solved.n_iter > 1
    assert again.n_iter == 1
    np.testing.assert_allclose(again.plan, solved.plan, rtol=1e-8, atol=1e-15)


@SOLVERS
@pytest.mark.parametrize("epsilon", [1.0, 0.2])
def test_dual_potentials_give_the_primal_value(solve, epsilon):
    # Strong duality for min <P, C> + eps KL(P || a ⊗ b): at the optimum the dual objective
    # <phi, a> + <psi, b> equals the primal value.
    a, b, cost = random_problem(8)
    result = solve(a, b, cost, epsilon, tol=1e-13, max_iter=100_000)
    plan = result.plan
    primal = np.sum(plan * cost) + epsilon * np.sum(plan * np.log(plan / np.outer(a, b)))
    phi, psi = result.dual_potentials(epsilon)
    assert phi @ a + psi @ b == pytest.approx(primal, rel=1e-10, abs=1e-12)


@SOLVERS
def test_agrees_with_pot_over_many_blocks_of_samples(solve):
    # 15,000 x 20 costs: the solvers' passes run over several blocks of samples, the last
    # one partial; the blocked sums must give POT's plan all the same.
    a, b, cost = random_problem(9, n=15_000, K=20, cost_scale=4.0, uniform_rows=True)
    ours = solve(a, b, cost, 1.0, tol=1e-12, max_iter=100_000)
    pot = ot.bregman.sinkhorn_log(a, b, cost, 1.0, stopThr=1e-14, numItermax=100_000)
    assert ours.converged
    np.testing.assert_allclose(ours.plan, pot, rtol=1e-7, atol=1e-15)
    assert np.abs(ours.plan.sum(axis=1) - a).sum() <= 1e-12 * (1 + 1e-6)


# --------------------------------------------------------------------------- small epsilon
@SOLVERS
def test_small_epsilon_approaches_the_exact_transport_plan(solve):
    # As eps -> 0 the entropic plan tends to the solution of the linear program (POT's
    # network simplex, ot.emd; unique for generic costs), and its transport cost exceeds
    # the optimal one by at most eps * KL(P_0 || a ⊗ b) <= eps * log K (up to the cost of
    # the row error, at most tol * max C).
    for seed in range(3):
        a, b, cost = random_problem(300 + seed, n=30, K=4, cost_scale=1.0)
        exact = ot.emd(a, b, cost)
        optimum = float(np.sum(exact * cost))
        distances = []
        for epsilon in (0.05, 0.01, 5e-4):
            result = solve(a, b, cost, epsilon, tol=1e-10, max_iter=100_000)
            assert result.converged
            excess = float(np.sum(result.plan * cost)) - optimum
            assert -1e-10 * cost.max() <= excess <= epsilon * np.log(b.size)
            distances.append(np.abs(result.plan - exact).sum())
        assert distances[-1] < min(1e-3, 0.01 * distances[0])


def two_far_clusters(sizes=(30, 20), separation=50.0, seed=0):
    """1-D data from N(0, 1) and N(separation, 1) with the cost -log N(x; mu_k, 1)."""
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.standard_normal(sizes[0]), separation + rng.standard_normal(sizes[1])])
    centres = np.array([0.0, separation])
    cost = 0.5 * (x[:, None] - centres[None, :]) ** 2 + 0.5 * np.log(2 * np.pi)
    return x, cost


@SOLVERS
def test_eps_1e_3_with_components_50_sigma_apart_converges_and_stays_finite(solve):
    sizes = (30, 20)
    x, cost = two_far_clusters(sizes)
    n = x.size
    a = np.full(n, 1.0 / n)
    b = np.array(sizes, dtype=float) / n  # the cluster masses: the problem is well posed
    result = solve(a, b, cost, 1e-3, tol=1e-10, max_iter=10_000)
    assert result.converged
    for array in (result.f, result.g, result.plan):
        assert np.all(np.isfinite(array))
    # C/eps is of order 1e6 between clusters: the plan is the hard cluster assignment.
    hard = np.zeros((n, 2))
    hard[np.arange(n), (x > 25).astype(int)] = 1.0 / n
    np.testing.assert_allclose(result.plan, hard, rtol=0, atol=1e-12)


@pytest.mark.parametrize(("solve", "max_iter"), [(sinkhorn_log, 300), (sinkhorn_newton, 1)], ids=["sinkhorn", "newton"])
def test_eps_1e_3_with_mismatched_marginals_warns_and_stays_finite(solve, max_iter):
    # Moving mass across 50 sigma costs ~1e6 in units of eps: Sinkhorn crawls and stops at
    # max_iter (Newton solves it, see the next test, so it gets a budget of one step). Each
    # must say so and still return finite numbers with an exact column marginal.
    x, cost = two_far_clusters((30, 20))
    n = x.size
    a = np.full(n, 1.0 / n)
    b = np.array([0.5, 0.5])
    with pytest.warns(SinkhornConvergenceWarning, match="did not converge"):
        result = solve(a, b, cost, 1e-3, tol=1e-9, max_iter=max_iter)
    assert not result.converged
    assert result.n_iter == max_iter
    for array in (result.f, result.g, result.plan):
        assert np.all(np.isfinite(array))
    assert np.isfinite(result.marginal_error) and result.marginal_error > 1e-9
    np.testing.assert_allclose(result.plan.sum(axis=0), b, rtol=1e-12)
    assert result.marginal_error == pytest.approx(np.abs(result.plan.sum(axis=1) - a).sum(), rel=1e-9)


def assert_is_the_entropic_plan(result, a, b, scaled_cost, tol):
    """The optimality certificate: a plan ``exp(f_i + g_k - C_ik/eps)`` with both marginals met is the solution.

    The entropic problem is strictly convex, so a plan of the Gibbs form whose marginals are
    ``a`` and ``b`` is its unique minimiser, whatever solver produced it. Entries below
    e^-600 of their row's largest are stored at that floor (``_numerics.LOG_FLOOR``).
    """
    gibbs = np.exp(result.f[:, None] + result.g[None, :] - scaled_cost)
    np.testing.assert_allclose(result.plan, gibbs, rtol=1e-9, atol=1e-250)
    np.testing.assert_allclose(result.plan.sum(axis=0), b, rtol=1e-12)
    assert np.abs(result.plan.sum(axis=1) - a).sum() <= tol


def test_newton_moves_a_loose_component_to_its_root_at_eps_1e_3():
    # The mismatched problem above: 5 of the 30 samples near 0 must go to the component at
    # 50, about 1e6 nats away. Sinkhorn's steps (and Newton steps capped at 20 nats) crawl;
    # the loose component's own root reaches it in one pass. At eps = 1e-3 the plan is the
    # hard assignment of the 5 samples nearest to 50 (neighbours differ by ~1e3 nats).
    x, cost = two_far_clusters((30, 20))
    n = x.size
    a = np.full(n, 1.0 / n)
    b = np.array([0.5, 0.5])
    result = sinkhorn_newton(a, b, cost, 1e-3, tol=1e-10, max_iter=20)
    assert result.converged
    assert_is_the_entropic_plan(result, a, b, cost / 1e-3, 1e-10)
    moved = np.argsort(x[:30])[-5:]
    hard = np.zeros((n, 2))
    hard[np.arange(n), (x > 25).astype(int)] = 1.0 / n
    hard[moved] = [0.0, 1.0 / n]
    np.testing.assert_allclose(result.plan, hard, rtol=0, atol=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_newton_shifts_a_loose_group_of_components_together(seed):
    # Components 0 and 1 share the samples near 0 and 1; component 2 sits 60 sigma away with
    # 20% of the samples but 40% of the mass: the group {0, 1} must give samples to it
    # across ~1800 nats, a common shift of both potentials, at eps = 1.
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.normal(0.0, 1.0, 40), rng.normal(1.0, 1.0, 40), rng.normal(60.0, 1.0, 20)])
    centres = np.array([0.0, 1.0, 60.0])
    cost = 0.5 * (x[:, None] - centres[None, :]) ** 2
    n = x.size
    a = np.full(n, 1.0 / n)
    b = np.array([0.3, 0.3, 0.4])
    result = sinkhorn_newton(a, b, cost, 1.0, tol=1e-10, max_iter=50)
    assert result.converged
    assert_is_the_entropic_plan(result, a, b, cost, 1e-10)
    # The group moved as one: its two potentials stay within the costs' scale of each other
    # while the loose component's is hundreds of nats away.
    assert abs(result.g[0] - result.g[1]) < 10.0
    assert result.g[2] - result.g[:2].max() > 100.0


# Known gap (issue 23, stop 38): a loose group near its own mass (below LOOSE_RELATIVE_ERROR)
# whose Newton coordinate is enormous scales the whole capped step down and stalls the other
# columns (seen on bench_grid's C. elegans 200000 x 45 scene: E-steps at the cap). A fix that
# held such groups' common shift solved both cases below in 8 iterations but made 137 of 1,240
# E-steps of a pipeline C. elegans tail worm stop at 1,000 iterations, so it was not kept.
STALLS_ON_A_LOOSE_GROUP_NEAR_ITS_MASS = pytest.mark.xfail(
    strict=True,
    reason="known (issue 23, stop 38): a loose group near its own mass scales the capped Newton step down "
    "and stalls the others; the fix tried (holding the group's common shift) made 137 of 1,240 E-steps of a "
    "pipeline C. elegans tail worm stop at 1,000 iterations, so it was not kept",
)


def assert_far_clusters_solved_within(centres, sizes, b, seed, max_iter):
    # sizes[k] samples around centres[k] (sigma 1), eps = 1: the plan must reach its certificate.
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.normal(centre, 1.0, size) for centre, size in zip(centres, sizes)])
    cost = 0.5 * (x[:, None] - np.asarray(centres)[None, :]) ** 2
    a = np.full(x.size, 1.0 / x.size)
    result = sinkhorn_newton(a, b, cost, 1.0, tol=1e-10, max_iter=max_iter, warn=False)
    assert result.converged
    assert_is_the_entropic_plan(result, a, b, cost, 1e-10)


@STALLS_ON_A_LOOSE_GROUP_NEAR_ITS_MASS
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_loose_component_near_its_mass_does_not_stall_the_others(seed):
    # Components 0 and 1 share the samples near 0 and 1 but their targets (0.45 / 0.0525) are
    # far from the split of those samples; component 2 sits 100 sigma away with half the
    # samples and 0.5% less mass, so 0.25% of its samples must cross ~5000 nats while its
    # error is below LOOSE_RELATIVE_ERROR (160 iterations now).
    b = np.array([0.45, 0.0525, 0.4975])
    assert_far_clusters_solved_within([0.0, 1.0, 100.0], [250, 250, 500], b, seed, max_iter=40)


@STALLS_ON_A_LOOSE_GROUP_NEAR_ITS_MASS
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_held_group_still_balances_its_own_columns(seed):
    # As above, but the far cluster is shared by two components (2 and 3, 100 and 101 sigma):
    # the group {2, 3} is 0.5% short of its mass while 2 holds 0.30 and 3 0.1975 of the 0.5
    # of samples there; its columns must also move against each other (122-134 iterations now).
    b = np.array([0.45, 0.0525, 0.3, 0.1975])
    assert_far_clusters_solved_within([0.0, 1.0, 100.0, 101.0], [250] * 4, b, seed, max_iter=40)


@pytest.mark.parametrize("seed", range(6))
def test_a_group_root_equals_the_root_of_the_whole_mass_function(seed):
    # _sigmoid_root solves on the samples near its bracket only; the independent reference
    # is scipy's root of the full sum_i a_i sigmoid(c + l_i) - target, over every sample.
    # Logits spread over thousands of nats (a loose group: most samples saturated either
    # way), a few near the crossing; uniform and uneven a; small and large targets.
    from scipy import optimize, special

    from sinkhorn_em._balanced import _sigmoid_root

    rng = np.random.default_rng(seed)
    n = 3000
    logits = np.concatenate([rng.normal(-2000.0, 300.0, n - 60), rng.normal(5.0, 3.0, 30), rng.normal(800, 50, 30)])
    rng.shuffle(logits)
    a = np.full(n, 1.0 / n) if seed % 2 == 0 else rng.dirichlet(np.ones(n))
    target = [0.003, 0.012, 0.5][seed % 3] if seed % 3 < 2 else a[logits > 0].sum() + 0.2

    def whole(c):
        return special.expit(c + logits) @ a - target

    reference = optimize.brentq(whole, -1e5, 1e5, xtol=1e-12, rtol=1e-15)
    root = _sigmoid_root(logits, a, target)
    assert abs(root - reference) < 1e-7
    slope = (special.expit(reference + logits) * special.expit(-reference - logits)) @ a
    assert abs(whole(root)) <= 1e-7 * slope + 1e-15


@SOLVERS
def test_warn_false_silences_the_convergence_warning(solve):
    a, b, cost = random_problem(3)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SinkhornConvergenceWarning)
        result = solve(a, b, cost, 0.1, tol=0.0, max_iter=2, warn=False)
    assert not result.converged


def test_solve_balanced_runs_the_named_solver():
    a, b, cost = random_problem(13)
    assert BALANCED_SOLVERS == {"sinkhorn": sinkhorn_log, "newton": sinkhorn_newton}
    pot = ot.bregman.sinkhorn_log(a, b, cost, 0.5, stopThr=1e-14, numItermax=100_000)
    for name in BALANCED_SOLVERS:
        result = solve_balanced(a, b, cost, 0.5, solver=name, tol=1e-12, max_iter=100_000)
        np.testing.assert_allclose(result.plan, pot, rtol=1e-7, atol=1e-15)
        # Sinkhorn has no curvature: n_hessians tells which solver ran.
        assert (result.n_hessians > 0) == (name == "newton")
    with pytest.raises(ValueError, match="Unknown balanced solver 'lbfgs'"):
        solve_balanced(a, b, cost, 0.5, solver="lbfgs")


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
@SOLVERS
def test_bad_input_raises_value_error_naming_the_problem(solve, a, b, cost, kwargs, word):
    with pytest.raises(ValueError, match=word):
        solve(a, b, cost, **kwargs)


@pytest.mark.parametrize("hessian_init", [np.eye(3), np.array([[1.0, np.nan], [0.0, 1.0]])])
def test_newton_rejects_a_hessian_init_that_does_not_fit(hessian_init):
    with pytest.raises(ValueError, match="hessian_init"):
        sinkhorn_newton(GOOD_A, GOOD_B, GOOD_COST, hessian_init=hessian_init)


# --------------------------------------------------------------------------- Newton
def test_newton_with_max_iter_1_is_one_sinkhorn_iteration():
    a, b, cost = random_problem(21)
    g_start = np.random.default_rng(2).normal(size=b.size)
    result = sinkhorn_newton(a, b, cost, 0.3, tol=0.0, max_iter=1, g_init=g_start, warn=False)
    f, g, plan = plain_log_sinkhorn(a, b, cost, 0.3, 1, g_start)
    np.testing.assert_allclose(result.f, f, rtol=1e-11, atol=1e-10)
    np.testing.assert_allclose(result.g, g, rtol=1e-11, atol=1e-10)
    np.testing.assert_allclose(result.plan, plan, rtol=1e-9, atol=1e-15)
    assert result.n_iter == 1


def separated_mixture_problem(seed=0, n=2000):
    """Four unit-variance 2-D clusters 6 sigma apart with masses (.4, .3, .2, .1) and targets .25 each.

    The balanced plan must move 15% of the mass across cluster boundaries: the regime where
    Sinkhorn contracts slowly.
    """
    rng = np.random.default_rng(seed)
    centres = 6.0 * np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    labels = rng.choice(4, size=n, p=[0.4, 0.3, 0.2, 0.1])
    x = centres[labels] + rng.standard_normal((n, 2))
    cost = 0.5 * ((x[:, None, :] - centres[None]) ** 2).sum(axis=2) + np.log(2 * np.pi)
    return np.full(n, 1.0 / n), np.full(4, 0.25), cost


def test_newton_warm_start_with_the_previous_curvature_computes_fewer_hessians():
    a, b, cost = separated_mixture_problem()
    rng = np.random.default_rng(3)
    previous = sinkhorn_newton(a, b, cost + 0.05 * rng.standard_normal(cost.shape), 1.0, tol=1e-10)
    cold = sinkhorn_newton(a, b, cost, 1.0, tol=1e-10)
    warm_g = sinkhorn_newton(a, b, cost, 1.0, tol=1e-10, g_init=previous.g)
    warm = sinkhorn_newton(a, b, cost, 1.0, tol=1e-10, g_init=previous.g, hessian_init=previous.hessian)
    assert cold.converged and warm_g.converged and warm.converged
    assert warm_g.n_iter < cold.n_iter
    assert warm.n_hessians < warm_g.n_hessians
    np.testing.assert_allclose(warm.plan, cold.plan, rtol=0, atol=1e-12)
    assert sinkhorn_log(a, b, cost, 1.0, tol=0.0, max_iter=2, warn=False).n_hessians == 0


def test_newton_needs_far_fewer_iterations_where_sinkhorn_crawls():
    a, b, cost = separated_mixture_problem()
    plain = sinkhorn_log(a, b, cost, 1.0, tol=1e-10, max_iter=100_000)
    newton = sinkhorn_newton(a, b, cost, 1.0, tol=1e-10, max_iter=1000)
    pot = ot.bregman.sinkhorn_log(a, b, cost, 1.0, stopThr=1e-13, numItermax=200_000)
    assert plain.converged and newton.converged
    assert plain.n_iter > 200  # the problem is hard for Sinkhorn
    assert newton.n_iter <= 30
    np.testing.assert_allclose(newton.plan, pot, rtol=0, atol=1e-9 * pot.max())
    assert newton.marginal_error <= 1e-10
    np.testing.assert_allclose(newton.plan.sum(axis=0), b, rtol=1e-12)


def absorbed_problem(seed=3, n=60, K=5, epsilon=0.7, store=True):
    """The solver's state after its first row step (kernel absorbed at g = 0), and scalings away from one."""
    from sinkhorn_em import _balanced

    a, b, cost = random_problem(seed, n=n, K=K)
    problem = _balanced.Problem(_balanced.DenseCost(cost / epsilon), a, b[None], store=store)
    problem.build(np.array([0]), np.zeros((1, K)))
    log_v = 0.3 * np.random.default_rng(seed).standard_normal(K)
    return problem, a, b, cost / epsilon, log_v


def column_masses(scaled, a, g):
    """Column masses after the row step at column potential ``g``, by log-sum-exps (no kernel)."""
    f = np.log(a) - logsumexp(g[None, :] - scaled, axis=1)
    return np.exp(f[:, None] + g[None, :] - scaled).sum(axis=0)


@pytest.mark.parametrize("K", [5, 12])  # Gram product in double / single precision
def test_semi_dual_hessian_is_the_jacobian_of_the_column_masses(K):
    problem, a, b, scaled, log_v = absorbed_problem(K=K)
    u = problem.row_step(np.array([0]), log_v[None])[0]
    hessian = problem.hessian(np.array([0]), u, log_v[None])[0]
    g = problem.g0[0] + log_v
    step = 1e-6
    jacobian = np.stack(
        [
            (column_masses(scaled, a, g + step * e) - column_masses(scaled, a, g - step * e)) / (2 * step)
            for e in np.eye(K)
        ],
        axis=1,
    )
    np.testing.assert_allclose(hessian, jacobian, rtol=2e-5, atol=1e-9)
    np.testing.assert_allclose(hessian, hessian.T, rtol=0, atol=1e-15)
    np.testing.assert_allclose(hessian @ np.ones(K), 0.0, atol=1e-15)  # a Laplacian
    assert np.linalg.eigvalsh(hessian).min() > -1e-12


def test_single_precision_hessian_keeps_entries_spanning_many_orders_of_magnitude():
    # Kernel entries from 1 down to 1e-60 (subnormal in single precision once scaled): the
    # flushed Gram product must still give every shared mass that matters to ~1e-6.
    from sinkhorn_em import _balanced

    rng = np.random.default_rng(4)
    n, K = 400, 12
    scaled = rng.uniform(0.0, 140.0, size=(n, K))
    a, b = np.full(n, 1.0 / n), np.full(K, 1.0 / K)
    problem = _balanced.Problem(_balanced.DenseCost(scaled), a, b[None], store=True)
    problem.build(np.array([0]), np.zeros((1, K)))
    hessian = problem.hessian(np.array([0]), problem.u, np.zeros((1, K)))[0]
    plan = np.empty((n, K))
    problem.finish(np.zeros((1, K)), plan=plan)  # diag(u) kernel at v = 1
    shared = plan.T @ (plan / a[:, None])
    np.fill_diagonal(shared, 0.0)
    expected = np.diag(shared.sum(axis=1)) - shared
    np.testing.assert_allclose(hessian, expected, rtol=1e-5, atol=1e-12 * np.abs(expected).max())


def assert_solved_plan_is_pots(problem, log_v, a, b, cost, atol):
    """The plan of a solved one-problem ``problem`` at ``log_v`` equals POT's (to ``atol`` times its largest entry)."""
    plan = np.zeros((a.size, b.size))
    problem.finish(log_v, plan=plan)
    pot = ot.bregman.sinkhorn_log(a, b, cost, 1.0, stopThr=1e-13, numItermax=200_000)
    np.testing.assert_allclose(plan, pot, rtol=0, atol=atol * pot.max())
    return plan


class StackedCost:
    """Given scaled costs ``(S, n, K)`` of ``S`` problems (``_balanced.DenseCost`` for a batch)."""

    def __init__(self, scaled):
        self.scaled = scaled
        self.S, self.n, self.K = scaled.shape

    def prepare(self, idx, offsets):
        offsets = np.asarray(offsets, dtype=float)[:, :, None]
        chosen = self.scaled[idx]

        def block(cols, out=None):
            return np.subtract(offsets, np.swapaxes(chosen[:, cols], 1, 2), out=out)

        return block


@pytest.mark.parametrize("store", [True, False])
def test_shifting_the_column_scaling_into_the_potentials_changes_no_plan(store):
    from sinkhorn_em import _balanced

    problem, a, b, scaled, log_v = absorbed_problem(K=6, store=store)
    idx = np.array([0])
    u, col, dual, _ = problem.row_step(idx, log_v[None])
    problem.log_v[0], problem.u[0], problem.col[0], problem.dual[0] = log_v, u[0], col[0], dual[0]
    before = np.zeros((a.size, 6))
    problem.finish(problem.log_v.copy(), plan=before)
    potentials = (problem.f0[0] + np.log(problem.u[0]), problem.g0[0] + problem.log_v[0])
    problem.shift(idx, np.array([7.5]))
    assert problem.log_v[0] == pytest.approx(log_v - 7.5)
    after = np.zeros((a.size, 6))
    problem.finish(problem.log_v.copy(), plan=after)
    np.testing.assert_allclose(after, before, rtol=1e-12, atol=0)
    np.testing.assert_allclose(problem.f0[0] + np.log(problem.u[0]), potentials[0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(problem.g0[0] + problem.log_v[0], potentials[1], rtol=0, atol=1e-12)
    # The next row step from the shifted state gives the same column masses and semi-dual.
    _, col_after, dual_after, _ = problem.row_step(idx, problem.log_v)
    np.testing.assert_allclose(col_after[0], col[0], rtol=1e-12)
    assert dual_after[0] == pytest.approx(dual[0], rel=0, abs=1e-12)
    assert isinstance(problem, _balanced.Problem)


def test_a_solve_whose_scalings_leave_their_bounds_reaches_pots_plan():
    # Warm-started at the solution but for one column potential 17 too low: that column's
    # scaling must rise by ~13 (the others fall by ~4), out of bounds of +-12, so the
    # solver moves the scalings back inside (a shift or a rebuild) and must still reach the plan.
    from sinkhorn_em import _balanced, _newton

    a, b, cost = separated_mixture_problem(n=3000)
    b = np.array([0.4, 0.1, 0.3, 0.2])
    reference = _balanced.Problem(_balanced.DenseCost(cost), a, b[None], store=True)
    solved = _newton.solve(reference, np.zeros((1, 4)), tol=np.array([1e-12]), max_iter=300)
    start = reference.g0 + solved.log_v
    start[0, 2] -= 17.0
    problem = _balanced.Problem(_balanced.DenseCost(cost), a, b[None], store=True)
    problem.log_v_bounds = (-12.0, 12.0)
    solution = _newton.solve(problem, start, tol=np.array([1e-10]), max_iter=300)
    assert solution.n_iter[0] < 300
    assert np.abs(problem.log_v[0]).max() <= 12.0
    assert_solved_plan_is_pots(problem, solution.log_v, a, b, cost, 1e-9)


def test_bfgs_update_satisfies_the_secant_equation_and_keeps_the_laplacian_structure():
    from sinkhorn_em._newton import bfgs_update

    rng = np.random.default_rng(0)
    K = 6

    def laplacian():
        weights = rng.random((K, K))
        weights = np.triu(weights, 1) + np.triu(weights, 1).T
        return np.diag(weights.sum(axis=1)) - weights

    model, truth = laplacian(), laplacian()
    step = rng.standard_normal(K)
    change = truth @ step
    # A batch of two: the second problem has no curvature along its step (a null direction)
    # and keeps its model; the first is updated as if alone.
    updated = bfgs_update(np.stack([model, model]), np.stack([step, np.ones(K)]), np.stack([change, np.zeros(K)]))
    np.testing.assert_allclose(updated[0] @ (step - step.mean()), change, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(updated[0] @ np.ones(K), 0.0, atol=1e-12)
    np.testing.assert_allclose(updated[0], updated[0].T, atol=1e-12)
    assert np.linalg.eigvalsh(updated[0]).min() > -1e-10
    np.testing.assert_array_equal(updated[1], model)


@pytest.mark.parametrize("store", [True, False])
def test_blocked_row_step_equals_two_matrix_vector_products(store):
    # Enough samples for several blocks of the passes, the last one partial.
    problem, a, b, scaled, log_v = absorbed_problem(n=60_000, K=5, store=store)
    sizes = [cols.stop - cols.start for cols in problem.blocks]
    assert len(sizes) > 1 and sizes[-1] < sizes[0]
    u, col, dual, ok = problem.row_step(np.array([0]), log_v[None])
    kernel = np.exp(problem.f0[0][:, None] + problem.g0[0][None, :] - scaled)
    plan = np.empty_like(kernel)
    problem.finish(np.zeros((1, b.size)), plan=plan)  # diag(u) kernel at v = 1
    np.testing.assert_allclose(plan, problem.u[0][:, None] * kernel, rtol=1e-13)
    v = np.exp(log_v)
    expected_u = a / (kernel @ v)
    np.testing.assert_allclose(u[0], expected_u, rtol=1e-13)
    np.testing.assert_allclose(col[0], v * (kernel.T @ expected_u), rtol=1e-13)
    assert dual[0] == pytest.approx(b @ log_v - a @ np.log(kernel @ v), rel=1e-13, abs=1e-15)
    assert ok[0]
    if store:
        for block, cols in zip(problem.kernel, problem.blocks):
            if cols.start <= 40_000 < cols.stop:
                block[0][:, 40_000 - cols.start] = 0.0  # a row with no mass: no valid row step
        assert not problem.row_step(np.array([0]), log_v[None])[3][0]


def test_a_batch_of_problems_is_solved_as_each_alone():
    # Problems sharing their rows are solved together; each must follow its own iterations
    # (same iterates to rounding), whether the kernels are stored or recomputed.
    from sinkhorn_em import _balanced, _newton
    from sinkhorn_em._design import make_design

    # Enough samples that the batch's passes run over several blocks.
    rng = np.random.default_rng(7)
    X = np.concatenate([rng.normal(0, 1, (9000, 2)), rng.normal(4, 1, (3000, 2))])
    design = make_design(X, "full")
    S, K = 4, 3
    means = X[rng.choice(len(X), size=(S, K))]
    covariances = np.broadcast_to(np.eye(2), (S, K, 2, 2)).copy()
    weights = rng.dirichlet(np.ones(K), size=S)
    a = np.full(len(X), 1.0 / len(X))
    coefficients = design.coefficients(means, covariances)

    def solve(idx, store):
        source = _balanced.DesignCost(design, tuple(c[idx] for c in coefficients), 0.8)
        problem = _balanced.Problem(source, a, weights[idx], store=store)
        assert len(idx) == 1 or len(problem.blocks) > 1
        solution = _newton.solve(problem, np.log(weights[idx]), tol=np.full(len(idx), 1e-11), max_iter=200)
        rows = problem.finish(solution.log_v)[0]
        return solution, rows, problem.g0 + solution.log_v

    batch, batch_rows, batch_g = solve(np.arange(S), True)
    recomputed, recomputed_rows, recomputed_g = solve(np.arange(S), False)
    for s in range(S):
        alone, rows, g = solve(np.array([s]), True)
        assert batch.n_iter[s] == alone.n_iter[0] == recomputed.n_iter[s]
        assert batch.n_hessians[s] == alone.n_hessians[0]
        np.testing.assert_allclose(batch_g[s], g[0], rtol=0, atol=1e-12)
        np.testing.assert_allclose(recomputed_g[s], g[0], rtol=0, atol=1e-12)
        np.testing.assert_allclose(batch_rows[s], rows[0], rtol=1e-12)
        np.testing.assert_allclose(recomputed_rows[s], rows[0], rtol=1e-12)
        assert np.abs(rows[0] - a).sum() <= 1e-11


def test_a_finish_that_releases_the_kernel_gives_the_same_plan_and_later_passes_recompute_it():
    # sinkhorn_log and sinkhorn_newton form their plans this way (a kernel's memory, not a
    # kernel plus a plan); the problem must stay usable, and a lent workspace must not
    # keep the released (emptied) kernel for the next problem.
    from sinkhorn_em import _balanced

    a, b, cost = random_problem(5, n=50_000, K=6, uniform_rows=True)
    workspace = {}
    problem = _balanced.Problem(_balanced.DenseCost(cost), a, b[None], store=True, workspace=workspace)
    assert len(problem.blocks) > 1
    problem.build(np.array([0]), np.log(b)[None])
    log_v = 0.2 * np.random.default_rng(0).standard_normal((1, b.size))
    kept, released, recomputed = (np.empty(cost.shape) for _ in range(3))
    rows, _ = problem.finish(log_v, plan=kept)
    released_rows, _ = problem.finish(log_v, plan=released, release=True)
    assert problem.kernel is None and not any(key[0] == "kernel" for key in workspace)
    problem.finish(log_v, plan=recomputed)
    np.testing.assert_array_equal(released, kept)
    np.testing.assert_array_equal(released_rows, rows)
    np.testing.assert_allclose(recomputed, kept, rtol=1e-13)
    # The plan is diag(u) exp(f0 + g0 - C) diag(v), by its definition.
    expected = problem.u[0][:, None] * np.exp(problem.f0[0][:, None] + problem.g0[0][None, :] - cost + log_v)
    np.testing.assert_allclose(kept, expected, rtol=1e-13)


def semi_dual_value(a, b, scaled_cost, g):
    """``<b, g - log b> + <a, f - log a>`` with rows exact: ``f_i = log a_i - LSE_k(g_k - C_ik/eps)``."""
    f = np.log(a) - logsumexp(g[None, :] - scaled_cost, axis=1)
    return b @ (g - np.log(b)) + a @ (f - np.log(a))


@pytest.mark.parametrize(("warm_shift", "warm_is_better"), [(30.0, False), (3.0, True)])
def test_a_far_warm_start_gives_way_to_the_fallback_with_the_larger_semi_dual(warm_shift, warm_is_better):
    from sinkhorn_em import _balanced, _newton

    a, b, cost = random_problem(5)
    K = cost.shape[1]
    solution = sinkhorn_newton(a, b, cost, 1.0, tol=1e-12, max_iter=1000).g
    warm, cold = solution.copy(), solution.copy()
    warm[0] += warm_shift  # a column off the solution
    cold[0] -= 8.0
    # The premises, from an independent evaluation: which start is better, and that the warm
    # one is outside the Newton region (where the comparison is made).
    assert (semi_dual_value(a, b, cost, warm) > semi_dual_value(a, b, cost, cold)) == warm_is_better
    problem = _balanced.Problem(_balanced.DenseCost(cost), a, b[None, :], store=True)
    g = warm[None, :].copy()
    problem.build(np.arange(1), g)
    assert _newton._outside_newton_region(problem, np.arange(1))[0]
    hessian, has_hessian = np.ones((1, K, K)), np.ones(1, dtype=bool)
    restarted = _newton._restart_where_better(problem, np.arange(1), g, cold[None, :], hessian, has_hessian)
    assert (restarted.size == 0) == warm_is_better
    kept = warm if warm_is_better else cold
    np.testing.assert_allclose(problem.g0[0], kept)
    np.testing.assert_allclose(g[0], kept)
    assert has_hessian[0] == warm_is_better  # the warm start's curvature does not carry over
    assert _newton.semi_dual(problem, np.arange(1))[0] == pytest.approx(semi_dual_value(a, b, cost, kept), rel=1e-12)
