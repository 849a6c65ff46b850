r"""Synthetic benchmark datasets with their seeds.

Two kinds of benchmark, both drawn by the generators of :mod:`sinkhorn_em.synthetic`:

* ``symmetric``: the 1-D mixture ``alpha* N(theta*, 1) + (1 - alpha*) N(-theta*, 1)``
  (component 0 at ``+theta*`` with weight ``alpha*``);
* ``mixture``: ``K`` isotropic components in ``d`` dimensions with covariance
  ``std^2 I``, chosen weights and chosen *separation* ``s``: the minimum distance
  between two means is exactly ``s * std``.

:func:`benchmark_specs` expands the ``synthetic`` config section into named dataset
specifications; :func:`build_benchmark` draws one dataset from a generator seeded by
``derive_seed(seed, "synthetic", <every parameter of the spec>)`` and describes it in a
one-row manifest (requested and realised weights and separation, and a SHA-256 of the
data so a regenerated dataset can be checked byte for byte). Scripts do the file I/O.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sinkhorn_em.synthetic import MixtureSample, make_mixture, symmetric_mixture
from sinkhorn_em_repro.seeding import derive_seed

__all__ = [
    "WEIGHT_SCHEMES",
    "Benchmark",
    "benchmark_seed",
    "benchmark_specs",
    "build_benchmark",
    "min_mean_distance",
    "scheme_weights",
]

WEIGHT_SCHEMES = ("uniform", "linear", "geometric")


def scheme_weights(scheme: str, n_components: int) -> np.ndarray:
    """Mixing weights of a named scheme.

    ``uniform``: ``w_k = 1/K``; ``linear``: ``w_k ∝ K - k``; ``geometric``:
    ``w_k ∝ 2^{-k}`` (``k = 0 .. K-1``, so component 0 is the heaviest).
    """
    if scheme not in WEIGHT_SCHEMES:
        raise ValueError(f"weight scheme must be one of {WEIGHT_SCHEMES}, got {scheme!r}.")
    if int(n_components) < 1:
        raise ValueError(f"n_components must be >= 1, got {n_components}.")
    k = np.arange(int(n_components), dtype=float)
    raw = {"uniform": np.ones_like(k), "linear": k[::-1] + 1.0, "geometric": 0.5**k}[scheme]
    return raw / raw.sum()


def _check_weights(weights, name: str) -> tuple[float, ...]:
    weights = np.asarray(weights, dtype=float)
    if weights.ndim != 1 or weights.size < 2:
        raise ValueError(f"{name}: weights must be a list of at least 2 numbers, got {weights.tolist()}.")
    if np.any(weights <= 0) or abs(weights.sum() - 1.0) > 1e-9:
        raise ValueError(f"{name}: weights must be positive and sum to 1, got {weights.tolist()}.")
    return tuple(float(w) for w in weights)


def _fmt(value: float) -> str:
    return f"{float(value):g}"


def benchmark_specs(section: dict) -> dict[str, dict]:
    """Named dataset specifications from the ``synthetic`` config section.

    Parameters
    ----------
    section : dict
        ``symmetric: {n, theta_star, alphas, replicates}`` and
        ``mixtures: {n, n_components, dims, separations, weight_schemes, std, replicates,
        custom}``, where the grid keys are lists (their product is generated) and
        ``custom`` is a list of ``{name, n, weights, dim, separation}``.

    Returns
    -------
    dict
        ``name -> spec``; a spec holds ``kind`` (``symmetric`` | ``mixture``) and every
        generator argument, so it alone determines the dataset (with the base seed).
        Names encode the parameters, e.g. ``symmetric_theta1_alpha0.7_n1000_rep0`` or
        ``mixture_K3_d2_sep4_linear_n2000_rep0``.
    """
    specs: dict[str, dict] = {}

    def add(name: str, spec: dict) -> None:
        if name in specs:
            raise ValueError(f"Duplicate synthetic dataset name {name!r}: rename one of the custom datasets.")
        specs[name] = spec

    sym = section.get("symmetric", {})
    for alpha in sym.get("alphas", []):
        if not 0.0 < float(alpha) <= 1.0:
            raise ValueError(f"synthetic.symmetric.alphas must lie in (0, 1], got {alpha}.")
        for rep in range(int(sym.get("replicates", 1))):
            spec = {
                "kind": "symmetric",
                "n": int(sym["n"]),
                "theta_star": float(sym["theta_star"]),
                "alpha": float(alpha),
                "replicate": rep,
            }
            add(f"symmetric_theta{_fmt(spec['theta_star'])}_alpha{_fmt(alpha)}_n{spec['n']}_rep{rep}", spec)

    mix = section.get("mixtures", {})
    for K in mix.get("n_components", []):
        for dim in mix.get("dims", []):
            for separation in mix.get("separations", []):
                for scheme in mix.get("weight_schemes", []):
                    weights = scheme_weights(scheme, int(K))
                    for rep in range(int(mix.get("replicates", 1))):
                        spec = _mixture_spec(
                            int(mix["n"]), weights, int(dim), float(separation), float(mix.get("std", 1.0)), rep, scheme
                        )
                        name = f"mixture_K{K}_d{dim}_sep{_fmt(separation)}_{scheme}_n{spec['n']}_rep{rep}"
                        add(name, spec)
    for custom in mix.get("custom", []):
        name = str(custom["name"])
        weights = _check_weights(custom["weights"], name)
        for rep in range(int(mix.get("replicates", 1))):
            spec = _mixture_spec(
                int(custom["n"]),
                weights,
                int(custom["dim"]),
                float(custom["separation"]),
                float(mix.get("std", 1.0)),
                rep,
                "custom",
            )
            add(f"mixture_{name}_rep{rep}", spec)
    return specs


def _mixture_spec(n, weights, dim, separation, std, replicate, scheme) -> dict:
    if n < len(weights):
        raise ValueError(f"n = {n} is smaller than the number of components {len(weights)}.")
    if dim < 1 or separation <= 0 or std <= 0:
        raise ValueError(f"need dim >= 1, separation > 0 and std > 0, got {dim}, {separation}, {std}.")
    return {
        "kind": "mixture",
        "n": n,
        "weights": [float(w) for w in weights],
        "dim": dim,
        "separation": separation,
        "std": std,
        "replicate": replicate,
        "weight_scheme": scheme,
    }


def benchmark_seed(spec: dict, base_seed: int) -> int:
    """Seed of a dataset: ``derive_seed(base_seed, "synthetic", kind, <parameters>)``.

    Every parameter that changes the distribution enters the seed, so two specs that
    differ in anything draw independent data, and the dataset name plays no role.
    """
    if spec["kind"] == "symmetric":
        keys = ("symmetric", spec["n"], spec["theta_star"], spec["alpha"], spec["replicate"])
    elif spec["kind"] == "mixture":
        keys = (
            "mixture",
            spec["n"],
            tuple(spec["weights"]),
            spec["dim"],
            spec["separation"],
            spec["std"],
            spec["replicate"],
        )
    else:
        raise ValueError(f"spec kind must be 'symmetric' or 'mixture', got {spec['kind']!r}.")
    return derive_seed(int(base_seed), "synthetic", *keys)


def min_mean_distance(means: np.ndarray) -> float:
    """Smallest Euclidean distance between two rows of ``means`` (``inf`` for one mean)."""
    means = np.asarray(means, dtype=float)
    if means.shape[0] < 2:
        return float("inf")
    diff = means[:, None, :] - means[None, :, :]
    dist = np.sqrt((diff**2).sum(-1))
    return float(dist[np.triu_indices(means.shape[0], 1)].min())


@dataclass(frozen=True)
class Benchmark:
    """One generated dataset: the sample, its seed and a one-row manifest."""

    name: str
    seed: int
    sample: MixtureSample
    manifest: pd.DataFrame

    def arrays(self) -> dict[str, np.ndarray]:
        """Arrays to store (``np.savez``): data, labels, true parameters and the seed."""
        return {
            "X": self.sample.X,
            "labels": self.sample.labels,
            "weights": self.sample.weights,
            "means": self.sample.means,
            "covariances": self.sample.covariances,
            "seed": np.array(self.seed, dtype=np.uint64),
        }


def _join(values) -> str:
    return ";".join(f"{v:.6g}" for v in np.ravel(values))


def build_benchmark(name: str, spec: dict, base_seed: int) -> Benchmark:
    r"""Draw the dataset ``spec`` (from :func:`benchmark_specs`) and describe it.

    Returns
    -------
    Benchmark
        Its ``manifest`` has columns ``name, kind, n, dim, n_components, weight_scheme,
        weights, empirical_weights, separation, realised_separation, std, theta_star,
        alpha, replicate, seed, x_sha256``. ``separation`` is the requested minimum
        distance between means in units of ``std`` (``2 theta*`` for the symmetric
        mixture); ``realised_separation`` is the same quantity measured on the drawn
        means; ``empirical_weights`` are the label frequencies.
    """
    seed = benchmark_seed(spec, base_seed)
    rng = np.random.default_rng(seed)
    if spec["kind"] == "symmetric":
        sample = symmetric_mixture(spec["n"], spec["theta_star"], spec["alpha"], rng)
        std, separation, scheme = 1.0, 2.0 * abs(spec["theta_star"]), "symmetric"
        theta_star, alpha = spec["theta_star"], spec["alpha"]
    else:
        sample = make_mixture(spec["n"], spec["weights"], spec["dim"], spec["separation"], rng, std=spec["std"])
        std, separation, scheme = spec["std"], spec["separation"], spec["weight_scheme"]
        theta_star, alpha = np.nan, np.nan
    K = sample.weights.size
    counts = np.bincount(sample.labels, minlength=K)
    manifest = pd.DataFrame(
        [
            {
                "name": name,
                "kind": spec["kind"],
                "n": int(sample.X.shape[0]),
                "dim": int(sample.X.shape[1]),
                "n_components": int(K),
                "weight_scheme": scheme,
                "weights": _join(sample.weights),
                "empirical_weights": _join(counts / counts.sum()),
                "separation": separation,
                "realised_separation": min_mean_distance(sample.means) / std,
                "std": std,
                "theta_star": theta_star,
                "alpha": alpha,
                "replicate": int(spec["replicate"]),
                "seed": int(seed),
                "x_sha256": hashlib.sha256(np.ascontiguousarray(sample.X, dtype="<f8").tobytes()).hexdigest(),
            }
        ]
    )
    return Benchmark(name, seed, sample, manifest)
