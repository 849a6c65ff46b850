"""The batched symmetric two-component model (sinkhorn_em_repro.symmetric) against independent references.

References: the core log-domain Sinkhorn (`sinkhorn_em.sinkhorn_log`), POT
(`ot.bregman.sinkhorn_log`, `ot.emd2`), the core `eot_loss` and `w2_squared`, and
plain per-run loops over explicit responsibilities written here.
"""

from __future__ import annotations

import warnings

import numpy as np
import ot
import pytest
from scipy.optimize import brentq
from scipy.special import expit, logsumexp

from sinkhorn_em import eot_loss, sinkhorn_log, w2_squared
from sinkhorn_em_repro.symmetric import (
    balanced_log_odds,
    population_grid,
    run_symmetric,
    sinkhorn_sweeps_plan,
    solve_balanced_offset,
    symmetric_eot_loss,
    symmetric_parameter_error,
    symmetric_w2_squared,
    w2_squared_two_atoms,
)

LOG_SQRT_2PI = 0.5 * np.log(2 * np.pi)


def mixture_sample(n, theta_star, alpha, seed):
    rng = np.random.default_rng(seed)
    signs = np.where(rng.random(n) < alpha, 1.0, -1.0)
    return signs * theta_star + rng.standard_normal(n)


def cost_matrix(x, theta):
    """C[i, k] = -log N(x_i; mu_k, 1) with mu = (theta, -theta)."""
    return np.stack([0.5 * (x - theta) ** 2, 0.5 * (x + theta) ** 2], axis=1) + LOG_SQRT_2PI


def exact_plan(x, theta, alpha):
    s = balanced_log_odds(x, [theta], alpha)[0]
    p0 = np.exp(-np.logaddexp(0.0, -(s + 2 * x * theta))) / x.size
    p1 = np.exp(-np.logaddexp(0.0, s + 2 * x * theta)) / x.size
    return np.stack([p0, p1], axis=1)


@pytest.mark.parametrize("theta, alpha", [(0.3, 0.7), (1.5, 0.55), (-1.0, 0.9), (2.5, 0.97), (0.0, 0.8)])
def test_balanced_projection_matches_core_and_pot_sinkhorn(theta, alpha):
    x = mixture_sample(300, 1.0, 0.7, seed=1)
    plan = exact_plan(x, theta, alpha)
    a, b, cost = np.full(x.size, 1 / x.size), np.array([alpha, 1 - alpha]), cost_matrix(x, theta)
    core = sinkhorn_log(a, b, cost, 1.0, tol=1e-14, max_iter=20000, warn=False)
    pot = ot.bregman.sinkhorn_log(a, b, cost, 1.0, stopThr=1e-14, numItermax=20000)
    assert core.converged
    assert np.abs(plan - core.plan).max() < 1e-12
    assert np.abs(plan - pot).max() < 1e-12


@pytest.mark.parametrize("alpha", [1e-6, 0.3, 0.5, 0.999, 1 - 1e-9])
@pytest.mark.parametrize("theta", [-3.0, 0.0, 0.4, 4.0])
def test_balanced_log_odds_hits_the_column_mass_to_rounding(theta, alpha):
    x = mixture_sample(500, 1.0, 0.6, seed=2)
    s = balanced_log_odds(x, [theta], alpha)[0]
    u = s + 2 * x * theta
    # Compare the logs of both column masses so that a tiny mass is checked relatively.
    log_mass0 = logsumexp(-np.logaddexp(0.0, -u)) - np.log(x.size)
    log_mass1 = logsumexp(-np.logaddexp(0.0, u)) - np.log(x.size)
    assert abs(log_mass0 - np.log(alpha)) < 1e-12
    assert abs(log_mass1 - np.log1p(-alpha)) < 1e-12


