r"""Job plan of the C. elegans family: datasets of the config section, pools, fit and segmentation jobs."""

from __future__ import annotations

from sinkhorn_em_repro.fitting import FitOptions

__all__ = ["REAL_WORMS", "authors_protocol_dataset", "celegans_datasets", "celegans_pools", "plan_celegans"]


#: Real worms: dataset key (``datasets: files:``) -> (loader, worm name, regions with data).
#: The fDNC example worms are head recordings.
REAL_WORMS = {
    "openworm_NeuroPAL_1_YAw": ("neuroml", "NeuroPAL_1_YAw", ("head", "tail")),
    "openworm_NeuroPAL_2_AMw": ("neuroml", "NeuroPAL_2_AMw", ("head", "tail")),
    "openworm_NeuroPAL_3_NPv16_64_YAw": ("neuroml", "NeuroPAL_3_NPv16_64_YAw", ("head", "tail")),
    "openworm_NeuroPAL_7_YAw": ("neuroml", "NeuroPAL_7_YAw", ("head", "tail")),
    "openworm_NeuroPAL_9_YAw": ("neuroml", "NeuroPAL_9_YAw", ("head", "tail")),
    "openworm_NeuroPAL_14_Aw": ("neuroml", "NeuroPAL_14_Aw", ("head", "tail")),
    "openworm_NeuroPAL_24_L4w": ("neuroml", "NeuroPAL_24_L4w", ("head", "tail")),
    "fdnc_template": ("fdnc", "fDNC_template", ("head",)),
    "fdnc_test": ("fdnc", "fDNC_test", ("head",)),
}


def celegans_datasets(cfg: dict) -> dict[str, dict]:
    """Every dataset of the ``celegans`` config section, by name, with what builds it.

    Each value has ``kind`` (``atlas`` or ``worm``), ``inputs`` (dataset keys of the
    ``datasets: files:`` section it reads), ``n_trials``, ``n_iter`` and the scene
    arguments. Names: ``atlas_<region>5`` style for the protocol (``protocol.name``),
    ``atlas_<region>`` for whole atlas regions, ``<worm>_<region>`` for real worms.
    """
    out = {}
    protocol = cfg["protocol"]
    if protocol["enabled"]:
        out[protocol["name"]] = {
            "kind": "atlas",
            "inputs": [cfg["atlas"]],
            "region": protocol["region"],
            "neurons": list(protocol["neurons"]),
            "n_voxels": int(protocol["n_voxels"]),
            "n_trials": int(protocol["n_trials"]),
            "n_iter": int(protocol["n_iter"]),
        }
    scaled = cfg["scaled"]
    for region in scaled["regions"]:
        out[f"atlas_{region}"] = {
            "kind": "atlas",
            "inputs": [cfg["atlas"]],
            "region": region,
            "voxels_per_neuron": int(scaled["voxels_per_neuron"][region]),
            "n_trials": int(scaled["n_trials"][region]),
            "n_iter": int(scaled["n_iter"][region]),
        }
    real = cfg["real"]
    for key in real["worms"]:
        if key not in REAL_WORMS:
            raise ValueError(f"celegans: real: worms: unknown worm {key!r}; choose among {sorted(REAL_WORMS)}")
        loader, worm, available = REAL_WORMS[key]
        for region in real["regions"][loader]:
            if region not in available:
                raise ValueError(
                    f"celegans: real: regions: {loader}: worm {worm} has no {region} recording; "
                    f"its regions are {list(available)}"
                )
            out[f"{worm}_{region}"] = {
                "kind": "worm",
                "inputs": [key, cfg["table_s2"]],
                "loader": loader,
                "worm": worm,
                "region": region,
                "voxels_per_neuron": int(real["voxels_per_neuron"][region]),
                "min_voxels_per_neuron": int(real["min_voxels_per_neuron"]),
                "volume_power": float(real["volume_power"]),
                "color_std": float(real["color_std"]),
                "n_trials": int(real["n_trials"][region]),
                "n_iter": int(real["n_iter"][region]),
            }
    return out


