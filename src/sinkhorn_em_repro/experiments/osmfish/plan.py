r"""Job plan of the osmFISH family: the settings to fit, seed chunks, shared fit options and time limits."""

from __future__ import annotations

from sinkhorn_em_repro._checks import _check_choice
from sinkhorn_em_repro.fitting import FitOptions

__all__ = ["FEATURE_SETS", "METHODS", "TARGETS", "WEIGHT_SETTINGS", "fit_settings", "plan_osmfish", "seed_chunks"]


TARGETS = ("region", "celltype")


FEATURE_SETS = ("expr", "expr+xy")


WEIGHT_SETTINGS = ("true", "perturbed", "uniform")


METHODS = ("vEM", "oEM", "sEM", "sklearn")


def fit_settings(
    feature_sets: dict[str, list[str]],
    weight_settings: list[str],
    methods: list[str],
    sklearn_weights: list[str],
) -> list[tuple[str, str, str, str]]:
    """Every (target, features, weights, method) to fit, in table order.

    ``feature_sets`` maps each target to its feature sets (an empty list skips the
    target). The ``sklearn`` baseline runs only under the weight settings listed in
    ``sklearn_weights``: it re-estimates the weights, so like oEM it uses them only
    as a start, and :func:`crosscheck_oem_sklearn` shows it is oEM to rounding.
    """
    for target, sets in feature_sets.items():
        _check_choice("target", target, TARGETS)
        for feature_set in sets:
            _check_choice("features", feature_set, FEATURE_SETS)
    for setting in list(weight_settings) + list(sklearn_weights):
        _check_choice("weights", setting, WEIGHT_SETTINGS)
    for method in methods:
        _check_choice("method", method, METHODS)
    return [
        (target, feature_set, setting, method)
        for target in TARGETS
        for feature_set in FEATURE_SETS
        if feature_set in feature_sets.get(target, [])
        for setting in WEIGHT_SETTINGS
        if setting in weight_settings
        for method in METHODS
        if method in methods and (method != "sklearn" or setting in sklearn_weights)
    ]


def seed_chunks(n_seeds: int, seeds_per_job: int) -> list[list[int]]:
    """Seed indices ``0..n_seeds-1`` cut into consecutive chunks of at most ``seeds_per_job``."""
    if n_seeds < 1 or seeds_per_job < 1:
        raise ValueError(f"n_seeds ({n_seeds}) and seeds_per_job ({seeds_per_job}) must be positive integers")
    return [list(range(start, min(start + seeds_per_job, n_seeds))) for start in range(0, n_seeds, seeds_per_job)]


#: Keywords of run_osmfish_chunk / best_seed_maps taken from the config section as they are
#: (the fit options travel as one FitOptions record, ``options``).
_JOB_KEYS = ("perturb_strength",)
#: CPU seconds per fit at max_iter 100 on one core (sEM, the slowest); job time limits
#: take x10 for slow nodes and tighter tolerances.
_SECONDS_PER_FIT = {"region": 0.3, "celltype": 1.5}


def _minutes(seconds: float) -> int:
    """Time limit (minutes) of a job whose fits take ``seconds``: 2 plus ten times the estimate."""
    return 2 + int(10 * seconds / 60)


def plan_osmfish(cfg: dict, base_seed: int) -> dict:
    """Every job of the osmFISH family, for the rule file.

    Parameters
    ----------
    cfg : dict
        The validated ``osmfish`` config section.
    base_seed : int

    Returns
    -------
    dict with
        ``settings`` (:func:`fit_settings`), ``chunks`` (:func:`seed_chunks`),
        ``map_features`` (feature sets of the region map and of the cross-check),
        ``fit_cfg`` (keywords shared by every fit of :func:`run_osmfish_chunk` and
        :func:`best_seed_maps`), ``fit_runtime`` (target -> time limit in minutes of each
        seed chunk) and ``map_runtime``.
    """
    settings = fit_settings(cfg["feature_sets"], cfg["weight_settings"], cfg["methods"], cfg["sklearn_weights"])
    chunks = seed_chunks(cfg["n_seeds"], cfg["seeds_per_job"])
    map_features = list(cfg["feature_sets"].get("region", []))
    if not settings:
        raise ValueError("osmfish: feature_sets, weight_settings and methods select no fit; configure at least one")
    if not map_features or cfg["map_weights"] not in cfg["weight_settings"]:
        raise ValueError(
            "osmfish: the region map needs feature_sets: region non-empty and map_weights among weight_settings "
            f"(got feature_sets {cfg['feature_sets']}, map_weights {cfg['map_weights']!r})"
        )
    seconds = {target: per_fit * cfg["max_iter"] / 100 for target, per_fit in _SECONDS_PER_FIT.items()}
    return {
        "settings": settings,
        "chunks": chunks,
        "map_features": map_features,
        "fit_cfg": {
            "base_seed": base_seed,
            "options": FitOptions.from_config(cfg),
            **{key: cfg[key] for key in _JOB_KEYS},
        },
        "fit_runtime": {target: [_minutes(s * len(chunk)) for chunk in chunks] for target, s in seconds.items()},
        # The map refits one seed of each of (at most) 4 methods per feature set.
        "map_runtime": _minutes(seconds["region"] * 4 * len(map_features)),
    }