def test_one_solver_handles_any_scores_and_row_weights():
    # Scores of no particular form (as the landscape's two free means give), uneven q.
    rng = np.random.default_rng(7)
    scores = rng.normal(0.0, 3.0, size=(5, 200)) + rng.normal(0.0, 4.0, size=(5, 1))
    q = rng.random((5, 200))
    q /= q.sum(axis=1, keepdims=True)
    alpha = np.array([0.05, 0.3, 0.5, 0.8, 0.999])
    s = solve_balanced_offset(scores, q, alpha, s_init=np.zeros(5))
    for row in range(5):
        reference = brentq(lambda t, r=row: q[r] @ expit(t + scores[r]) - alpha[row], -60.0, 60.0, xtol=1e-14)
        assert abs(s[row] - reference) < 1e-9
        assert abs(q[row] @ expit(s[row] + scores[row]) - alpha[row]) < 1e-14


def test_warm_start_reaches_the_same_root():
    x = mixture_sample(400, 1.0, 0.7, seed=3)
    thetas = np.linspace(-2, 2, 9)
    cold = balanced_log_odds(x, thetas, 0.8)
    warm = balanced_log_odds(x, thetas, 0.8, s_init=cold + np.linspace(-30, 30, 9))
    np.testing.assert_allclose(warm, cold, rtol=0, atol=1e-12)


def test_sinkhorn_sweeps_equal_core_sinkhorn_after_the_same_number_of_iterations():
    # A far-separated problem on which 200 sweeps are far from converged at n = 1, 5, 50.
    x = mixture_sample(300, 2.5, 0.9, seed=4)
    theta, alpha = 2.5, 0.6
    cost = cost_matrix(x, theta)
    for n_sweeps in (1, 5, 50, 200):
        plan0, plan1, row_error = sinkhorn_sweeps_plan(x, [theta], alpha, n_sweeps=n_sweeps)
        core = sinkhorn_log(
            np.full(x.size, 1 / x.size), np.array([alpha, 1 - alpha]), cost, 1.0, tol=0.0, max_iter=n_sweeps, warn=False
        )
        assert np.abs(core.plan[:, 0] - plan0[0]).max() < 1e-15
        assert np.abs(core.plan[:, 1] - plan1[0]).max() < 1e-15
        assert abs(plan0.sum() - alpha) < 1e-14  # columns exact after the last half-step
        assert row_error[0] == pytest.approx(np.abs(plan0[0] + plan1[0] - 1 / x.size).sum())


def reference_em(x, theta0, alpha, n_iter, estimate_weights):
    """Per-run EM from explicit responsibilities (no batching, no shortcut)."""
    theta, weight = float(theta0), float(alpha)
    thetas, weights = [theta], [weight]
    for _ in range(n_iter):
        with np.errstate(divide="ignore"):
            log_w = np.log([weight, 1.0 - weight])
        logits = log_w[None, :] - cost_matrix(x, theta)
        resp = np.exp(logits - logsumexp(logits, axis=1, keepdims=True))
        theta = float(np.sum((resp[:, 0] - resp[:, 1]) * x) / x.size)
        if estimate_weights:
            weight = float(resp[:, 0].mean())
        thetas.append(theta)
        weights.append(weight)
    return np.array(thetas), np.array(weights)


def reference_sem(x, theta0, alpha, n_iter):
    """Per-run Sinkhorn-EM with the core Sinkhorn solved to a tight tolerance."""
    theta, thetas = float(theta0), [float(theta0)]
    for _ in range(n_iter):
        result = sinkhorn_log(
            np.full(x.size, 1 / x.size),
            np.array([alpha, 1 - alpha]),
            cost_matrix(x, theta),
            1.0,
            tol=1e-14,
            max_iter=20000,
            warn=False,
        )
        theta = float(np.sum((result.plan[:, 0] - result.plan[:, 1]) * x))
        thetas.append(theta)
    return np.array(thetas)


