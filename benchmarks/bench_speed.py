"""Speed and memory of the core library as users meet it, one BLAS thread.

Sections (``--sections``, default all):

``defaults``  default-constructed oEM vs scikit-learn's GaussianMixture per iteration, from the
              same random start (random data points, identity covariances, uniform weights);
              only ``tol=0, max_iter=N`` differ from the defaults, so both run N iterations
              (and scikit-learn's ``init_params="random_from_data"``: with the start given, its
              default would still fit a KMeans that the start then overrides). Also oEM with
              ``track_eot_loss=True`` (the default before it became opt-in).
``sem``       Sinkhorn-EM vs EM per iteration of the same estimator (default constructors),
              n = 50,000, d = 6, full covariances, K in {3, 45, 195}, random data points as
              starts with identity or nearest-point covariances; known weights uniform while
              the clusters are unequal (Dirichlet(2) proportions), or equal to the true
              proportions. First 5 iterations (dominated by the first
              E-steps from a random start) and first 20. ``exact`` is sEM with every E-step
              solved to 1e-9 (``sinkhorn_tol=1e-9``); "EOT loss: sEM - exact" compares the
              exact EOT loss (``eot_loss``, not timed) at the parameters the default fit
              and the exact one reached: inexact early E-steps must not buy their speed
              with less progress (<= 0: the default got at least as far).
``converge``  whole fits to convergence (default ``tol``) from one random start at K = 45
              and 195 (uniform weights): EM, Sinkhorn-EM with its defaults and with every
              E-step exact; seconds, iterations, seconds per iteration against EM's, and
              the exact EOT loss where each stopped (one run each: minutes).
``memory``    peak resident memory and seconds per iteration of Sinkhorn-EM (and EM) at
              n = 1e5 and 1e6, K = 195, d = 6, full, uniform weights, 2 iterations, each in a
              fresh subprocess (VmHWM of the child).
``batch``     fits per CPU-second on the sweeps' settings (n = 2,000, K = 3 and 5, d = 2 and
              10, 20 random-data-point starts, tol = 1e-6, sinkhorn_tol = 1e-6, max_iter = 200,
              track_eot_loss = False as the sweeps pass it): one fit per start vs one
              ``fit_many`` batch.

Every time is CPU time (``time.process_time``, one BLAS thread): on a shared machine it is
less disturbed by other processes than wall time. Ratios compare measurements taken back to
back in the same process, the two fits of a ratio in turn (so that a drift of the machine's
speed shifts both); each number is the best of ``--repeats``.

``--baseline-src DIR`` also runs every section but ``memory`` at n = 1e6 with the package
found in ``DIR`` (e.g. ``git archive <commit> src | tar -x -C DIR`` of the tree before a
change, then ``DIR/src``) in a subprocess, and prints its numbers next to these ("before").

Usage: python benchmarks/bench_speed.py [--sections defaults sem converge memory batch] [--repeats 2]
                                        [--baseline-src DIR] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
import warnings
from datetime import date

import numpy as np
from threadpoolctl import threadpool_limits

N, D = 50_000, 6
COMPONENTS = (3, 45, 195)


# ---------------------------------------------------------------------- problems
def mixture(n, K, d=D, seed=1, separation=3.0):
    """Unit-variance clusters with Dirichlet(2) proportions, closest means ``separation`` apart."""
    rng = np.random.default_rng([seed, K])
    proportions = rng.dirichlet(np.full(K, 2.0))
    side = 1.5 * separation * K ** (1.0 / d)
    means = []
    while len(means) < K:  # rejection sampling: every pair at least `separation` apart
        candidate = rng.random(d) * side
        if all(np.linalg.norm(candidate - m) >= separation for m in means):
            means.append(candidate)
    means = np.array(means)
    labels = rng.choice(K, size=n, p=proportions)
    X = means[labels] + rng.standard_normal((n, d))
    start = X[rng.choice(n, K, replace=False)]  # random data points
    return X, proportions, start


def best_cpu(fn, repeats):
    """``(best time, last result)`` of ``fn`` run ``repeats`` times."""
    return best_cpu_interleaved([fn], repeats)[0]


def best_cpu_interleaved(functions, repeats):
    """``[(best time, last result)]`` of each function, run in turn ``repeats`` times.

    Interleaving puts the numbers of a ratio in the same stretch of time: a machine whose
    speed drifts during the run shifts both alike.
    """
    times = [[] for _ in functions]
    results = [None] * len(functions)
    for _ in range(repeats):
        for j, fn in enumerate(functions):
            start = time.process_time()
            results[j] = fn()
            times[j].append(time.process_time() - start)
    return [(min(t), result) for t, result in zip(times, results)]


def has_auto():
    import inspect

    from sinkhorn_em import EOTGaussianMixture

    return inspect.signature(EOTGaussianMixture).parameters["sinkhorn_tol"].default == "auto"


# ---------------------------------------------------------------------- sections
def section_defaults(repeats, iterations=10):
    from sklearn.mixture import GaussianMixture

    from sinkhorn_em import EOTGaussianMixture

    rows = []
    for K in COMPONENTS:
        X, _, start = mixture(N, K)
        identity = np.broadcast_to(np.eye(D), (K, D, D)).copy()

        def ours(**options):
            model = EOTGaussianMixture(
                K, method="oem", tol=0, max_iter=iterations, means_init=start, covariances_init=identity, **options
            )
            return model.fit(X)

        def sklearn():
            # init_params="random_from_data": the *_init arguments override the initialisation
            # anyway, and the default "kmeans" would fit a KMeans first (not an iteration).
            model = GaussianMixture(
                K,
                tol=0,
                max_iter=iterations,
                init_params="random_from_data",
                means_init=start,
                weights_init=np.full(K, 1 / K),
                precisions_init=identity,
            )
            return model.fit(X)

        (t_ours, _), (t_sklearn, _) = best_cpu_interleaved([ours, sklearn], repeats)
        t_tracked, _ = best_cpu(lambda: ours(track_eot_loss=True), 1)
        rows.append(
            {
                "K": K,
                "oem_s_per_iter": t_ours / (iterations + 1),
                "sklearn_s_per_iter": t_sklearn / iterations,
                "tracked_s_per_iter": t_tracked / (iterations + 1),
            }
        )
    return rows


def section_sem(repeats, iteration_counts=(5, 20)):
    from sinkhorn_em import EOTGaussianMixture

    exact = {"sinkhorn_tol": 1e-9} if has_auto() else {}
    rows = []
    for K in COMPONENTS:
        X, proportions, start = mixture(N, K)
        identity = np.broadcast_to(np.eye(D), (K, D, D)).copy()
        for weights_name, weights in (("uniform", np.full(K, 1 / K)), ("true", proportions)):
            for covariance_name, covariances in (("identity", identity), ("nearest", None)):
                for iterations in iteration_counts if covariance_name == "identity" else iteration_counts[:1]:

                    def fit(method, iterations=iterations, covariances=covariances, weights=weights, **options):
                        model = EOTGaussianMixture(
                            K,
                            weights=weights,
                            method=method,
                            tol=0,
                            max_iter=iterations,
                            means_init=start,
                            covariances_init=covariances,
                            **options,
                        )
                        return model.fit(X)

                    reps = repeats if iterations <= 5 else 1
                    # track_eot_loss=False: the default now, and what "EM" costs before too.
                    (t_em, _), (t_sem, model) = best_cpu_interleaved(
                        [lambda: fit("em", track_eot_loss=False), lambda: fit("sinkhorn")], reps
                    )
                    row = {
                        "K": K,
                        "weights": weights_name,
                        "covariances": covariance_name,
                        "iterations": iterations,
                        "em_s_per_iter": t_em / (iterations + 1),
                        "sem_s_per_iter": t_sem / (iterations + 1),
                        "newton_iterations": int(model.history_["sinkhorn_iterations"].sum()),
                    }
                    if exact:
                        t_exact, exact_model = best_cpu(lambda: fit("sinkhorn", **exact), 1)
                        row["exact_s_per_iter"] = t_exact / (iterations + 1)
                        # Progress, not only cost: the exact EOT loss at the parameters reached
                        # (not timed); inexact E-steps must not buy speed with a worse fit.
                        row["eot_loss_gap"] = float(model.eot_loss(X) - exact_model.eot_loss(X))
                    rows.append(row)
                    print(f"    sem: {row}", file=sys.stderr, flush=True)
    return rows


_MEMORY_CHILD = r"""
import sys, time, warnings, resource
import numpy as np
from threadpoolctl import threadpool_limits
sys.path.insert(0, {bench_dir!r})
from bench_speed import mixture
from sinkhorn_em import EOTGaussianMixture
n, K, method, sinkhorn_tol = {n}, {K}, {method!r}, {sinkhorn_tol!r}
X, _, start = mixture(n, K)
identity = np.broadcast_to(np.eye(X.shape[1]), (K, X.shape[1], X.shape[1])).copy()
options = {{"track_eot_loss": False}} if method == "em" else {{}}
if sinkhorn_tol is not None:
    options["sinkhorn_tol"] = sinkhorn_tol
