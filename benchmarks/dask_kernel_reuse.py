"""Would persisting a chunk's kernel between the passes of a Dask E-step pay? (issue 25 follow-up)

Every pass of the Dask balanced E-step (``sinkhorn_em/_dask.py``, ``_balanced_chunk``:
about 5-10 a Sinkhorn-EM iteration) recomputes its chunk's log kernel from the moment
features (one product), exponentiates it and reduces it (row sums, column masses and,
while Newton runs, the ``K x K`` Gram sum). The parameters are fixed within an E-step,
only the ``K`` column potentials ``g`` change, so the kernel could be kept on the workers
for the E-step, at one ``(rows, K)`` float64 array a chunk. Times, on one chunk in this
process (best of ``--repeats``), the pass as it is and two kept-kernel variants computing
the same sums:

- ``log kernel kept``: ``-C/eps + log alpha`` stored, a pass adds ``g`` and exponentiates
  (saves the product);
- ``exp kernel kept``: ``exp(-C/eps + log alpha - row max)`` stored, a pass scales its
  columns by ``e^g`` (saves the product and the exponentials; a real solver would also
  need the in-memory solver's absorption of large ``g``, not done here);

then, on a ``LocalCluster`` of 2 single-threaded workers, the wall time of one pass as a
map-reduce over ``--n`` rows in chunks of ``--chunk`` (design, ``X`` and numbers as in
``benchmarks/dask_demo.py``). d = 6, K = 45, full covariances.

Usage: OMP_NUM_THREADS=1 nice -n 10 python benchmarks/dask_kernel_reuse.py [--chunk 250000] [--n 1000000]
                                                                          [--repeats 5]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from dask_demo import D, K, block, centres, dask_data

from sinkhorn_em import _dask
from sinkhorn_em._balanced import sample_blocks
from sinkhorn_em._design import make_design
from sinkhorn_em._numerics import exp_below_row_max


def best(function, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def kept_log_pass(stored, blocks, offsets, hessian):
    """The sums of ``_balanced_chunk`` from stored log-kernel blocks (``offsets``: ``(1, K)``)."""
    log_z, col, gram = np.zeros(1), np.zeros((1, K)), np.zeros((1, K, K))
    for cost in stored:
        q = cost + offsets[:, :, None]
        top = exp_below_row_max(q)
        row_sum = q.sum(axis=1)
        q /= row_sum[:, None, :]
        log_z += (top + np.log(row_sum)).sum(axis=1)
        col += q.sum(axis=2)
        if hessian:
            gram += np.matmul(q, np.swapaxes(q, 1, 2))
    return log_z, col, gram


def kept_exp_pass(kernels, g, hessian):
    """The same sums from stored exponentiated blocks ``(E, top)``: columns scaled by ``e^g``."""
    log_z, col, gram = np.zeros(1), np.zeros((1, K)), np.zeros((1, K, K))
    largest = g.max()
    scale = np.exp(g - largest)[:, :, None]
    for kernel, top in kernels:
        q = kernel * scale
        row_sum = q.sum(axis=1)
        q /= row_sum[:, None, :]
        log_z += (top + largest + np.log(row_sum)).sum(axis=1)
        col += q.sum(axis=2)
        if hessian:
            gram += np.matmul(q, np.swapaxes(q, 1, 2))
    return log_z, col, gram


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunk", type=int, default=250_000)
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    X = block(args.chunk, 0)
    design = make_design(X, "full")
    log_weights = np.log(np.full((1, K), 1.0 / K))
    g = np.random.default_rng(1).normal(scale=0.3, size=(1, K))
    coefficients = design.coefficients(centres()[None] + 0.1, np.stack([np.eye(D)] * K)[None])
    log_joint = design.log_kernel_coefficients(coefficients, log_weights + g, 1.0)
    base = design.log_kernel_coefficients(coefficients, log_weights, 1.0)
    blocks = sample_blocks(design.n, K)
    stored = [design.log_kernel(base, cols) for cols in blocks]
    kernels = []
    for cost in stored:
        kernel = cost.copy()
        kernels.append((kernel, exp_below_row_max(kernel)))
    reference = _dask._balanced_chunk(design, log_joint, True)
    for variant in (kept_log_pass(stored, blocks, g, True), kept_exp_pass(kernels, g, True)):
        for ours, theirs in zip(variant, reference):
            assert np.allclose(ours, theirs, rtol=1e-12, atol=1e-12)
    print(
        f"one chunk of {args.chunk} rows, d = {D}, K = {K}, full; a kept kernel takes "
        f"{sum(s.nbytes for s in stored) / 2**20:.0f} MiB"
    )
    for hessian in (True, False):
        now = best(lambda: _dask._balanced_chunk(design, log_joint, hessian), args.repeats)
        kept_log = best(lambda: kept_log_pass(stored, blocks, g, hessian), args.repeats)
        kept_exp = best(lambda: kept_exp_pass(kernels, g, hessian), args.repeats)
        label = "with the Gram sum" if hessian else "without it     "
        print(
            f"  pass {label}: recomputed {now * 1e3:5.0f} ms, log kernel kept {kept_log * 1e3:5.0f} ms, "
            f"exp kernel kept {kept_exp * 1e3:5.0f} ms"
        )

    from dask.distributed import Client, LocalCluster, wait

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
        distributed = _dask.DaskDesign(dask_data(args.n, args.chunk), "full")
        wait(distributed.chunks)
        log_joint = distributed.log_kernel_coefficients(
            distributed.coefficients(centres()[None] + 0.1, np.stack([np.eye(D)] * K)[None]), log_weights + g, 1.0
        )
        wall = best(lambda: distributed.map_reduce(_dask._balanced_chunk, log_joint, True), args.repeats)
        placed = client.run(lambda dask_worker: sum(hasattr(v, "log_kernel") for v in dask_worker.data.values()))
        print(
            f"map-reduce of one pass with the Gram sum, n = {args.n:.0e} in chunks of {args.chunk:.0e}, "
            f"2 workers: {wall * 1e3:.0f} ms (chunk designs held per worker: {sorted(placed.values())})"
        )
        client.close()
        cluster.close()


if __name__ == "__main__":
    main()