@pytest.mark.parametrize("method", ["vEM", "oEM"])
def test_batched_em_matches_per_run_reference(method):
    data = np.stack([mixture_sample(250, 1.0, 0.7, seed) for seed in (5, 6)])
    theta0 = np.array([-1.5, 0.2, 1.7, -0.4])
    x = data[[0, 1, 0, 1]]
    alphas = np.array([0.7, 0.55, 0.9, 0.8])
    run = run_symmetric(x, theta0, alphas, method, 60)
    for b in range(theta0.size):
        thetas, weights = reference_em(x[b], theta0[b], alphas[b], 60, estimate_weights=method == "oEM")
        np.testing.assert_allclose(run.theta[:, b], thetas, rtol=0, atol=1e-12)
        np.testing.assert_allclose(run.weight[:, b], weights, rtol=0, atol=1e-12)


def test_batched_sem_matches_per_run_reference_with_core_sinkhorn():
    x = mixture_sample(250, 1.0, 0.75, seed=7)
    theta0 = np.array([-2.0, -0.3, 1.2])
    run = run_symmetric(x, theta0, 0.75, "sEM", 12)
    for b in range(theta0.size):
        np.testing.assert_allclose(run.theta[:, b], reference_sem(x, theta0[b], 0.75, 12), rtol=0, atol=1e-10)
    np.testing.assert_array_equal(run.weight, 0.75)


def test_sweep_variant_agrees_with_exact_estep_when_sweeps_converge():
    x = mixture_sample(400, 1.0, 0.8, seed=8)
    theta0 = np.array([-2.0, 0.5, 2.0])
    exact = run_symmetric(x, theta0, 0.8, "sEM", 15)
    sweeps = run_symmetric(x, theta0, 0.8, "sEM", 15, estep="sinkhorn", n_sweeps=200)
    assert sweeps.marginal_error.max() < 1e-12
    # The README's claim: the exact K = 2 E-step is the authors' 200 sweeps to rounding.
    np.testing.assert_allclose(sweeps.theta, exact.theta, rtol=0, atol=1e-14)


def test_sem_decreases_the_eot_loss_and_matches_core_eot_loss():
    x = mixture_sample(300, 1.0, 0.7, seed=9)
    theta0 = np.array([-2.0, -0.5, 0.1, 2.0])
    run = run_symmetric(x, theta0, 0.7, "sEM", 20)
    losses = np.stack([symmetric_eot_loss(x, run.theta[t], 0.7) for t in range(run.theta.shape[0])])
    assert np.all(np.diff(losses, axis=0) <= 1e-12)
    assert np.any(np.diff(losses, axis=0) < -1e-6)  # it does move
    for theta in (-1.3, 0.0, 0.8):
        core = eot_loss(
            x[:, None],
            np.array([0.7, 0.3]),
            np.array([[theta], [-theta]]),
            np.ones((2, 1, 1)),
            tol=1e-13,
            max_iter=100000,
        )
        assert symmetric_eot_loss(x, [theta], 0.7)[0] == pytest.approx(core, abs=1e-10)