def authors_protocol_dataset(cfg: dict) -> dict | None:
    """The dataset of the authors' protocol variant (the neurons and voxels of ``protocol``), or None when disabled.

    Its name is the protocol's: the ``protocol`` column of the tables tells the two apart.
    """
    authors = cfg["authors_protocol"]
    if not authors["enabled"]:
        return None
    protocol = cfg["protocol"]
    return {
        "name": protocol["name"],
        "kind": "atlas",
        "inputs": [cfg["atlas"]],
        "region": protocol["region"],
        "neurons": list(protocol["neurons"]),
        "n_voxels": int(protocol["n_voxels"]),
        "n_trials": int(authors["n_trials"]),
        "n_iter": {method: int(n) for method, n in authors["n_iter"].items()},
    }


def celegans_pools(datasets: dict) -> dict[str, list[str]]:
    """Pooled datasets of the summary: the real worms of one source and region (>= 2 worms).

    Names: ``NeuroPAL_worms_<region>`` (openworm NeuroML worms), ``fDNC_worms_<region>``.
    """
    groups: dict[str, list[str]] = {}
    for name, spec in datasets.items():
        if spec["kind"] == "worm":
            source = "NeuroPAL" if spec["loader"] == "neuroml" else "fDNC"
            groups.setdefault(f"{source}_worms_{spec['region']}", []).append(name)
    return {name: members for name, members in groups.items() if len(members) >= 2}


#: Keywords of run_celegans_chunk / segmentation_map taken from the config section as is (the
#: fit options travel as one FitOptions record, ``options``).
_JOB_KEYS = (
    "scale_log_mean",
    "scale_log_sd",
    "test_fraction",
    "init_variance",
)


# Upper bounds on K for resource estimates of real worms (their K is known only after loading).
_MAX_NEURONS = {"head": 195, "tail": 45}


def _job_resources(spec: dict, n_inits: int, n_trials: int) -> dict:
    """Memory (MB) and time limit (minutes) of a job, from the size of its (n, K) arrays.

    About 3e7 voxel-component products per second per core for an EM iteration; sEM's
    Sinkhorn solves cost up to ~10x more, hence the margin.
    """
    K = len(spec["neurons"]) if "neurons" in spec else _MAX_NEURONS[spec["region"]]
    n = spec.get("n_voxels") or 2 * spec["voxels_per_neuron"] * K
    products = n * K * (spec["n_iter"] + 1) * n_inits * n_trials
    return {"mem_mb": 400 + int(12 * 8 * n * K / 1e6), "runtime": 5 + int(10 * products / 3e7 / 60)}


