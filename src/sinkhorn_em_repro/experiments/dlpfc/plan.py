"""What the spatial-domain rules run, worked out from the validated ``dlpfc`` config section.

Two studies share the code: ``dlpfc`` (the configured Visium slices, K = 7) and ``mob`` (the
mouse olfactory bulb, K = 5, sample name "mOB"). :func:`plan_studies` lists, per study, its
samples, weight settings and fit settings; the rule file only turns them into paths.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sinkhorn_em_repro.experiments.dlpfc.fits import STARTS, check_choice, fit_settings, hc_seed_indices
from sinkhorn_em_repro.experiments.osmfish import seed_chunks

__all__ = ["MOB_SAMPLE", "STUDIES", "StudyPlan", "plan_studies", "slice_dataset_keys"]

STUDIES = ("dlpfc", "mob")
MOB_SAMPLE = "mOB"


@dataclass(frozen=True)
class StudyPlan:
    """Samples and fits of one study.

    Attributes
    ----------
    samples : tuple of str
    settings : list of (features, covariance_type, weights, method)
    chunks : list of list of int
        Seed indices of each fit job.
    map_weights : str
        Weight setting drawn in the study's tissue map.
    mclust_weights : str
        Weight setting whose start mclust shares.
    starts : tuple of str
        Starts fitted (:data:`~.fits.STARTS`).
    hc_seeds : list of int
        Seed indices with an hc start (empty without it; ``[0]`` when the tree uses every spot).
    """

    samples: tuple[str, ...]
    settings: list[tuple[str, str, str, str]]
    chunks: list[list[int]]
    map_weights: str
    mclust_weights: str
    starts: tuple[str, ...] = ("kmeans++",)
    hc_seeds: list[int] = ()


def slice_dataset_keys(slice_id: str) -> dict[str, str]:
    """Keys under ``datasets.files`` of a DLPFC slice's counts and positions."""
    return {"counts": f"dlpfc_{slice_id}_counts", "positions": f"dlpfc_{slice_id}_positions"}


def _check_subset(name: str, values, allowed, allowed_name: str) -> None:
    extra = [value for value in values if value not in allowed]
    if extra:
        raise ValueError(f"dlpfc: {name} {extra} must be among {allowed_name} {list(allowed)}")


def plan_studies(cfg: Mapping, dataset_keys) -> dict[str, StudyPlan]:
    """The plan of both studies from the ``dlpfc`` section; ValueError on inconsistent keys.

    Parameters
    ----------
    cfg : mapping
        The validated ``dlpfc`` config section (defaults filled).
    dataset_keys : collection of str
        The configured dataset keys (``datasets.files``), to name a missing one early.
    """
    starts = tuple(value for value in STARTS if value in cfg.get("starts", ["kmeans++"]))
    for value in cfg.get("starts", []):
        check_choice("dlpfc: starts", value, STARTS)
    if "kmeans++" not in starts:
        raise ValueError(
            f"dlpfc: starts {list(starts)} lacks kmeans++, which the tissue maps (best-likelihood seed) refit; "
            "add kmeans++ to starts"
        )
    hc = cfg.get("hc", {})
    hc_seeds = hc_seed_indices(cfg["n_seeds"], hc.get("subset")) if "hc" in starts else []
    # The hc fits of seed j run in the job of seed j's k-means++ fits (no extra jobs).
    chunks = seed_chunks(cfg["n_seeds"], cfg["seeds_per_job"])
    claim_start = cfg.get("claim", {}).get("start")
    if claim_start is not None and claim_start not in starts:
        raise ValueError(f"dlpfc: claim.start {claim_start!r} must be among starts {list(starts)}; add it to starts")
    mob = cfg["mob"]
    for study, section, weight_key in (("dlpfc", cfg, "weight_settings"), ("mob", mob, "weight_settings")):
        _check_subset(
            f"{study} reestimate_weights", section["reestimate_weights"], section[weight_key], "weight_settings"
        )
    _check_subset("map.features", [cfg["map"]["features"]], cfg["feature_sets"], "feature_sets")
    _check_subset("map.covariance_type", [cfg["map"]["covariance_type"]], cfg["covariance_types"], "covariance_types")
    _check_subset("map.weights", [cfg["map"]["weights"]], cfg["weight_settings"], "weight_settings")
    _check_subset("mob.map_weights", [mob["map_weights"]], mob["weight_settings"], "mob.weight_settings")
    if "adjacent" in cfg["weight_settings"]:
        _check_subset("slices", cfg["slices"], cfg["adjacent"], "the keys of adjacent")
    if cfg["mclust"]["enabled"] and "tied" not in cfg["covariance_types"]:
        raise ValueError("dlpfc: mclust (model EEE) is compared with the tied fits; add tied to covariance_types")
    needed = [cfg["layers_dataset"], mob["dataset"]]
    needed += [key for slice_id in cfg["slices"] for key in slice_dataset_keys(slice_id).values()]
    missing = [key for key in needed if key not in dataset_keys]
    if missing:
        raise ValueError(f"dlpfc: the datasets {missing} are not configured under datasets.files")

    def study(samples, section, map_weights):
        settings = fit_settings(
            cfg["feature_sets"],
            cfg["covariance_types"],
            section["weight_settings"],
            cfg["methods"],
            section["reestimate_weights"],
        )
        return StudyPlan(
            tuple(samples), settings, chunks, map_weights, section["reestimate_weights"][0], starts, list(hc_seeds)
        )

    return {
        "dlpfc": study(cfg["slices"], cfg, cfg["map"]["weights"]),
        "mob": study([MOB_SAMPLE], mob, mob["map_weights"]),
    }
