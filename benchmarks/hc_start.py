"""The hc start (``init="hc"``) against R's mclust on the same machine, in the same run.

Part 1, the start alone: ``sinkhorn_em._hc.hierarchical_partition(X, K, "VVV", subset=None)``
against ``hc(X, modelName = "VVV", use = "SVD")`` + ``hclass`` in ``Rscript`` (mclust's default
model and transformation; R's time is measured inside R with ``system.time``, so R's start-up
and the CSV are not counted), on DLPFC features (15 PCs and their neighbour means, 30 columns,
~3,600 spots per slice; from the shared mirror when ``--dlpfc-root`` holds it) and synthetic data
of the same shape (``--synthetic N`` data sets, default 1). Prints both times, their ratio and the
ARI between the two partitions; with ``--before REF`` also the time of the implementation at git
revision ``REF`` (run in a subprocess from ``git archive REF src``) and whether its partition is
ours. ``--repeats N``: the best of N runs on each side (R's inside R), wall-clock and CPU
seconds (the latter less affected by other processes on a shared machine). Our times are steady
state: the merge loop's numba kernels are compiled (or loaded from numba's cache) before, and
that one-off cost is printed first, measured in fresh processes on a small tree: with an empty
cache (compile) and with the cache it filled (load).

Part 2, the whole fit (start + EM, tied covariances, free weights, K = 20, d = 30) at n = 10^4,
10^5 (and 10^6 with ``--million``): ``EOTGaussianMixture(20, method="oem",
covariance_type="tied", init="hc")`` against ``Mclust(X, G = 20, modelNames = "EEE")`` (which also
builds its tree on 2,000 random rows) with a time limit for R. Prints times, ratio and the
log-likelihoods (each at its own optimum: the subsets differ).

    python benchmarks/hc_start.py [--dlpfc-root /work/shared/data/spatial/dlpfc] [--before main] [--repeats 1]
        [--synthetic 1] [--million] [--r-timeout 900] [--skip-start] [--skip-fit]

One BLAS thread for our side (``threadpoolctl``), as R's reference BLAS.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import adjusted_rand_score
from threadpoolctl import threadpool_limits

from sinkhorn_em import EOTGaussianMixture
from sinkhorn_em._hc import hierarchical_partition

SLICES = ("151673", "151674", "151675", "151676")


def run_r(X, code, timeout):
    """Run ``code`` on ``X`` in R; it writes numbers to ``out``. Returns them, or None on timeout."""
    with tempfile.TemporaryDirectory() as tmp:
        data, out = Path(tmp) / "x.csv", Path(tmp) / "out.csv"
        np.savetxt(data, X, delimiter=",", fmt="%.17g")
        script = (
            "suppressMessages(library(mclust))\n"
            f"X <- as.matrix(read.csv('{data}', header = FALSE))\nout <- '{out}'\n{code}\n"
        )
        try:
            subprocess.run(["Rscript", "-e", script], check=True, capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        return np.loadtxt(out, delimiter=",", ndmin=2)


def dlpfc_features(root):
    """30 features per spot of each mirrored slice: 15 PCs and their hexagonal-neighbour means."""
    from sinkhorn_em_repro.datasets.dlpfc import load_dlpfc_slice, read_layer_map
    from sinkhorn_em_repro.experiments.dlpfc.features import build_spot_features

    root = Path(root)
    layer_map = read_layer_map(root / "barcode_level_layer_map.tsv")
    for slice_id in SLICES:
        counts = root / f"dlpfc{slice_id}.rda"
        if not counts.exists():
            continue
        positions = root / "positions" / f"{slice_id}_tissue_positions_list.txt"
        sample = load_dlpfc_slice(counts, positions, layer_map, slice_id)
        yield slice_id, build_spot_features(sample, "pca+smoothed", n_pcs=15).X


def synthetic(n, d, K, seed):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=1.5, size=(K, d))
    return centres[rng.integers(K, size=n)] + rng.normal(size=(n, d))


# Run in a subprocess: one hc tree on the data in argv[1], timed with one BLAS thread; the labels
# go to argv[2]. Used for the first-call cost (compile or cache load) and for an older revision.
_TIME_ONE = """
import sys, time
import numpy as np
from threadpoolctl import threadpool_limits
from sinkhorn_em._hc import hierarchical_partition
X = np.load(sys.argv[1])
with threadpool_limits(1):
    for call in range(int(sys.argv[4])):
        start = time.perf_counter()
        labels = hierarchical_partition(X, int(sys.argv[3]), model="VVV", subset=None)
        print(time.perf_counter() - start)
