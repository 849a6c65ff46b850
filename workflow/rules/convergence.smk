# Rules of the convergence family: linear rates of vEM, oEM and sEM.
# Symmetric model in population (one cheap job for every setting) and general K = 3,
# d = 2 mixtures fitted by EOTGaussianMixture; rates are estimated from the saved
# trajectories by separate rules, so changing the rate window does not refit anything.
from sinkhorn_em_repro.fitting import FitOptions

CONVERGENCE = section("convergence")
CONVERGENCE_GENERAL_K = CONVERGENCE["general_k"]
# The fit options of the general-K runs, one record; each run takes exactly max_iter steps.
CONVERGENCE_GENERAL_K_OPTIONS = FitOptions.from_config(CONVERGENCE_GENERAL_K, tol=0.0)


rule convergence_symmetric:
    output:
        out.CONVERGENCE_TRAJECTORIES.path,
    log:
        out.log("convergence", "symmetric"),
    benchmark:
        out.benchmark("convergence", "symmetric")
    params:
        cfg={
            key: CONVERGENCE[key]
            for key in (
                "theta_stars",
                "alphas",
                "theta0_factors",
                "overspecified_alphas",
                "overspecified_theta0s",
                "max_iter",
                "grid_step",
                "grid_half_width",
            )
        },
    script:
        "../scripts/convergence_symmetric.py"


rule convergence_general_k:
    output:
        out.CONVERGENCE_GENERAL_K.path,
    log:
        out.log("convergence", "general_k"),
    benchmark:
        out.benchmark("convergence", "general_k")
    resources:
        mem_mb=2000,
        runtime=20,
    params:
        cfg=dict(
            seed=config["seed"],
            options=CONVERGENCE_GENERAL_K_OPTIONS,
            **{
                key: value
                for key, value in CONVERGENCE_GENERAL_K.items()
                if key not in ("rate_window", *FitOptions.field_names())
            },
        ),
    script:
        "../scripts/convergence_general_k.py"


rule convergence_rates:
    input:
        trajectories=rules.convergence_symmetric.output[0],
    output:
        table=out.CONVERGENCE_RATES.path,
    log:
        out.log("convergence", "rates"),
    params:
        cfg={
            "window": CONVERGENCE["rate_window"],
            "tail_fraction": CONVERGENCE["tail_fraction"],
        },
    script:
        "../scripts/convergence_rates.py"


rule convergence_general_k_rates:
    input:
        trajectories=rules.convergence_general_k.output[0],
    output:
        table=out.CONVERGENCE_GENERAL_K_RATES.path,
    log:
        out.log("convergence", "general_k_rates"),
    params:
        cfg={
            "window": CONVERGENCE_GENERAL_K["rate_window"],
            "tail_fraction": CONVERGENCE["tail_fraction"],
        },
    script:
        "../scripts/convergence_rates.py"


rule convergence_figure:
    input:
        trajectories=rules.convergence_symmetric.output[0],
        rates=rules.convergence_rates.output.table,
        general_k=rules.convergence_general_k.output[0],
        general_k_rates=rules.convergence_general_k_rates.output.table,
    output:
        **figure_outputs("convergence_rates"),
    log:
        out.log("convergence", "figure"),
    params:
        cfg={"display_alpha": CONVERGENCE["display_alpha"]},
    script:
        "../scripts/convergence_figure.py"


FINAL_OUTPUTS += out.final_outputs("convergence")
