"""Parallel efficiency of ``n_jobs`` (issue 25, item 1): time per iteration with 1 and 2 threads.

For n in {10^5, 10^6} (``--quick``: 10^5 only), d = 6, K in {45, 195}, and method "sinkhorn"
(sEM) and "em", fits a few iterations (``tol=0``, so every run does the same iterations) with
``n_jobs=1`` and ``n_jobs=2`` from the same start, back to back, and prints the time per
iteration, the speed-up ``t1 / t2`` and the efficiency ``speed-up / 2`` (goal: >= 0.8). The
fits are also checked to be bit-identical. BLAS runs on one thread in both (the n_jobs=1
reference is then the single-core fit; n_jobs > 1 holds BLAS at one thread itself).

Timings are noisy on shared machines: each number is the best of ``--repeats`` runs, and
the script prints ``os.getloadavg()`` before and after. Run it on an idle machine with at
least 2 cores: ``nice``-ing it or running it beside other jobs measures their load too.

Usage: python benchmarks/threads.py [--quick] [--iters 3] [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np
from threadpoolctl import threadpool_limits

from sinkhorn_em import EOTGaussianMixture
from sinkhorn_em.synthetic import make_mixture


def timed_fit(X, K, method, n_jobs, iters, means, repeats):
    best, model = np.inf, None
    for _ in range(repeats):
        estimator = EOTGaussianMixture(
            n_components=K, method=method, max_iter=iters, tol=0.0, means_init=means, n_jobs=n_jobs
        )
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            estimator.fit(X)
        best = min(best, time.perf_counter() - start)
        model = estimator
    return best / (iters + 1), model  # iters M-steps and iters + 1 E-steps


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="n = 10^5 only")
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    sizes = [100_000] if args.quick else [100_000, 1_000_000]
    print(f"cores available: {len(os.sched_getaffinity(0))}; load average before: {os.getloadavg()}")
    print(f"{'n':>9} {'K':>4} {'method':>8} {'s/iter n_jobs=1':>16} {'n_jobs=2':>9} {'speed-up':>9} {'eff.':>5} same")
    with threadpool_limits(1, user_api="blas"):
        for n in sizes:
            for K in (45, 195):
                sample = make_mixture(n, np.full(K, 1.0 / K), 6, 3.0, np.random.default_rng(0))
                X = sample.X
                means = X[np.random.default_rng(0).choice(n, size=K, replace=False)]
                for method in ("sinkhorn", "em"):
                    t1, one = timed_fit(X, K, method, 1, args.iters, means, args.repeats)
                    t2, two = timed_fit(X, K, method, 2, args.iters, means, args.repeats)
                    same = np.array_equal(one.means_, two.means_) and one.lower_bound_ == two.lower_bound_
                    speed_up = t1 / t2
                    print(
                        f"{n:>9} {K:>4} {method:>8} {t1:>16.3f} {t2:>9.3f} {speed_up:>9.2f} {speed_up / 2:>5.2f} {same}",
                        flush=True,
                    )
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