with threadpool_limits(1), warnings.catch_warnings():
    warnings.simplefilter("ignore")
    model = EOTGaussianMixture(K, weights=np.full(K, 1 / K), method=method, tol=0, max_iter={iterations},
                               means_init=start, covariances_init=identity, **options)
    t = time.process_time(); model.fit(X); t = time.process_time() - t
hwm = [int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM")][0]
print("RESULT", t, hwm / 1024, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def memory_run(n, K, method, sinkhorn_tol=None, iterations=2, env=None):
    code = _MEMORY_CHILD.format(
        bench_dir=os.path.dirname(os.path.abspath(__file__)),
        n=n,
        K=K,
        method=method,
        sinkhorn_tol=sinkhorn_tol,
        iterations=iterations,
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    line = next(line for line in out.splitlines() if line.startswith("RESULT"))
    cpu, hwm, _ = (float(x) for x in line.split()[1:])
    return {"s_per_iter": cpu / (iterations + 1), "peak_mib": hwm}


def section_memory(sizes=(100_000, 1_000_000), env=None, auto=True):
    rows = []
    for n in sizes:
        variants = [("sinkhorn", None)]
        if auto:
            variants.append(("sinkhorn", 1e-9))
        variants.append(("em", None))
        for method, sinkhorn_tol in variants:
            result = memory_run(n, 195, method, sinkhorn_tol, env=env)
            label = method if sinkhorn_tol is None else f"{method} (sinkhorn_tol={sinkhorn_tol:g})"
            rows.append({"n": n, "fit": label, **result})
            print(f"    memory: {rows[-1]}", file=sys.stderr, flush=True)
    return rows


def sweep_dataset(weights, d, n=2000, separation=2.0, seed=0):
    rng = np.random.default_rng([seed, len(weights), d])
    K = len(weights)
    means = rng.standard_normal((K, d))
    closest = min(np.linalg.norm(means[i] - means[j]) for i in range(K) for j in range(i))
    means *= separation / closest
    counts = np.round(np.asarray(weights) * n).astype(int)
    X = means[np.repeat(np.arange(K), counts)] + rng.standard_normal((counts.sum(), d))
    return X, rng


SWEEP_SETTINGS = [(weights, d) for weights in ([0.5, 0.3, 0.2], [0.434, 0.26, 0.156, 0.094, 0.056]) for d in (2, 10)]


def section_batch(repeats, starts=20, settings=None):
    import sinkhorn_em
    from sinkhorn_em import EOTGaussianMixture

    batched = hasattr(sinkhorn_em, "fit_many")
    rows = []
    for index, (weights, d) in enumerate(SWEEP_SETTINGS):
        if settings is not None and index not in settings:
            continue
        X, rng = sweep_dataset(weights, d)
        K = len(weights)
        alpha = np.asarray(weights) / np.sum(weights)
        means0 = np.stack([X[rng.choice(len(X), K, replace=False)] for _ in range(starts)])
        for method in ("em", "oem", "sinkhorn"):
            options = dict(
                weights=alpha, method=method, tol=1e-6, max_iter=200, sinkhorn_tol=1e-6, track_eot_loss=False
            )
            t_single, singles = best_cpu(
                lambda: [EOTGaussianMixture(K, means_init=m, **options).fit(X) for m in means0], repeats
            )
            row = {"K": K, "d": d, "method": method, "single_fits_per_s": starts / t_single}
            if batched:
                t_batch, batch = best_cpu(
                    lambda: sinkhorn_em.fit_many(EOTGaussianMixture(K, **options), X, means0), repeats
                )
                row["batch_fits_per_s"] = starts / t_batch
                row["max_param_diff"] = max(
                    max(np.abs(a.means_ - b.means_).max(), np.abs(a.covariances_ - b.covariances_).max())
                    for a, b in zip(singles, batch)
                )
            rows.append(row)
    return rows


def section_converge(repeats):
    """Whole fits to convergence (default tol) from one random start, K = 45 and 195, uniform weights."""
    from sinkhorn_em import EOTGaussianMixture

    rows = []
    for K in COMPONENTS[1:]:
        X, _, start = mixture(N, K)
        identity = np.broadcast_to(np.eye(D), (K, D, D)).copy()
        for name, options in (
            ("em", {"method": "em"}),
            ("sinkhorn", {"method": "sinkhorn"}),
            ("sinkhorn (sinkhorn_tol=1e-9)", {"method": "sinkhorn", "sinkhorn_tol": 1e-9}),
        ):
            model = EOTGaussianMixture(
                K, weights=np.full(K, 1 / K), means_init=start, covariances_init=identity, max_iter=5000, **options
            )
            seconds, model = best_cpu(lambda model=model: model.fit(X), 1)
            rows.append(
                {
                    "K": K,
                    "fit": name,
                    "seconds": seconds,
                    "n_iter": int(model.n_iter_),
                    "converged": bool(model.converged_),
                    "eot_loss": float(model.eot_loss(X)),
                }
            )
            print(f"    converge: {rows[-1]}", file=sys.stderr, flush=True)
    return rows


SECTIONS = {"defaults": section_defaults, "sem": section_sem, "converge": section_converge, "batch": section_batch}


# ---------------------------------------------------------------------- driver
def run_sections(names, repeats, batch_setting=None, env=None):
    """The sections ``names`` in this process, but ``batch``: one fresh process per setting.

    Thousands of small fits in one long process get slower as its heap fragments (markedly
    so before the fit loop stopped allocating ``(n, K)`` arrays), so that later settings would
    be measured in worse conditions than earlier ones; a process per setting measures each
    alike, before and after.
    """
    results = {}
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in names:
            if name == "batch" and batch_setting is None:
                print("  running batch ...", file=sys.stderr, flush=True)
                results[name] = []
                for index in range(len(SWEEP_SETTINGS)):
                    results[name] += child(["batch"], repeats, env, ["--batch-setting", str(index)])["batch"]
            elif name == "batch":
                results[name] = section_batch(repeats, settings={batch_setting})
            elif name in SECTIONS:
                print(f"  running {name} ...", file=sys.stderr, flush=True)
                results[name] = SECTIONS[name](repeats)
    return results


def child(names, repeats, env, extra=()):
    """Run sections in a subprocess (``env`` chooses the package) and return its results."""
    command = [sys.executable, os.path.abspath(__file__), "--json", "--repeats", str(repeats), "--sections", *names]
    out = subprocess.run([*command, *extra], capture_output=True, text=True, env=env, check=True).stdout
    return json.loads(out.splitlines()[-1])


def baseline(src, names, repeats):
    env = {**os.environ, "PYTHONPATH": src}
    names = [name for name in names if name in SECTIONS]
    results = child([name for name in names if name != "batch"], repeats, env) if set(names) - {"batch"} else {}
    if "batch" in names:
        results.update(run_sections(["batch"], repeats, env=env))
    return results, env


def machine():
    try:
        model = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        model = platform.processor() or "unknown CPU"
    return (
        f"{model}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, Python {platform.python_version()}"
    )


def print_tables(after, before, memory_after, memory_before):
    print(f"# bench_speed.py, {date.today().isoformat()}, {machine()}, 1 BLAS thread, CPU seconds")
    if "defaults" in after:
        print("\n## Default oEM vs scikit-learn GaussianMixture, per iteration (n=50,000, d=6, full, random start)")
        print(
            "| K | oEM s/it | sklearn s/it | oEM / sklearn | before: oEM / sklearn | oEM with track_eot_loss / sklearn |"
        )
        print("|---|---|---|---|---|---|")
        old = {r["K"]: r for r in before.get("defaults", [])}
        for r in after["defaults"]:
            b = old.get(r["K"])
            before_ratio = f"{b['oem_s_per_iter'] / b['sklearn_s_per_iter']:.2f}" if b else "-"
            print(
                f"| {r['K']} | {r['oem_s_per_iter']:.4f} | {r['sklearn_s_per_iter']:.4f} | "
                f"{r['oem_s_per_iter'] / r['sklearn_s_per_iter']:.2f} | {before_ratio} | "
                f"{r['tracked_s_per_iter'] / r['sklearn_s_per_iter']:.2f} |"
            )
    if "sem" in after:
        print(
            "\n## Sinkhorn-EM vs EM of the same estimator, per iteration (n=50,000, d=6, full, random data-point start)"
        )
        print(
            "| K | weights | start covariances | iterations | EM s/it | sEM s/it | sEM / EM | exact E-steps / EM "
            "| EOT loss: sEM - exact | before: EM s/it | before: sEM s/it | before: sEM / EM |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
        key = ("K", "weights", "covariances", "iterations")
        old = {tuple(r[k] for k in key): r for r in before.get("sem", [])}
        for r in after["sem"]:
            b = old.get(tuple(r[k] for k in key))
            before_ratio = (
                f"{b['em_s_per_iter']:.4f} | {b['sem_s_per_iter']:.4f} | {b['sem_s_per_iter'] / b['em_s_per_iter']:.2f}"
                if b
                else "- | - | -"
            )
            exact = f"{r['exact_s_per_iter'] / r['em_s_per_iter']:.2f}" if "exact_s_per_iter" in r else "-"
            gap = f"{r['eot_loss_gap']:+.1e}" if "eot_loss_gap" in r else "-"
            print(
                f"| {r['K']} | {r['weights']} | {r['covariances']} | {r['iterations']} | {r['em_s_per_iter']:.4f} | "
                f"{r['sem_s_per_iter']:.4f} | {r['sem_s_per_iter'] / r['em_s_per_iter']:.2f} | {exact} | {gap} "
                f"| {before_ratio} |"
            )
    if "converge" in after:
        print(
            "\n## Whole fits to convergence (n=50,000, d=6, full, random data-point start, identity covariances, "
            "uniform weights, default tol)"
        )
        print("| K | fit | seconds | iterations | s/it | s/it / EM's | converged | EOT loss at the result |")
        print("|---|---|---|---|---|---|---|---|")
        per_iteration = {r["K"]: r["seconds"] / (r["n_iter"] + 1) for r in after["converge"] if r["fit"] == "em"}
        for r in after["converge"]:
            rate = r["seconds"] / (r["n_iter"] + 1)
            print(
                f"| {r['K']} | {r['fit']} | {r['seconds']:.1f} | {r['n_iter']} | {rate:.4f} | "
                f"{rate / per_iteration[r['K']]:.2f} | {r['converged']} | {r['eot_loss']:.6f} |"
            )
    if memory_after:
        print(
            "\n## Memory and time per iteration, K=195, d=6, full, uniform weights, 2 iterations (fresh process each)"
        )
        print("| n | fit | s/it | peak RSS (MiB) | before: s/it | before: peak RSS (MiB) |")
        print("|---|---|---|---|---|---|")
        old = {(r["n"], r["fit"]): r for r in memory_before}
        for r in memory_after:
            b = old.get((r["n"], r["fit"]))
            cells = f"{b['s_per_iter']:.2f} | {b['peak_mib']:.0f}" if b else "- | -"
            print(f"| {r['n']:,} | {r['fit']} | {r['s_per_iter']:.2f} | {r['peak_mib']:.0f} | {cells} |")
    if "batch" in after:
        print("\n## Fits per CPU-second on the sweeps' settings (n=2,000, 20 starts, tol=1e-6, sinkhorn_tol=1e-6)")
        print("| K | d | method | before: one fit per start | one fit per start | fit_many batch | batch / before |")
        print("|---|---|---|---|---|---|---|")
        old = {(r["K"], r["d"], r["method"]): r for r in before.get("batch", [])}
        for r in after["batch"]:
            b = old.get((r["K"], r["d"], r["method"]))
            before_rate = f"{b['single_fits_per_s']:.1f}" if b else "-"
            gain = f"{r['batch_fits_per_s'] / b['single_fits_per_s']:.1f}x" if b and "batch_fits_per_s" in r else "-"
            batch = f"{r['batch_fits_per_s']:.1f}" if "batch_fits_per_s" in r else "-"
            print(
                f"| {r['K']} | {r['d']} | {r['method']} | {before_rate} | {r['single_fits_per_s']:.1f} | {batch} | {gain} |"
            )
        diffs = [r["max_param_diff"] for r in after["batch"] if "max_param_diff" in r]
        if diffs:
            print(f"\nLargest difference between a batched fit and its single fit: {max(diffs):.1e}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sections", nargs="+", default=["defaults", "sem", "converge", "memory", "batch"])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument(
        "--baseline-src", default=None, help="directory holding the sinkhorn_em package to compare with"
    )
    parser.add_argument("--quick", action="store_true", help="memory at n = 1e5 only")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--batch-setting", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--save", default=None, help="also write every measurement to this JSON file")
    parser.add_argument("--load", default=None, help="print the tables of a file written by --save, measure nothing")
    args = parser.parse_args(argv)
    if args.json:  # a baseline child: results as one JSON line
        print(json.dumps(run_sections(args.sections, args.repeats, batch_setting=args.batch_setting)))
        return
    if args.load:
        with open(args.load) as handle:
            saved = json.load(handle)
        print_tables(saved["after"], saved["before"], saved["memory_after"], saved["memory_before"])
        return
    after = run_sections(args.sections, args.repeats)
    before, memory_after, memory_before, env = {}, [], [], None
    if args.baseline_src:
        print("  running the baseline ...", file=sys.stderr, flush=True)
        before, env = baseline(args.baseline_src, args.sections, args.repeats)
    if "memory" in args.sections:
        sizes = (100_000,) if args.quick else (100_000, 1_000_000)
        memory_after = section_memory(sizes)
        if env is not None:  # the baseline needs 6.3 GB and ~11 minutes at n = 1e6: n = 1e5 only
            memory_before = section_memory((100_000,), env=env, auto=False)
    if args.save:
        with open(args.save, "w") as handle:
            json.dump(
                {"after": after, "before": before, "memory_after": memory_after, "memory_before": memory_before},
                handle,
            )
    print_tables(after, before, memory_after, memory_before)


if __name__ == "__main__":
    main()
