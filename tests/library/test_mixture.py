"""``EOTGaussianMixture`` against scikit-learn, scipy and the definitions of the three methods.

References: ``sklearn.mixture.GaussianMixture`` (oEM is its EM), densities from
``scipy.stats.multivariate_normal``, POT for the balanced plan, the library's separately
tested ``nll`` / ``eot_loss`` / ``estimate_gaussian_parameters`` for bookkeeping, and the
descent property of block-coordinate minimisation of the free energy.
"""

from __future__ import annotations

import warnings

import numpy as np
import ot
import pytest
from scipy.special import logsumexp
from scipy.stats import multivariate_normal
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.mixture import GaussianMixture

from references import as_full, pot_eot_loss, scipy_nll
from sinkhorn_em import (
    EOTGaussianMixture,
    SinkhornConvergenceWarning,
    eot_loss,
    estimate_gaussian_parameters,
    gaussian_cost,
    nll,
)
from sinkhorn_em.losses import balanced_value

COVARIANCE_TYPES = ("full", "diag", "spherical", "tied")
METHODS = ("em", "oem", "sinkhorn")
WEIGHTS = np.array([0.5, 0.3, 0.2])


def mixture_data(seed, n=150, separation=3.0, offset=0.0):
    """Three unit-variance 2-D clusters with weights (.5, .3, .2) on a triangle of side ``separation``."""
    rng = np.random.default_rng(seed)
    corners = separation * np.array([[0.0, 0.0], [1.0, 0.0], [0.5, np.sqrt(3) / 2]])
    labels = rng.choice(3, size=n, p=WEIGHTS)
    return offset + corners[labels] + rng.standard_normal((n, 2)), labels


def scipy_log_joint(model, X):
    """``log w_k + log N(x_i; mu_k, Sigma_k)`` of a fitted model, from scipy."""
    K, d = model.means_.shape
    full = as_full(model.covariances_, model.covariance_type, K, d)
    return np.log(model.weights_)[None, :] + np.stack(
        [multivariate_normal(model.means_[k], full[k]).logpdf(X).reshape(-1) for k in range(K)], axis=1
    )


def unit_covariances(covariance_type, K=3, d=2):
    return {"full": np.stack([np.eye(d)] * K), "diag": np.ones((K, d)), "spherical": np.ones(K), "tied": np.eye(d)}[
        covariance_type
    ]


