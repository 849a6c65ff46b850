"""The scale a run was computed at, per family, from the validated config: what each verdict rests on.

A verdict computed from 5 trials and one from 20 are not the same evidence, so the report
shows, for every family and under every claim, how many samples, trials, datasets,
initialisations and seeds the run used. The text is built from the config alone (the same
config gives the same text), by the functions below, one per family.
"""

from __future__ import annotations

from collections.abc import Mapping

from sinkhorn_em_repro import outputs
from sinkhorn_em_repro.experiments.celegans.plan import celegans_datasets
from sinkhorn_em_repro.experiments.sweeps.plan import scaled_count

__all__ = ["claim_scale", "family_scales"]


def _landscape(config: Mapping) -> str:
    cfg = config["landscape"]
    return (
        f"n = {cfg['n']} samples per alpha*, {len(cfg['alphas'])} alpha*, {cfg['n_grid']}-point theta grid; "
        f"two free means: {cfg['n_grid_2d']} x {cfg['n_grid_2d']} grid at alpha* = {cfg['alpha_2d']}"
    )


def _fig2(config: Mapping) -> str:
    cfg = config["fig2"]
    return (
        f"{cfg['alpha_grid']['num']} alpha* x {cfg['theta0_grid']['num']} theta0 x {cfg['n_reps']} repetitions, "
        f"N = {cfg['n_samples']}; {cfg['vem_iterations']}/{cfg['oem_iterations']}/{cfg['sem_iterations']} "
        f"iterations (vEM/oEM/sEM), {cfg['estep']} sEM E-step"
    )


def _convergence(config: Mapping) -> str:
    cfg = config["convergence"]
    general = cfg["general_k"]
    symmetric = len(cfg["theta_stars"]) * len(cfg["alphas"]) * len(cfg["theta0_factors"])
    return (
        f"symmetric model in population: {symmetric} (theta*, alpha, theta0) settings + "
        f"{len(cfg['overspecified_alphas']) * len(cfg['overspecified_theta0s'])} overspecified; "
        f"K = {len(general['weights'])}, d = {general['dim']}: {general['n_datasets']} datasets of "
        f"n = {general['n_samples']}, {general['max_iter']} iterations"
    )


def _sweep(config: Mapping, name: str) -> str:
    cfg, scale = config[name], config["sweep_scale"]
    settings = len(cfg["weights"]) * len(cfg["dims"]) * len(cfg["separations"])
    starts = f"{len(cfg['schemes'])} init schemes" if "schemes" in cfg else f"init {cfg['init']}"
    return (
        f"{settings} settings x {scaled_count(cfg['n_datasets'], scale)} datasets x "
        f"{scaled_count(cfg['n_inits'], scale)} initialisations ({starts}; sweep_scale {scale:g}), n = {cfg['n_samples']}"
    )


def _sweeps(config: Mapping) -> str:
    return f"init sweep: {_sweep(config, 'init_sweep')}; epsilon sweep: {_sweep(config, 'epsilon_sweep')}"


def _celegans(config: Mapping) -> str:
    cfg = config["celegans"]
    groups: dict[tuple, list[str]] = {}
    for name, spec in celegans_datasets(cfg).items():
        size = f"{spec['n_voxels']} voxels" if spec.get("n_voxels") else f"{spec['voxels_per_neuron']} voxels/neuron"
        kind = name if spec["kind"] == "atlas" else f"real worms, {spec['region']}"
        groups.setdefault((kind, size, spec["n_trials"], spec["n_iter"]), []).append(name)
    parts = [
        f"{kind}{f' ({len(names)})' if len(names) > 1 else ''}: {size}, {trials} trials, {n_iter} iterations"
        for (kind, size, trials, n_iter), names in groups.items()
    ]
    authors = cfg["authors_protocol"]
    if authors["enabled"]:
        budget = "/".join(str(authors["n_iter"][m]) for m in ("vEM", "oEM", "sEM"))
        parts.append(
            f"authors' protocol: {cfg['protocol']['n_voxels']} voxels, {authors['n_trials']} trials, "
            f"{budget} iterations (vEM/oEM/sEM)"
        )
    return "; ".join(parts)


def _osmfish(config: Mapping) -> str:
    cfg = config["osmfish"]
    settings = sum(len(sets) for sets in cfg["feature_sets"].values()) * len(cfg["weight_settings"])
    return f"{cfg['n_seeds']} seeds per setting, {settings} (target, features, weights) settings, 4,839 cells"


def _dlpfc(config: Mapping) -> str:
    cfg = config["dlpfc"]
    return (
        f"{len(cfg['slices'])} DLPFC slices ({', '.join(cfg['slices'])}) and the olfactory bulb, "
        f"{cfg['n_seeds']} seeds per setting, {len(cfg['feature_sets'])} feature sets x "
        f"{len(cfg['covariance_types'])} covariance types x {len(cfg['weight_settings'])} weight settings"
    )


def _report(config: Mapping) -> str:
    cfg = config["report"]["identities"]
    return f"identity checks: n = {cfg['n_samples']}, {cfg['n_iterations']} iterations"


_FAMILIES = {
    "landscape": _landscape,
    "fig2": _fig2,
    "convergence": _convergence,
    "sweeps": _sweeps,
    "celegans": _celegans,
    "osmfish": _osmfish,
    "dlpfc": _dlpfc,
    "report": _report,
}


def family_scales(config: Mapping) -> dict[str, str]:
    """Family -> one line saying the scale of its run (the validated config, defaults filled)."""
    return {family: describe(config) for family, describe in _FAMILIES.items()}


def claim_scale(claim_id: int, scales: Mapping[str, str]) -> str:
    """The scale behind a claim: the lines of the families whose tables its verdict reads."""
    families = []
    for name in outputs.CLAIM_TABLES.get(claim_id, ()):
        family = outputs.table(name).family
        if family not in families:
            families.append(family)
    return "; ".join(f"{family}: {scales[family]}" for family in families if family in scales)
