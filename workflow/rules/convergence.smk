# Rules of the convergence family (issue 4, section 4): linear rates of vEM, oEM and sEM.
# Symmetric model in population (one cheap job for every setting) and general K = 3,
# d = 2 mixtures fitted by EOTGaussianMixture; rates are estimated from the saved
# trajectories by separate rules, so changing the rate window does not refit anything.
CONVERGENCE = section("convergence")
CONVERGENCE_GENERAL_K = CONVERGENCE["general_k"]


rule convergence_symmetric:
    output:
        f"{RESULTS}/convergence/symmetric_trajectories.csv",
    log:
        f"{LOGS}/convergence/symmetric.log",
    benchmark:
        f"{BENCHMARKS}/convergence/symmetric.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
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
        f"{TABLES}/convergence_general_k.csv",
    log:
        f"{LOGS}/convergence/general_k.log",
    benchmark:
        f"{BENCHMARKS}/convergence/general_k.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    params:
        cfg=dict(
            seed=config["seed"],
            **{
                key: value
                for key, value in CONVERGENCE_GENERAL_K.items()
                if key != "rate_window"
            },
        ),
    script:
        "../scripts/convergence_general_k.py"


rule convergence_rates:
    input:
        trajectories=f"{RESULTS}/convergence/symmetric_trajectories.csv",
    output:
        table=f"{TABLES}/convergence_rates.csv",
    log:
        f"{LOGS}/convergence/rates.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        cfg={
            "window": CONVERGENCE["rate_window"],
            "tail_fraction": CONVERGENCE["tail_fraction"],
        },
    script:
        "../scripts/convergence_rates.py"


rule convergence_general_k_rates:
    input:
        trajectories=f"{TABLES}/convergence_general_k.csv",
    output:
        table=f"{TABLES}/convergence_general_k_rates.csv",
    log:
        f"{LOGS}/convergence/general_k_rates.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        cfg={
            "window": CONVERGENCE_GENERAL_K["rate_window"],
            "tail_fraction": CONVERGENCE["tail_fraction"],
        },
    script:
        "../scripts/convergence_rates.py"


rule convergence_figure:
    input:
        trajectories=f"{RESULTS}/convergence/symmetric_trajectories.csv",
        rates=f"{TABLES}/convergence_rates.csv",
        general_k=f"{TABLES}/convergence_general_k.csv",
        general_k_rates=f"{TABLES}/convergence_general_k_rates.csv",
    output:
        pdf=report(
            f"{FIGURES}/convergence_rates.pdf",
            caption="../report/convergence_rates.rst",
            category="Convergence rates",
        ),
        png=f"{FIGURES}/convergence_rates.png",
    log:
        f"{LOGS}/convergence/figure.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        cfg={"display_alpha": CONVERGENCE["display_alpha"]},
    script:
        "../scripts/convergence_figure.py"


FINAL_OUTPUTS += [
    f"{FIGURES}/convergence_rates.pdf",
    f"{FIGURES}/convergence_rates.png",
    f"{TABLES}/convergence_rates.csv",
    f"{TABLES}/convergence_general_k.csv",
    f"{TABLES}/convergence_general_k_rates.csv",
]