def fit_quietly(model, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", SinkhornConvergenceWarning)
        return model.fit(X)


@pytest.fixture(scope="module")
def data():
    return mixture_data(0)[0]


# --------------------------------------------------------------------------- scikit-learn
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_oem_matches_sklearn_after_20_iterations(covariance_type):
    X, _ = mixture_data(1, n=300, separation=2.5)
    rng = np.random.default_rng(2)
    means_init = X[rng.choice(len(X), 3, replace=False)]
    covariances_init = unit_covariances(covariance_type) * 1.5
    ours = fit_quietly(
        EOTGaussianMixture(
            3,
            weights=WEIGHTS,
            method="oem",
            covariance_type=covariance_type,
            tol=0,
            max_iter=20,
            means_init=means_init,
            covariances_init=covariances_init,
            weights_pairing="given",
            track_eot_loss=False,
        ),
        X,
    )
    precisions = np.linalg.inv(covariances_init) if covariance_type in ("full", "tied") else 1.0 / covariances_init
    reference = fit_quietly(
        GaussianMixture(
            3,
            covariance_type=covariance_type,
            tol=0,
            max_iter=20,
            weights_init=WEIGHTS,
            means_init=means_init,
            precisions_init=precisions,
        ),
        X,
    )
    assert reference.n_iter_ == 20 and ours.n_iter_ == 20
    # The README's claim: oEM is scikit-learn's EM to 1e-13 after 20 iterations.
    np.testing.assert_allclose(ours.means_, reference.means_, rtol=0, atol=1e-13)
    np.testing.assert_allclose(ours.covariances_, reference.covariances_, rtol=0, atol=1e-13)
    np.testing.assert_allclose(ours.weights_, reference.weights_, rtol=0, atol=1e-13)
    # oEM must actually have moved the weights away from the initial ones.
    assert np.abs(ours.weights_ - WEIGHTS).max() > 1e-3
    np.testing.assert_allclose(ours.precisions_cholesky_, reference.precisions_cholesky_, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(ours.score_samples(X), reference.score_samples(X), rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(ours.predict_proba(X), reference.predict_proba(X), rtol=0, atol=1e-7)
    np.testing.assert_array_equal(ours.predict(X), reference.predict(X))


def sklearn_twin(model):
    """A scikit-learn GaussianMixture holding ``model``'s fitted parameters."""
    twin = GaussianMixture(model.n_components, covariance_type=model.covariance_type)
    twin.weights_, twin.means_ = model.weights_, model.means_
    twin.covariances_, twin.precisions_cholesky_ = model.covariances_, model.precisions_cholesky_
    return twin


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_bic_consistent_with_sklearn(covariance_type, data):
    n = data.shape[0]
    oem = fit_quietly(
        EOTGaussianMixture(
            3, method="oem", covariance_type=covariance_type, max_iter=10, random_state=0, track_eot_loss=False
        ),
        data,
    )
    assert oem.bic(data) == pytest.approx(sklearn_twin(oem).bic(data), rel=1e-12)
    # Known weights are not free parameters: em/sinkhorn count K - 1 fewer.
    em = fit_quietly(
        EOTGaussianMixture(
            3, method="em", covariance_type=covariance_type, max_iter=10, random_state=0, track_eot_loss=False
        ),
        data,
    )
    expected = sklearn_twin(em).bic(data) - (3 - 1) * np.log(n)
    assert em.bic(data) == pytest.approx(expected, rel=1e-12)


# --------------------------------------------------------------------------- descent
def assert_non_increasing(values, slack, label):
    increases = np.diff(np.asarray(values, dtype=float))
    assert increases.max() <= slack, f"{label} increased by {increases.max():.3g} at step {increases.argmax()}"


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("method", METHODS)
def test_objective_non_increasing(method, covariance_type):
    # reg_covar = 0: with a ridge the M-step is not the exact minimiser and descent may fail by ~reg_covar.
    for seed in range(2):
        X, _ = mixture_data(10 + seed, n=120, separation=2.0)
        model = fit_quietly(
            EOTGaussianMixture(
                3,
                weights=WEIGHTS,
                method=method,
                covariance_type=covariance_type,
                tol=0,
                max_iter=15,
                reg_covar=0.0,
                init="random_from_data",
                random_state=seed,
                sinkhorn_tol=1e-11,
                sinkhorn_max_iter=5000,
                track_eot_loss=False,
            ),
            X,
        )
        history = model.history_
        if method == "sinkhorn":
            # The E-step is solved to tol 1e-11 only (every solve converged): allow that much slack.
            assert history["sinkhorn_iterations"].max() < 5000
            assert_non_increasing(history["eot_loss"], 1e-9, "EOT loss")
            np.testing.assert_array_equal(history["objective"], history["eot_loss"])
        else:
            assert_non_increasing(history["nll"], 1e-12, "NLL")
            np.testing.assert_allclose(history["objective"], history["nll"], rtol=1e-13)
        # The run moved: a frozen loop would pass the descent test trivially.
        assert history["objective"].iloc[0] - history["objective"].iloc[-1] > 1e-3


@pytest.mark.parametrize("epsilon", [0.5, 2.0])
@pytest.mark.parametrize("method", METHODS)
def test_tempered_objective_non_increasing(method, epsilon):
    X, _ = mixture_data(12, n=120, separation=2.0)
    model = fit_quietly(
        EOTGaussianMixture(
            3,
            weights=WEIGHTS,
            method=method,
            epsilon=epsilon,
            tol=0,
            max_iter=15,
            reg_covar=0.0,
            init="random_from_data",
            random_state=3,
            sinkhorn_tol=1e-11,
            sinkhorn_max_iter=5000,
            track_eot_loss=False,
        ),
        X,
    )
    objective = model.history_["objective"]
    assert_non_increasing(objective, 1e-9 if method == "sinkhorn" else 1e-12, f"objective (eps={epsilon})")
    assert objective.iloc[0] - objective.iloc[-1] > 1e-3
    assert np.all(model.history_["epsilon"] == epsilon)


# --------------------------------------------------------------------------- loop contract
@pytest.mark.parametrize("method", METHODS)
def test_tol_zero_runs_exactly_max_iter(method, data):
    for max_iter in (1, 7):
        model = fit_quietly(EOTGaussianMixture(3, method=method, tol=0, max_iter=max_iter, random_state=0), data)
        assert model.n_iter_ == max_iter
        assert len(model.history_) == max_iter + 1
        np.testing.assert_array_equal(model.history_["iteration"], np.arange(max_iter + 1))
        assert not model.converged_
        assert np.all(np.diff(model.history_["seconds"]) >= 0)


@pytest.mark.parametrize("method", METHODS)
def test_tol_stops_when_the_objective_settles(method, data):
    model = EOTGaussianMixture(3, method=method, tol=1e-4, max_iter=500, random_state=0, track_eot_loss=False).fit(data)
    assert model.converged_
    objective = model.history_["objective"].to_numpy()
    assert len(objective) == model.n_iter_ + 1 < 501
    assert abs(objective[-1] - objective[-2]) < 1e-4
    # Every earlier change was at least tol (it did not stop later than it should).
    assert np.all(np.abs(np.diff(objective[:-1])) >= 1e-4)
    assert model.lower_bound_ == pytest.approx(objective[-1], rel=1e-14)


@pytest.mark.parametrize("method", METHODS)
def test_trajectory_and_history_bookkeeping(method):
    X, _ = mixture_data(3, n=120, separation=4.0)
    max_iter = 6
    model = fit_quietly(
        EOTGaussianMixture(
            3,
            weights=WEIGHTS,
            method=method,
            tol=0,
            max_iter=max_iter,
            random_state=1,
            keep_trajectory=True,
            sinkhorn_tol=1e-12,
            sinkhorn_max_iter=20_000,
            track_eot_loss=True,  # opt-in for em/oem
        ),
        X,
    )
    trajectory, history = model.trajectory_, model.history_
    assert len(trajectory) == max_iter + 1
    last = trajectory[-1]
    np.testing.assert_array_equal(last["means"], model.means_)
    np.testing.assert_array_equal(last["covariances"], model.covariances_)
    np.testing.assert_array_equal(last["weights"], model.weights_)
    # Each recorded value against independent references at the parameters it is recorded for:
    # the NLL from scipy's densities, the EOT loss from POT's Sinkhorn on scipy's costs.
    for t, theta in enumerate(trajectory):
        args = (X, theta["weights"], theta["means"], theta["covariances"], "full")
        assert history["nll"][t] == pytest.approx(scipy_nll(*args), rel=1e-10, abs=1e-12)
        assert history["eot_loss"][t] == pytest.approx(pot_eot_loss(*args)[0], rel=1e-9)
        if method != "oem":
            np.testing.assert_array_equal(theta["weights"], WEIGHTS)
    assert not np.allclose(trajectory[0]["means"], trajectory[-1]["means"])


@pytest.mark.parametrize("method", METHODS)
def test_one_iteration_is_the_method_specific_e_step_then_weighted_m_step(method):
    X, _ = mixture_data(0, n=100, separation=2.0)
    n = len(X)
    means0 = X[:3].copy()
    covariances0 = np.stack([np.eye(2) * 2.0] * 3)
    model = fit_quietly(
        EOTGaussianMixture(
            3,
            weights=WEIGHTS,
            method=method,
            tol=0,
            max_iter=1,
            means_init=means0,
            covariances_init=covariances0,
            weights_pairing="given",
            keep_trajectory=True,
            sinkhorn_tol=1e-13,
            sinkhorn_max_iter=100_000,
        ),
        X,
    )
    log_density = np.stack([multivariate_normal(means0[k], covariances0[k]).logpdf(X) for k in range(3)], axis=1)
    log_joint = np.log(WEIGHTS)[None, :] + log_density
    posterior = np.exp(log_joint - logsumexp(log_joint, axis=1, keepdims=True))  # EM E-step
    # On this start the posterior column masses are far from alpha, so the balanced E-step
    # differs from the EM one and the comparison below tells the methods apart.
    assert np.abs(posterior.mean(axis=0) - WEIGHTS).max() > 0.05
    if method == "sinkhorn":  # balanced coupling: rows 1/n and columns alpha
        resp = n * ot.bregman.sinkhorn_log(
            np.full(n, 1 / n), WEIGHTS, -log_density, 1.0, stopThr=1e-15, numItermax=100_000
        )
    else:
        resp = posterior
    nk, means, covariances = estimate_gaussian_parameters(X, resp, model.reg_covar, "full")
    np.testing.assert_allclose(model.means_, means, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(model.covariances_, covariances, rtol=1e-8, atol=1e-8)
    expected_weights = nk / nk.sum() if method == "oem" else WEIGHTS
    np.testing.assert_allclose(model.weights_, expected_weights, rtol=1e-10)


@pytest.mark.parametrize("method, max_ratio", [("sinkhorn", 0.9), ("em", 1.0)])
def test_sinkhorn_solves_are_warm_started_across_iterations(method, max_ratio):
    # The E-step (sinkhorn) or the tracked EOT loss (em) reuses the previous column
    # potential; a cold start from g = log alpha at the same parameters needs more
    # Sinkhorn iterations.
    X, _ = mixture_data(8, n=150, separation=2.5)
    model = fit_quietly(
        EOTGaussianMixture(
            3,
            weights=WEIGHTS,
            method=method,
            tol=0,
            max_iter=12,
            keep_trajectory=True,
            random_state=0,
            sinkhorn_tol=1e-9,  # every E-step to the tolerance of the cold solves below
            sinkhorn_max_iter=100_000,
            sinkhorn_solver="sinkhorn",
            track_eot_loss=True,
        ),
        X,
    )
    cold = [
        balanced_value(
            gaussian_cost(X, theta["means"], theta["covariances"]), WEIGHTS, 1.0, tol=1e-9, max_iter=100_000
        )[1].n_iter
        for theta in model.trajectory_
    ]
    warm = model.history_["sinkhorn_iterations"].to_numpy()
    # The first solve has nothing to start from: the same Sinkhorn iterations (the fit's solver
    # stops on the column residual, sinkhorn_log on the row error after the column step: the
    # counts may differ by one).
    assert abs(warm[0] - cold[0]) <= 1
    assert warm[1:].sum() < max_ratio * np.sum(cold[1:])


@pytest.mark.parametrize("solver", ["sinkhorn", "newton"])
@pytest.mark.parametrize("method", ["sinkhorn", "em"])
def test_each_balanced_solve_starts_from_the_previous_one(solver, method):
    # Near a fixed point the parameters barely move, so an E-step that starts from the previous
    # one's column potential (and, for Newton, its curvature) needs fewer iterations than the
    # same E-step started cold from log(weights), which is what the first E-step of a new fit
    # at those parameters does.
    X, _ = mixture_data(8, n=150, separation=2.5)
    settings = dict(weights=WEIGHTS, method=method, sinkhorn_solver=solver, weights_pairing="given")
    model = fit_quietly(
        EOTGaussianMixture(3, tol=1e-10, max_iter=500, random_state=0, track_eot_loss=True, **settings), X
    )
    assert model.converged_
    cold = fit_quietly(
        EOTGaussianMixture(
            3, means_init=model.means_, covariances_init=model.covariances_, tol=0, max_iter=1, **settings
        ).set_params(track_eot_loss=True),
        X,
    )
    warm_iterations = model.history_["sinkhorn_iterations"].to_numpy()[-3:]
    cold_iterations = cold.history_["sinkhorn_iterations"].to_numpy()[0]
    assert cold_iterations > 0 and np.all(warm_iterations < cold_iterations)


@pytest.mark.parametrize("covariance_type", ["full", "spherical"])
def test_both_balanced_solvers_give_the_same_sinkhorn_em_fit(covariance_type):
    # Same E-step problem solved to 1e-12 by different iterations: the fits agree to far
    # below any statistical resolution, and only the work differs.
    X, _ = mixture_data(4, n=300, separation=4.0)
    fits = {
        solver: fit_quietly(
            EOTGaussianMixture(
                3,
                weights=[0.2, 0.3, 0.5],
                covariance_type=covariance_type,
                tol=0,
                max_iter=15,
                random_state=2,
                sinkhorn_tol=1e-12,
                sinkhorn_max_iter=100_000,
                sinkhorn_solver=solver,
            ),
            X,
        )
        for solver in ("sinkhorn", "newton")
    }
    plain, newton = fits["sinkhorn"], fits["newton"]
    np.testing.assert_allclose(newton.means_, plain.means_, rtol=0, atol=1e-8)
    np.testing.assert_allclose(newton.covariances_, plain.covariances_, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(newton.history_["eot_loss"], plain.history_["eot_loss"], rtol=1e-11)
    # The weights (.2, .3, .5) differ from the cluster masses (.5, .3, .2): Sinkhorn crawls.
    assert newton.history_["sinkhorn_iterations"].sum() < 0.2 * plain.history_["sinkhorn_iterations"].sum()


def test_track_eot_loss_false_skips_the_balanced_solve(data):
    model = fit_quietly(
        EOTGaussianMixture(3, method="em", max_iter=3, tol=0, random_state=0, track_eot_loss=False), data
    )
    assert model.history_["eot_loss"].isna().all()
    assert (model.history_["sinkhorn_iterations"] == 0).all()
    assert np.all(np.isfinite(model.history_["nll"]))


@pytest.mark.parametrize("method", ["em", "oem"])
def test_default_em_and_oem_fits_solve_no_balanced_problem(method, data):
    # Tracking the EOT loss costs a balanced solve per iteration: it is opt-in.
    model = fit_quietly(EOTGaussianMixture(3, method=method, max_iter=4, tol=0, random_state=0), data)
    assert (model.history_["sinkhorn_iterations"] == 0).all()
    assert model.history_["eot_loss"].isna().all() and np.isfinite(model.lower_bound_)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("method", METHODS)
def test_fit_many_gives_each_start_its_single_fit(method, covariance_type):
    # Starts fitted as one batch share their passes over the data, not their arithmetic: each
    # must follow the iterations of its own fit (stated tolerance 1e-10; in practice equal to
    # rounding), stop at its own iteration, and keep its own history.
    from sinkhorn_em import fit_many

    X, _ = mixture_data(6, n=400, separation=2.5)
    rng = np.random.default_rng(1)
    starts = X[rng.choice(len(X), size=(5, 3))]
    covariances = np.stack([unit_covariances(covariance_type) * scale for scale in (0.5, 1.0, 1.5, 2.0, 3.0)])
    settings = dict(weights=WEIGHTS, method=method, covariance_type=covariance_type, tol=1e-6, max_iter=400)
    for stack in (covariances, None):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            batch = fit_many(EOTGaussianMixture(3, **settings), X, starts, stack)
        n_iters = set()
        for s, fitted in enumerate(batch):
            single = EOTGaussianMixture(
                3, means_init=starts[s], covariances_init=None if stack is None else stack[s], **settings
            )
            single = fit_quietly(single, X)
            n_iters.add(single.n_iter_)
            assert fitted.n_iter_ == single.n_iter_ and fitted.converged_ == single.converged_
            np.testing.assert_allclose(fitted.means_, single.means_, rtol=0, atol=1e-10)
            np.testing.assert_allclose(fitted.covariances_, single.covariances_, rtol=0, atol=1e-10)
            np.testing.assert_allclose(fitted.weights_, single.weights_, rtol=0, atol=1e-12)
            columns = ["objective", "nll", "eot_loss", "sinkhorn_iterations"]
            np.testing.assert_allclose(fitted.history_[columns], single.history_[columns], rtol=1e-11, atol=1e-12)
        assert len(n_iters) > 1  # the starts stop at different iterations


@pytest.mark.parametrize("method", ["sinkhorn", "em"])
def test_a_kernel_above_working_memory_is_recomputed_with_the_same_fit(method, monkeypatch):
    # Below the memory budget Sinkhorn-EM stores its (n, K) kernel; above it, every pass
    # recomputes the kernel block by block. The iterations must not change.
    from sinkhorn_em import _balanced

    stored = []
    problem = _balanced.Problem

    def spy(*args, **kwargs):
        stored.append(kwargs["store"])
        return problem(*args, **kwargs)

    monkeypatch.setattr(_balanced, "Problem", spy)
    X, _ = mixture_data(7, n=500, separation=2.0)
    settings = dict(weights=[0.2, 0.3, 0.5], method=method, tol=0, max_iter=12, random_state=0, track_eot_loss=True)
    fits = {}
    for memory in (None, 1e-3):  # MiB: 1 KiB < 8 n K bytes
        stored.clear()
        fits[memory] = fit_quietly(EOTGaussianMixture(3, working_memory=memory, **settings), X)
        assert stored and all(stored) == (memory is None) and any(stored) == (memory is None)
    default, blocked = fits[None], fits[1e-3]
    np.testing.assert_allclose(blocked.means_, default.means_, rtol=0, atol=1e-11)
    np.testing.assert_allclose(blocked.covariances_, default.covariances_, rtol=0, atol=1e-11)
    np.testing.assert_allclose(blocked.history_["eot_loss"], default.history_["eot_loss"], rtol=1e-12)
    np.testing.assert_array_equal(blocked.history_["sinkhorn_iterations"], default.history_["sinkhorn_iterations"])


def test_verbose_reports_progress_every_verbose_interval(data, capsys):
    model = fit_quietly(EOTGaussianMixture(3, max_iter=7, tol=0, random_state=0, verbose=2, verbose_interval=3), data)
    lines = capsys.readouterr().out.strip().splitlines()
    progress = [line for line in lines if "iteration" in line and "objective" in line and "change" in line]
    assert [int(line.split()[1]) for line in progress] == [0, 3, 6]
    for line, t in zip(progress, [0, 3, 6]):
        assert f"{model.history_['objective'][t]:.10g}" in line
        assert f"balanced-solver iterations {model.history_['sinkhorn_iterations'][t]}" in line
    assert "did not converge after 7 iterations" in lines[-1]
    quiet = fit_quietly(EOTGaussianMixture(3, max_iter=7, tol=0, random_state=0), data)
    assert not capsys.readouterr().out
    np.testing.assert_array_equal(quiet.means_, model.means_)


def test_keep_trajectory_false_stores_none(data):
    model = fit_quietly(EOTGaussianMixture(2, max_iter=3, random_state=0), data)
    assert model.trajectory_ is None


def test_n_init_keeps_the_lowest_objective():
    X, _ = mixture_data(5, n=120, separation=2.0)
    settings = dict(weights=WEIGHTS, method="em", init="random_from_data", tol=0, max_iter=8, track_eot_loss=False)
    # Each initialisation draws from the same random stream in turn; replaying the stream
    # with n_init=1 fits reproduces the candidates.
    shared = np.random.RandomState(3)
    singles = [fit_quietly(EOTGaussianMixture(3, n_init=1, random_state=shared, **settings), X) for _ in range(4)]
    objectives = [m.lower_bound_ for m in singles]
    assert np.ptp(objectives) > 1e-3  # the starts lead to different optima
    best = singles[int(np.argmin(objectives))]
    multi = fit_quietly(EOTGaussianMixture(3, n_init=4, random_state=np.random.RandomState(3), **settings), X)
    assert multi.lower_bound_ == pytest.approx(min(objectives), rel=1e-14)
    np.testing.assert_allclose(multi.means_, best.means_, rtol=1e-14)
    np.testing.assert_allclose(multi.covariances_, best.covariances_, rtol=1e-14)


def test_epsilon_schedule_is_applied_then_epsilon():
    X, _ = mixture_data(6, n=100)
    schedule = [4.0, 2.0, 1.5]
    model = fit_quietly(
        EOTGaussianMixture(
            3,
            weights=WEIGHTS,
            method="em",
            epsilon=0.8,
            tol=0,
            max_iter=6,
            epsilon_schedule=schedule,
            keep_trajectory=True,
            random_state=0,
            track_eot_loss=False,
        ),
        X,
    )
    expected = schedule + [0.8] * 4
    np.testing.assert_array_equal(model.history_["epsilon"], expected)
    # The E-step really used that epsilon: objective_t is the tempered semi-relaxed value at theta_t.
    for t, (theta, eps) in enumerate(zip(model.trajectory_, expected)):
        value = nll(X, theta["weights"], theta["means"], theta["covariances"], epsilon=eps)
        assert model.history_["objective"][t] == pytest.approx(value, rel=1e-12)
        # and the nll column stays the plain (eps = 1) NLL
        assert model.history_["nll"][t] == pytest.approx(
            nll(X, theta["weights"], theta["means"], theta["covariances"]), rel=1e-12
        )


def test_sinkhorn_epsilon_schedule_uses_the_scheduled_balanced_value():
    X, _ = mixture_data(6, n=80)
    schedule = [3.0, 1.7]
    model = fit_quietly(
        EOTGaussianMixture(
            3,
            weights=WEIGHTS,
            method="sinkhorn",
            tol=0,
            max_iter=3,
            epsilon_schedule=schedule,
            keep_trajectory=True,
            random_state=0,
            sinkhorn_tol=1e-12,
            sinkhorn_max_iter=50_000,
        ),
        X,
    )
    for t, eps in enumerate(schedule + [1.0, 1.0]):
        theta = model.trajectory_[t]
        value = eot_loss(
            X, theta["weights"], theta["means"], theta["covariances"], epsilon=eps, tol=1e-13, max_iter=100_000
        )
        assert model.history_["objective"][t] == pytest.approx(value, rel=1e-9)


# --------------------------------------------------------------------------- inference
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("method", METHODS)
def test_inference_methods_agree_with_scipy(method, covariance_type, data):
    model = fit_quietly(
        EOTGaussianMixture(
            3,
            weights=WEIGHTS,
            method=method,
            covariance_type=covariance_type,
            max_iter=10,
            random_state=0,
            track_eot_loss=False,
        ),
        data,
    )
    X_new = mixture_data(99, n=40)[0]
    log_joint = scipy_log_joint(model, X_new)
    proba = model.predict_proba(X_new)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-13)
    np.testing.assert_allclose(
        proba, np.exp(log_joint - logsumexp(log_joint, axis=1, keepdims=True)), rtol=1e-9, atol=1e-12
    )
    np.testing.assert_array_equal(model.predict(X_new), log_joint.argmax(axis=1))
    samples = model.score_samples(X_new)
    np.testing.assert_allclose(samples, logsumexp(log_joint, axis=1), rtol=1e-11)
    assert model.score(X_new) == pytest.approx(samples.mean(), rel=1e-14)
    fitted = (model.weights_, model.means_, model.covariances_, covariance_type)
    assert model.score(X_new) == pytest.approx(-nll(X_new, *fitted), rel=1e-12)
    # The EOT loss restricts the couplings of the NLL problem: L >= NLL = -score.
    loss = model.eot_loss(X_new)
    assert loss >= -model.score(X_new) - 1e-9
    # sinkhorn_tol="auto" (the default) solves eot_loss and transport_plan to 1e-9.
    assert loss == pytest.approx(eot_loss(X_new, *fitted, tol=1e-9), rel=1e-8)


def test_transport_plan_has_the_balanced_marginals(data):
    model = fit_quietly(EOTGaussianMixture(3, weights=WEIGHTS, max_iter=5, random_state=0), data)
    plan = model.transport_plan(data)
    np.testing.assert_allclose(plan.sum(axis=0), WEIGHTS, rtol=1e-12)
    assert np.abs(plan.sum(axis=1) - 1 / len(data)).sum() <= 1e-9  # sinkhorn_tol="auto"


def test_score_samples_far_from_origin():
    X, _ = mixture_data(7, n=150, offset=1e5)
    model = fit_quietly(EOTGaussianMixture(3, method="oem", max_iter=10, random_state=0, track_eot_loss=False), X)
    np.testing.assert_allclose(
        model.score_samples(X), logsumexp(scipy_log_joint(model, X), axis=1), rtol=1e-10, atol=1e-10
    )


def test_fit_far_from_origin_equals_fit_of_centred_data():
    # Translation equivariance of the fit: means shift, everything else is unchanged.
    X, _ = mixture_data(7, n=150)
    shift = np.array([1e5, -3e4])
    settings = dict(weights=WEIGHTS, method="sinkhorn", tol=0, max_iter=5, random_state=0, init="random_from_data")
    near = fit_quietly(EOTGaussianMixture(3, **settings), X)
    far = fit_quietly(EOTGaussianMixture(3, **settings), X + shift)
    np.testing.assert_allclose(far.means_ - shift, near.means_, rtol=0, atol=1e-8)
    np.testing.assert_allclose(far.covariances_, near.covariances_, rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(far.history_["objective"], near.history_["objective"], rtol=1e-9)


# --------------------------------------------------------------------------- reproducibility
@pytest.mark.parametrize("init", ["k-means++", "random_from_data", "random"])
def test_random_state_reproducibility(init, data):
    def fit(seed):
        return fit_quietly(
            EOTGaussianMixture(3, method="em", init=init, max_iter=5, tol=0, random_state=seed, track_eot_loss=False),
            data,
        )

    first, again, other = fit(7), fit(7), fit(8)
    np.testing.assert_array_equal(first.means_, again.means_)
    np.testing.assert_array_equal(first.covariances_, again.covariances_)
    np.testing.assert_array_equal(first.history_["objective"], again.history_["objective"])
    assert not np.allclose(first.means_, other.means_)


def test_means_init_and_covariances_init_are_the_first_iterate(data):
    means0 = np.array([[0.0, 0.0], [3.0, 0.0], [1.5, 2.5]])
    covariances0 = np.array([0.5, 1.0, 2.0])
    model = fit_quietly(
        EOTGaussianMixture(
            3,
            covariance_type="spherical",
            means_init=means0,
            covariances_init=covariances0,
            max_iter=2,
            keep_trajectory=True,
        ),
        data,
    )
    np.testing.assert_array_equal(model.trajectory_[0]["means"], means0)
    np.testing.assert_array_equal(model.trajectory_[0]["covariances"], covariances0)


@pytest.mark.parametrize("init", ["k-means++", "random_from_data", "random"])
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_every_init_gives_valid_starting_parameters(init, covariance_type, data):
    model = fit_quietly(
        EOTGaussianMixture(
            3,
            method="em",
            init=init,
            covariance_type=covariance_type,
            max_iter=1,
            keep_trajectory=True,
            random_state=0,
            track_eot_loss=False,
        ),
        data,
    )
    start = model.trajectory_[0]
    assert start["means"].shape == (3, 2)
    assert np.all(np.isfinite(start["means"])) and np.all(np.isfinite(start["covariances"]))
    assert np.all(np.isfinite(model.history_["objective"]))
    if init == "random_from_data":
        # initial means are data points
        assert all(np.any(np.all(data == mu, axis=1)) for mu in start["means"])


# --------------------------------------------------------------------------- bad input
X_OK = mixture_data(0, n=20)[0]


@pytest.mark.parametrize(
    "params, X, word",
    [
        ({}, np.where(np.eye(20, 2) > 0, np.nan, X_OK), "NaN"),
        ({}, np.where(np.eye(20, 2) > 0, np.inf, X_OK), "infinity"),
        ({}, X_OK[:, 0], "2D"),
        ({}, X_OK[None], "dim"),
        ({"n_components": 5}, X_OK[:4], "n_components"),
        ({"weights": [0.5, -0.1, 0.6]}, X_OK, "negative values at positions \\[1\\]"),
        ({"weights": [0.5, 0.0, 0.5]}, X_OK, "zero at positions \\[1\\].*remove it"),
        ({"weights": [0.5, np.nan, 0.5]}, X_OK, "NaN or inf at positions \\[1\\]"),
        ({"weights": [0.5, 0.3, 0.2 + 5e-6]}, X_OK, "weights / weights.sum"),
        ({"weights_pairing": "rank"}, X_OK, "weights_pairing"),
        ({"sinkhorn_tol": "auto"}, X_OK, "sinkhorn_tol"),
        ({"sinkhorn_tol": 0.0}, X_OK, "sinkhorn_tol"),
        ({"weights": [0.5, 0.5]}, X_OK, "length"),
        ({"weights": [0.5, 0.3, 0.3]}, X_OK, "sum to 1"),
        ({"epsilon": 0.0}, X_OK, "epsilon"),
        ({"epsilon": -1.0}, X_OK, "epsilon"),
        ({"method": "hard-em"}, X_OK, "method"),
        ({"covariance_type": "banded"}, X_OK, "covariance_type"),
        ({"init": "ward"}, X_OK, "init"),
        ({"sinkhorn_solver": "lbfgs"}, X_OK, "sinkhorn_solver"),
        ({"n_components": 0}, X_OK, "n_components"),
        ({"max_iter": 0}, X_OK, "max_iter"),
        ({"n_init": 0}, X_OK, "n_init"),
        ({"tol": -1.0}, X_OK, "tol"),
        ({"reg_covar": -1.0}, X_OK, "reg_covar"),
        ({"epsilon_schedule": [1.0, -2.0]}, X_OK, "epsilon_schedule"),
        ({"means_init": np.zeros((3, 3))}, X_OK, "means"),
        ({"covariances_init": np.ones((3, 2, 2))}, X_OK, "positive definite"),
        ({"covariances_init": np.ones((2, 2))}, X_OK, "covariances"),
    ],
)
def test_fit_bad_input_raises_value_error_naming_the_problem(params, X, word):
    settings = {"n_components": 3, "max_iter": 2, **params}
    with pytest.raises(ValueError, match=word):
        EOTGaussianMixture(**settings).fit(X)


def test_predict_with_wrong_number_of_features_is_rejected(data):
    model = fit_quietly(EOTGaussianMixture(3, max_iter=2, random_state=0), data)
    with pytest.raises(ValueError, match="features"):
        model.predict(np.zeros((4, 3)))


@pytest.mark.parametrize(
    "method_name",
    [
        "predict",
        "predict_proba",
        "score_samples",
        "score",
        "bic",
        "eot_loss",
        "transport_plan",
    ],
)
def test_unfitted_model_raises_not_fitted_error(method_name):
    with pytest.raises(NotFittedError):
        getattr(EOTGaussianMixture(2), method_name)(X_OK)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_oem_matches_sklearn_above_the_moment_feature_dimension(covariance_type):
    # d = 20 > 16: full and tied costs loop over components instead of using moment features.
    rng = np.random.default_rng(5)
    d = 20
    X = np.concatenate([rng.normal(loc=shift, size=(150, d)) for shift in (-2.0, 0.0, 2.5)])
    means_init = X[rng.choice(len(X), 3, replace=False)]
    covariances_init = {
        "full": np.stack([np.eye(d)] * 3),
        "tied": np.eye(d),
        "diag": np.ones((3, d)),
        "spherical": np.ones(3),
    }[covariance_type]
    ours = fit_quietly(
        EOTGaussianMixture(
            3,
            weights=WEIGHTS,
            method="oem",
            covariance_type=covariance_type,
            tol=0,
            max_iter=10,
            means_init=means_init,
            covariances_init=covariances_init,
            weights_pairing="given",
        ),
        X,
    )
    precisions = np.linalg.inv(covariances_init) if covariance_type in ("full", "tied") else 1.0 / covariances_init
    reference = fit_quietly(
        GaussianMixture(
            3,
            covariance_type=covariance_type,
            tol=0,
            max_iter=10,
            weights_init=WEIGHTS,
            means_init=means_init,
            precisions_init=precisions,
        ),
        X,
    )
    np.testing.assert_allclose(ours.means_, reference.means_, rtol=0, atol=1e-10)
    np.testing.assert_allclose(ours.covariances_, reference.covariances_, rtol=0, atol=1e-10)
    np.testing.assert_allclose(ours.weights_, reference.weights_, rtol=0, atol=1e-10)
