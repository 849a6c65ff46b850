"""Sinkhorn-EM / EM CPU time per iteration on a grid of shapes as users meet them (default options).

Grid: n in {5,000, 20,000, 50,000, 200,000} x K in {3, 45, 195} x three kinds of problem, d = 6,
full covariances, every estimator option at its default but ``tol=0, max_iter=ITERATIONS``:

``uniform``  unequal clusters (Dirichlet(2) proportions, separation 3), known weights uniform,
             start: K random data points (identity covariances).
``true``     the same data, known weights equal to the true proportions, same start.
``celegans`` near-hard assignments: a C. elegans head scene from the NeuroPAL atlas of the
             pipeline (``sinkhornem_atlas.mat``, head: 195 neurons, 6 features: position and
             colour), the first K neurons, n points drawn from the atlas mixture with uniform
             weights; start: the atlas means jittered by one standard deviation of each neuron
             (a registration error), the atlas covariances.

Each cell times EM (``method="em"``) and Sinkhorn-EM (``method="sinkhorn"``) from the same
start, in turn, best of ``--repeats`` CPU times (``time.process_time``, one BLAS thread), and
prints sEM / EM per iteration. Run with ``OMP_NUM_THREADS=1``.

    OMP_NUM_THREADS=1 python benchmarks/bench_grid.py [--sizes 5000 20000] [--components 3 45]
        [--kinds uniform true celegans] [--iterations 5] [--repeats 2] [--atlas PATH]

The atlas defaults to ``$SINKHORN_EM_MIRROR/celegans/sinkhornem_atlas.mat`` or
``../shared/data/celegans/sinkhornem_atlas.mat``; the ``celegans`` kind is skipped without it.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from pathlib import Path

import numpy as np

from sinkhorn_em import EOTGaussianMixture


def unequal_clusters(n, K, d, rng):
    proportions = rng.dirichlet(np.full(K, 2.0))
    means = rng.uniform(-1.0, 1.0, size=(K, d)) * 3.0 * K ** (1.0 / d)
    labels = rng.choice(K, size=n, p=proportions)
    return means[labels] + rng.standard_normal((n, d)), proportions


def atlas_mixture(path):
    from scipy import io as sio

    atlas = sio.loadmat(path, squeeze_me=True, struct_as_record=False)["atlas"].head
    means = np.array(atlas.model.mu, dtype=float)
    covariances = np.moveaxis(np.array(atlas.model.sigma, dtype=float), -1, 0)
    return means, covariances


def problems(n, K, kinds, rng, atlas):
    d = 6
    if {"uniform", "true"} & set(kinds):
        X, proportions = unequal_clusters(n, K, d, rng)
        start = X[rng.choice(n, size=K, replace=False)]
        covariances = np.stack([np.eye(d)] * K)
        if "uniform" in kinds:
            yield "uniform", X, np.full(K, 1.0 / K), start, covariances
        if "true" in kinds:
            yield "true", X, proportions, start, covariances
    if "celegans" in kinds and atlas is not None and K <= atlas[0].shape[0]:
        means, covariances = atlas[0][:K], atlas[1][:K]
        labels = rng.choice(K, size=n)
        noise = np.einsum("nij,nj->ni", np.linalg.cholesky(covariances)[labels], rng.standard_normal((n, d)))
        X = means[labels] + noise
        jitter = np.einsum("kij,kj->ki", np.linalg.cholesky(covariances), rng.standard_normal((K, d)))
        yield "celegans", X, np.full(K, 1.0 / K), means + jitter, covariances.copy()


def cpu_time_per_iteration(method, X, weights, means, covariances, iterations):
    model = EOTGaussianMixture(
        len(weights),
        weights=weights,
        method=method,
        means_init=means,
        covariances_init=covariances,
        weights_pairing="given",
        tol=0,
        max_iter=iterations,
    )
    start = time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X)
    return (time.process_time() - start) / iterations, model


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 20000, 50000, 200000])
    parser.add_argument("--components", type=int, nargs="+", default=[3, 45, 195])
    parser.add_argument("--kinds", nargs="+", default=["uniform", "true", "celegans"])
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--atlas", default=None)
    args = parser.parse_args()
    mirror = os.environ.get("SINKHORN_EM_MIRROR", str(Path(__file__).resolve().parents[1] / ".." / "shared" / "data"))
    atlas_path = Path(args.atlas or Path(mirror) / "celegans" / "sinkhornem_atlas.mat")
    atlas = atlas_mixture(atlas_path) if atlas_path.exists() else None
    if atlas is None and "celegans" in args.kinds:
        print(f"no atlas at {atlas_path}: the celegans kind is skipped")
    print(f"{'kind':<9} {'n':>7} {'K':>4} {'EM s/it':>9} {'sEM s/it':>9} {'sEM/EM':>7} {'Newton it/E-step':>17}")
    ratios = []
    for n in args.sizes:
        for K in args.components:
            rng = np.random.default_rng(n + K)
            for kind, X, weights, means, covariances in problems(n, K, args.kinds, rng, atlas):
                best = {"em": np.inf, "sinkhorn": np.inf}
                for _ in range(args.repeats):
                    for method in ("em", "sinkhorn"):
                        seconds, model = cpu_time_per_iteration(method, X, weights, means, covariances, args.iterations)
                        best[method] = min(best[method], seconds)
                        if method == "sinkhorn":
                            newton = model.history_["sinkhorn_iterations"].mean()
                ratio = best["sinkhorn"] / best["em"]
                ratios.append(ratio)
                print(
                    f"{kind:<9} {n:>7} {K:>4} {best['em']:>9.4f} {best['sinkhorn']:>9.4f} {ratio:>7.2f} {newton:>17.1f}",
                    flush=True,
                )
    print(f"cells: {len(ratios)}, median sEM/EM {np.median(ratios):.2f}, worst {max(ratios):.2f}; goal <= 2 every cell")


if __name__ == "__main__":
    main()