def plan_celegans(cfg: dict, base_seed: int, dataset_files: dict) -> dict:
    """Every job of the C. elegans family, for the rule file.

    Parameters
    ----------
    cfg : dict
        The validated ``celegans`` config section.
    base_seed : int
    dataset_files : dict
        ``datasets: files:`` (key -> url, sha256, path), for the fDNC checksums.

    Returns
    -------
    dict with
        ``datasets`` (:func:`celegans_datasets`), ``pools`` (:func:`celegans_pools`),
        ``authors_fits``: the jobs of the authors' protocol variant
        (:func:`~sinkhorn_em_repro.experiments.celegans.authors.run_authors_chunk`), keyed and
        built like ``fits``,
        ``fits``: job id ``"<dataset>/<method>/chunk<i>"`` -> ``wildcards`` (of its
        output file), ``inputs`` (dataset keys),
        ``scene`` (keywords of :func:`sinkhorn_em_repro.experiments.celegans.load_scene` but the paths), ``cfg`` (keywords of
        :func:`run_celegans_chunk`), ``mem_mb``, ``runtime``;
        ``segmentation``: the same for :func:`segmentation_map`.
    """
    datasets = celegans_datasets(cfg)
    job_keywords = {key: cfg[key] for key in _JOB_KEYS}

    def fit_options(spec):
        # Every C. elegans fit runs exactly the dataset's n_iter iterations.
        return FitOptions.from_config(cfg, tol=0.0, max_iter=spec["n_iter"])

    def scene_args(name):
        spec = datasets[name]
        sha256 = dataset_files[spec["inputs"][0]]["sha256"] if spec.get("loader") == "fdnc" else None
        return {"dataset": name, "spec": spec, "min_position": cfg["min_position"], "sha256": sha256}

    fits = {}
    for name, spec in datasets.items():
        size = int(cfg["trials_per_job"])
        chunks = [list(range(s, min(s + size, spec["n_trials"]))) for s in range(0, spec["n_trials"], size)]
        for method in cfg["methods"]:
            for index, trials in enumerate(chunks):
                fits[f"{name}/{method}/chunk{index}"] = {
                    "wildcards": {"dataset": name, "method": method, "chunk": index},
                    "inputs": list(spec["inputs"]),
                    "scene": scene_args(name),
                    "cfg": {
                        "method": method,
                        "trials": trials,
                        "base_seed": int(base_seed),
                        "inits": list(cfg["inits"]),
                        "options": fit_options(spec),
                        "radii": list(cfg["radii"]),
                        **job_keywords,
                    },
                    **_job_resources(spec, len(cfg["inits"]), len(trials)),
                }
    authors_fits = {}
    authors = authors_protocol_dataset(cfg)
    if authors is not None:
        options = cfg["authors_protocol"]
        size = int(cfg["trials_per_job"])
        chunks = [list(range(s, min(s + size, authors["n_trials"]))) for s in range(0, authors["n_trials"], size)]
        scene = {"dataset": authors["name"], "spec": authors, "min_position": cfg["min_position"], "sha256": None}
        for method in cfg["methods"]:
            for index, trials in enumerate(chunks):
                n_iter = authors["n_iter"][method]
                authors_fits[f"{authors['name']}/{method}/chunk{index}"] = {
                    "wildcards": {"dataset": authors["name"], "method": method, "chunk": index},
                    "inputs": list(authors["inputs"]),
                    "scene": scene,
                    "cfg": {
                        "method": method,
                        "trials": trials,
                        "base_seed": int(base_seed),
                        "inits": list(cfg["inits"]),
                        "n_iter": n_iter,
                        "radii": list(cfg["radii"]),
                        "prior_divisor": float(options["prior_divisor"]),
                        "init_variance": float(options["init_variance"]),
                        "eigenvalue_bounds": list(options["eigenvalue_bounds"]),
                        "train_probability": float(options["train_probability"]),
                        "scale_log_mean": cfg["scale_log_mean"],
                        "scale_log_sd": cfg["scale_log_sd"],
                    },
                    **_job_resources({**authors, "n_iter": n_iter}, len(cfg["inits"]), len(trials)),
                }
    chosen = cfg["segmentation"]["dataset"]
    if chosen not in datasets:
        raise ValueError(
            f"celegans: segmentation: dataset {chosen!r} is not among the configured datasets "
            f"{sorted(datasets)}; pick one of them or add its worm and region under celegans: real"
        )
    segmentation = {
        "inputs": list(datasets[chosen]["inputs"]),
        "scene": scene_args(chosen),
        "cfg": {
            "trial": int(cfg["segmentation"]["trial"]),
            "base_seed": int(base_seed),
            "inits": list(cfg["inits"]),
            "methods": list(cfg["methods"]),
            "options": fit_options(datasets[chosen]),
            **job_keywords,
        },
        **_job_resources(datasets[chosen], len(cfg["inits"]) * len(cfg["methods"]), 1),
    }
    return {
        "datasets": datasets,
        "pools": celegans_pools(datasets),
        "fits": fits,
        "authors_fits": authors_fits,
        "segmentation": segmentation,
    }
