"""Sinkhorn-EM on a dask array that never exists in one process (issue 25, item 3).

Generates ``n`` rows (``d`` = 6, a mixture of ``K`` = 45 Gaussians) chunk by chunk on the
workers of a ``LocalCluster`` (one worker process per core), fits ``EOTGaussianMixture``
(sEM, full covariances, a few iterations) to the dask array, and prints the time per
iteration and the peak resident memory of every worker; then the same fit in memory on
``--n-memory`` rows of the same generator, for comparison.

Usage: OMP_NUM_THREADS=1 nice -n 10 python benchmarks/dask_demo.py [--n 10000000] [--chunk 1000000]
                                                                   [--n-memory 1000000] [--iters 3] [--passes]
``--passes`` also prints the map-reduces of the Dask fit by chunk function (calls, seconds on
the client's clock): the balanced passes (``_balanced_chunk``), the loose-group roots'
(``_group_*``), the last pass of each E-step (``_finish_chunk``).
On a real cluster, replace the LocalCluster by ``Client("scheduler-address")``: the fit
uses the current client.
"""

from __future__ import annotations

import argparse
import collections
import os
import resource
import time
import warnings

import numpy as np

from sinkhorn_em import EOTGaussianMixture

D, K, SEED = 6, 45, 0


def centres():
    return np.random.default_rng(SEED).normal(scale=4.0, size=(K, D))


def block(rows, index):
    """Rows of chunk ``index``: its own random stream, so a chunk is the same wherever it is generated."""
    rng = np.random.default_rng([SEED, index])
    return centres()[rng.integers(K, size=rows)] + rng.normal(size=(rows, D))


def dask_data(n, chunk):
    import dask.array as da

    sizes = [chunk] * (n // chunk) + ([n % chunk] if n % chunk else [])

    def make(block_info=None):
        info = block_info[None]
        return block(info["chunk-shape"][0], info["chunk-location"][0])

    return da.map_blocks(make, chunks=(tuple(sizes), (D,)), dtype=float)


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def model(iters):
    weights = np.random.default_rng(SEED + 1).dirichlet(np.full(K, 5.0))
    return EOTGaussianMixture(
        n_components=K, weights=weights, method="sinkhorn", max_iter=iters, tol=0.0, random_state=0
    )


def count_passes():
    """Wrap ``DaskDesign.map_chunks`` to count its calls and their seconds by chunk function."""
    from sinkhorn_em import _dask

    calls, seconds = collections.Counter(), collections.Counter()
    original = _dask.DaskDesign.map_chunks

    def map_chunks(self, function, *args, chunks=None):
        start = time.perf_counter()
        out = original(self, function, *args, chunks=chunks)
        calls[function.__name__] += 1
        seconds[function.__name__] += time.perf_counter() - start
        return out

    _dask.DaskDesign.map_chunks = map_chunks
    return calls, seconds


def per_iteration(fitted):
    seconds = fitted.history_["seconds"].to_numpy()
    return np.diff(seconds).mean(), seconds[0]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000_000)
    parser.add_argument("--chunk", type=int, default=1_000_000)
    parser.add_argument("--n-memory", type=int, default=1_000_000)
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--passes", action="store_true", help="count the map-reduces by chunk function")
    args = parser.parse_args()
    passes = count_passes() if args.passes else None

    from dask.distributed import Client, LocalCluster

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
        X = dask_data(args.n, args.chunk)
        start = time.perf_counter()
        fitted = model(args.iters).fit(X)
        total = time.perf_counter() - start
    step, first = per_iteration(fitted)
    peaks = client.run(peak_rss_mib)
    print(f"dask: n = {args.n:.0e}, d = {D}, K = {K}, sEM, {args.iters} iterations, {args.workers} workers")
    print(f"  fit {total:.1f} s (design, init and first E-step {first:.1f} s), {step:.1f} s per iteration")
    print(f"  balanced-solver iterations per E-step: {fitted.history_['sinkhorn_iterations'].tolist()}")
    for address, peak in sorted(peaks.items()):
        print(f"  peak RSS of worker {address}: {peak:.0f} MiB")
    print(f"  peak RSS of the client process: {peak_rss_mib():.0f} MiB")
    if passes is not None:
        calls, seconds = passes
        for name in calls:
            print(f"  {name}: {calls[name]} map-reduces, {seconds[name]:.1f} s")
    client.close()
    cluster.close()

    X_memory = np.concatenate(
        [
            block(min(args.chunk, args.n_memory - first), i)
            for i, first in enumerate(range(0, args.n_memory, args.chunk))
        ]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        fitted = model(args.iters).fit(X_memory)
        total = time.perf_counter() - start
    step, first = per_iteration(fitted)
    print(f"in memory: n = {args.n_memory:.0e}, one process, n_jobs=1")
    print(f"  fit {total:.1f} s (init and first E-step {first:.1f} s), {step:.1f} s per iteration")
    print(f"  peak RSS of the process: {peak_rss_mib():.0f} MiB")


if __name__ == "__main__":
    main()
