r"""Job plans of the sweeps (used by workflow/rules/sweeps.smk): one job per setting, dataset and block of initialisations."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from sinkhorn_em_repro.experiments.sweeps.setting import SweepSetting
from sinkhorn_em_repro.fitting import FitOptions

__all__ = ["batch_jobs", "plan_epsilon_sweep", "plan_init_sweep", "scaled_count"]


def scaled_count(count: int, sweep_scale: float) -> int:
    """``ceil(count * sweep_scale)``, at least 1 (the rounding of ``sweep_scale``)."""
    if not sweep_scale > 0:
        raise ValueError(f"sweep_scale must be > 0, got {sweep_scale!r}.")
    return max(1, math.ceil(count * sweep_scale - 1e-9))


#: Keywords of every sweep job taken from the config section as they are (the fit options
#: travel as one FitOptions record, ``options``).
_JOB_KEYS = (
    "n_samples",
    "exact_proportions",
    "pair_weights_by_size",
    "success_rtol",
    "success_atol",
)


def _plan(cfg: Mapping, seed: int, sweep_scale: float, job_keys: Sequence[str]) -> dict[str, dict]:
    n_datasets = scaled_count(int(cfg["n_datasets"]), sweep_scale)
    n_inits = scaled_count(int(cfg["n_inits"]), sweep_scale)
    block = int(cfg["inits_per_job"])
    if block < 1:
        raise ValueError(f"inits_per_job must be >= 1, got {block}.")
    options = FitOptions.from_config(cfg)
    jobs: dict[str, dict] = {}
    for weights in cfg["weights"]:
        for dim in cfg["dims"]:
            for separation in cfg["separations"]:
                setting = SweepSetting.create(weights, dim, separation)
                for dataset in range(n_datasets):
                    for first in range(0, n_inits, block):
                        count = min(block, n_inits - first)
                        key = f"{setting.key}/data{dataset}_inits{first}-{first + count - 1}"
                        if key in jobs:
                            raise ValueError(f"the config lists setting {setting.key} twice.")
                        jobs[key] = {
                            "weights": list(setting.weights),
                            "dim": setting.dim,
                            "separation": setting.separation,
                            "dataset": dataset,
                            "first_init": first,
                            "n_inits": count,
                            "seed": int(seed),
                            "options": options,
                            **{k: cfg[k] for k in (*_JOB_KEYS, *job_keys)},
                        }
    return jobs


def plan_init_sweep(cfg: Mapping, seed: int, sweep_scale: float = 1.0) -> dict[str, dict]:
    """Jobs of the initialisation sweep: ``{job key: kwargs of run_init_sweep_chunk}``.

    One job per (setting, dataset, block of ``inits_per_job`` initialisations). The numbers
    of datasets and of initialisations are ``ceil(n * sweep_scale)``.
    """
    return _plan(cfg, seed, sweep_scale, ("schemes", "methods"))


def plan_epsilon_sweep(cfg: Mapping, seed: int, sweep_scale: float = 1.0) -> dict[str, dict]:
    """Jobs of the epsilon sweep: ``{job key: kwargs of run_epsilon_sweep_chunk}``."""
    return _plan(cfg, seed, sweep_scale, ("init", "methods", "epsilons", "anneal_schedules"))


def batch_jobs(chunks: Mapping[str, Mapping], chunks_per_job: int) -> dict[str, dict]:
    """Group a sweep's chunks into jobs of ``chunks_per_job`` chunks: ``{"batch<i>": {"chunks": [...]}}``.

    The chunks are taken in the sorted order of their keys (setting, dataset, first
    initialisation), so consecutive chunks of the same dataset share a job and its reference
    fits. The grouping depends on the config only, never on ``--cores``; every chunk's rows
    are computed from its own seeds, so any grouping gives the same tables.
    """
    per_job = int(chunks_per_job)
    if per_job < 1:
        raise ValueError(f"chunks_per_job must be >= 1, got {chunks_per_job!r}.")
    keys = sorted(chunks)
    width = len(str(max(len(keys) - 1, 0) // per_job))
    return {
        f"batch{index // per_job:0{width}d}": {"chunks": [dict(chunks[key]) for key in keys[index : index + per_job]]}
        for index in range(0, len(keys), per_job)
    }