np.save(sys.argv[2], labels)
"""


def time_in_subprocess(X, K, src, calls=1, env=None):
    """Seconds of each of ``calls`` hc trees on ``X`` in a fresh process importing ``src``, and the labels.

    The import of the library is not timed; the first call includes numba's compile or cache load.
    """
    with tempfile.TemporaryDirectory() as tmp:
        data, labels = Path(tmp) / "x.npy", Path(tmp) / "labels.npy"
        np.save(data, X)
        env = {**os.environ, **(env or {}), "PYTHONPATH": str(src)}
        done = subprocess.run(
            [sys.executable, "-c", _TIME_ONE, str(data), str(labels), str(K), str(calls)],
            check=True,
            capture_output=True,
            text=True,
            env=env,
        )
        return [float(t) for t in done.stdout.split()], np.load(labels)


def compile_cost(K):
    """First and second call on a small tree (600 x 30) in fresh processes: empty numba cache, then filled."""
    src = Path(__file__).resolve().parents[1] / "src"
    X = synthetic(600, 30, K, seed=5)
    print("numba kernels of the merge loop (600 x 30 synthetic, VVV; fresh processes, import not timed)")
    with tempfile.TemporaryDirectory() as cache:
        env = {"NUMBA_CACHE_DIR": cache}
        for what in ("empty cache (compile)", "cache filled (load)"):
            (first, second), _ = time_in_subprocess(X, K, src, calls=2, env=env)
            print(f"  {what:>22}: first call {first:6.2f} s, second call {second:6.3f} s")


def revision_src(ref, tmp):
    """``src`` of git revision ``ref`` of this repository, extracted into ``tmp``."""
    repo = Path(__file__).resolve().parents[1]
    archive = subprocess.run(["git", "-C", str(repo), "archive", ref, "src"], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tmp)], input=archive, check=True)
    return Path(tmp) / "src"


def part_start(datasets, K, timeout, before=None, repeats=1):
    """Wall-clock seconds of each side and their ratio; then the same for CPU seconds.

    On a shared machine the CPU times (ours ``time.process_time``, R's ``user + system`` of
    ``system.time``) are less affected by other processes' load than the wall-clock times.
    """
    print(f"hc start alone (VVV, use='SVD', all rows; best of {repeats} for each side; wall / CPU seconds)")
    header = f"{'data':>16} {'n':>6} {'d':>3}" + (f" {'before':>6}" if before else "")
    header += f" {'ours':>5} {'R':>6} {'R/ours':>6}" + (f" {'R/before':>8}" if before else "")
    header += f" {'CPU ours':>8} {'CPU R':>6} {'R/ours':>6} {'ARI(ours, R)':>12}"
    print(header)
    with tempfile.TemporaryDirectory() as tmp:
        old_src = revision_src(before, tmp) if before else None
        for name, X in datasets:
            line = f"{name:>16} {len(X):>6} {X.shape[1]:>3}"
            if old_src is not None:
                old_times, old_labels = time_in_subprocess(X, K, old_src, calls=repeats)
                old_seconds = min(old_times)
                line += f" {old_seconds:6.2f}"
            wall, cpu = [], []
            with threadpool_limits(1):
                for _ in range(repeats):
                    start, start_cpu = time.perf_counter(), time.process_time()
                    ours = hierarchical_partition(X, K, model="VVV", subset=None)
                    wall.append(time.perf_counter() - start)
                    cpu.append(time.process_time() - start_cpu)
            seconds, cpu_seconds = min(wall), min(cpu)
            r = run_r(
                X,
                f"t <- sapply(seq_len({repeats}), function(i) system.time(h <<- hc(X, modelName = 'VVV', "
                f"use = 'SVD'))[c('elapsed', 'user.self', 'sys.self')])\n"
                f"t <- c(min(t[1, ]), min(t[2, ] + t[3, ]))\n"
                f"write.table(c(t, hclass(h, {K})), out, sep = ',', row.names = FALSE, col.names = FALSE)",
                timeout,
            )
            if r is None:
                print(f"{line} {seconds:5.2f} {'>' + str(timeout):>6}")
                continue
            r_seconds, r_cpu, r_labels = float(r[0, 0]), float(r[1, 0]), r[2:, 0]
            ari = adjusted_rand_score(r_labels, ours)
            line += f" {seconds:5.2f} {r_seconds:6.2f} {r_seconds / seconds:6.1f}"
            if old_src is not None:
                line += f" {r_seconds / old_seconds:8.1f}"
            line += f" {cpu_seconds:8.2f} {r_cpu:6.2f} {r_cpu / cpu_seconds:6.1f} {ari:12.4f}"
            if old_src is not None and not np.array_equal(old_labels, ours):
                line += " (partition differs from before!)"
            print(line, flush=True)


def part_fit(sizes, K, d, timeout):
    print(f"\nwhole fit: start + EM, tied, free weights, K = {K}, d = {d}")
    print(f"{'n':>8} {'ours s':>8} {'R s':>8} {'R/ours':>7} {'ours loglik':>14} {'R loglik':>14}")
    for n in sizes:
        X = synthetic(n, d, K, seed=n)
        with threadpool_limits(1):
            start = time.perf_counter()
            model = EOTGaussianMixture(K, method="oem", covariance_type="tied", init="hc", random_state=0).fit(X)
            seconds = time.perf_counter() - start
        loglik = -n * model.lower_bound_
        r = run_r(
            X,
            f"t <- system.time(fit <- Mclust(X, G = {K}, modelNames = 'EEE', verbose = FALSE))[['elapsed']]\n"
            "write.table(cbind(t, fit$loglik), out, sep = ',', row.names = FALSE, col.names = FALSE)",
            timeout,
        )
        if r is None:
            print(f"{n:>8} {seconds:8.1f} {'>' + str(timeout):>8} {'':>7} {loglik:14.1f}")
        else:
            print(f"{n:>8} {seconds:8.1f} {r[0, 0]:8.1f} {r[0, 0] / seconds:7.1f} {loglik:14.1f} {r[0, 1]:14.1f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dlpfc-root", default="/work/shared/data/spatial/dlpfc")
    parser.add_argument("--million", action="store_true", help="also n = 10^6 in part 2")
    parser.add_argument("--r-timeout", type=float, default=900.0)
    parser.add_argument("--skip-start", action="store_true")
    parser.add_argument("--skip-fit", action="store_true")
    parser.add_argument("--before", metavar="REF", help="also time the hc start of git revision REF (e.g. main)")
    parser.add_argument("--synthetic", type=int, default=1, metavar="N", help="synthetic 3600 x 30 data sets")
    parser.add_argument("--repeats", type=int, default=1, help="hc start: best of this many runs, each side")
    args = parser.parse_args()
    if shutil.which("Rscript") is None:
        raise SystemExit("Rscript with mclust is needed for the comparison")
    if not args.skip_start:
        compile_cost(7)
        # Our side warmed up: the kernels compiled or loaded before the timed calls.
        hierarchical_partition(synthetic(200, 30, 7, seed=9), 7, model="VVV", subset=None)
        datasets = []
        if Path(args.dlpfc_root).exists():
            datasets = [(f"DLPFC {s}", X) for s, X in dlpfc_features(args.dlpfc_root)]
        datasets += [(f"synthetic {seed}", synthetic(3600, 30, 7, seed)) for seed in range(args.synthetic)]
        part_start(datasets, 7, args.r_timeout, args.before, args.repeats)
    if not args.skip_fit:
        part_fit([10_000, 100_000] + ([1_000_000] if args.million else []), 20, 30, args.r_timeout)


if __name__ == "__main__":
    main()