def test_alpha_one_is_exact_without_nan_or_warning():
    x = mixture_sample(200, 1.0, 1.0, seed=10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for method in ("vEM", "oEM", "sEM"):
            run = run_symmetric(x, [-2.0, 0.0, 2.0], 1.0, method, 5)
            # With all mass on the +theta component the M-step is the sample mean.
            np.testing.assert_allclose(run.theta[1:], x.mean(), rtol=0, atol=1e-14)
            assert np.all(np.isfinite(run.weight))
        run = run_symmetric(x, [-2.0, 2.0], 1.0, "sEM", 3, estep="sinkhorn", n_sweeps=20)
        np.testing.assert_allclose(run.theta[1:], x.mean(), rtol=0, atol=1e-14)
        assert np.isfinite(symmetric_w2_squared(run.theta, 1.0, 1.0, 1.0)).all()


@pytest.mark.parametrize("total", [1.0 - 1e-14, 1.0, 1.0 + 1e-14])
def test_oem_keeps_an_empty_component_empty_whatever_the_sample_weights_sum_to(total):
    # The sum of 200 rounded 1/200 is 1 on one CPU and 1 - 2^-53 on another; oEM's fixed
    # point w = 1 is unstable, so a weight computed as that sum left it within 200
    # iterations (a CI machine's Figure 2 run ended at 1.0518 instead of 1.0382).
    x = mixture_sample(200, 1.0, 1.0, seed=12)
    q = np.full(200, total / 200)
    run = run_symmetric(x, [0.5, -0.4], 1.0, "oEM", 200, sample_weights=q, oem_weight_update="new_mean")
    assert np.all(run.weight == 1.0)
    np.testing.assert_allclose(run.theta[-1], x @ q, rtol=0, atol=1e-14)


def test_frozen_runs_copy_their_fixed_point():
    x = mixture_sample(200, 1.0, 0.9, seed=11)
    run = run_symmetric(x, [1.0], 0.9, "vEM", 400)
    thetas, _ = reference_em(x, 1.0, 0.9, 400, estimate_weights=False)
    np.testing.assert_allclose(run.theta[:, 0], thetas, rtol=0, atol=1e-14)


def random_two_atom(rng, size):
    weights = rng.random(size)
    weights[:3] = [0.0, 1.0, 0.5]
    atoms = rng.normal(0, 2, (size, 2))
    atoms[3] = [0.7, 0.7]  # coincident atoms
    return np.stack([weights, 1 - weights], axis=1), atoms


def test_closed_form_w2_matches_pot_and_core():
    rng = np.random.default_rng(12)
    wa, xa = random_two_atom(rng, 40)
    wb, xb = random_two_atom(rng, 40)
    closed = w2_squared_two_atoms(wa, xa, wb, xb)
    for i in range(40):
        cost = (xa[i][:, None] - xb[i][None, :]) ** 2
        assert closed[i] == pytest.approx(ot.emd2(wa[i], wb[i], cost), abs=1e-12)
        keep_a, keep_b = wa[i] > 0, wb[i] > 0  # the core needs positive weights
        core = w2_squared(wa[i][keep_a], xa[i][keep_a, None], wb[i][keep_b], xb[i][keep_b, None])
        assert closed[i] == pytest.approx(core, abs=1e-12)


def test_symmetric_errors_are_invariant_to_label_swap():
    theta, weight = np.array([0.8, -1.3]), np.array([0.7, 0.2])
    for error in (symmetric_w2_squared, symmetric_parameter_error):
        np.testing.assert_allclose(
            error(theta, weight, 1.0, 0.7), error(-theta, 1 - weight, 1.0, 0.7), rtol=0, atol=1e-15
        )
    assert symmetric_parameter_error(-1.0, 0.5, 1.0, 0.5) == 0.0
    assert symmetric_parameter_error(1.1, 0.7, 1.0, 0.7) == pytest.approx(0.1)
    assert symmetric_parameter_error(-0.25, 0.3, 0.0, 0.5) == 0.25


@pytest.mark.parametrize("theta_star, alpha", [(0.5, 0.6), (1.0, 0.9), (2.0, 0.7)])
def test_population_grid_keeps_the_truth_a_fixed_point(theta_star, alpha):
    x, weights = population_grid(theta_star, alpha)
    assert weights.sum() == pytest.approx(1.0, abs=1e-15)
    for method in ("vEM", "sEM"):
        run = run_symmetric(x, [theta_star], alpha, method, 1, sample_weights=weights)
        assert abs(run.theta[1, 0] - theta_star) < 1e-13


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(method="EM"), "method"),
        (dict(estep="newton"), "estep"),
        (dict(alpha=1.2), "alpha"),
        (dict(x=np.array([0.0, np.nan])), "NaN"),
        (dict(n_iter=-1), "n_iter"),
        (dict(sample_weights=np.array([0.2, 0.2])), "sum to 1"),
    ],
)
def test_bad_input_raises_value_error_naming_the_problem(kwargs, message):
    arguments = dict(x=np.array([0.5, -0.3]), theta0=[1.0], alpha=0.7, method="vEM", n_iter=3)
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message):
        run_symmetric(
            arguments.pop("x"),
            arguments.pop("theta0"),
            arguments.pop("alpha"),
            arguments.pop("method"),
            arguments.pop("n_iter"),
            **arguments,
        )
