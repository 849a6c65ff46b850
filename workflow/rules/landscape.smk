# Rules of the landscape family (issue 4, section 2): NLL vs EOT loss.
# 1-D: one job per alpha* evaluates both losses of the symmetric model on the theta grid
# with the core's nll / Sinkhorn eot_loss; one job gathers the curves and finds the local
# minima. 2-D: one job evaluates both losses and their gradients on a (theta1, theta2)
# grid (vectorised K = 2 solver), one finds and classifies the stationary points.
import re

LANDSCAPE = section("landscape")
LANDSCAPE_DIR = f"{RESULTS}/landscape"
# Wildcard value -> alpha*; "%g" keeps file names short and stable (0.55 -> "0.55").
LANDSCAPE_ALPHAS = {f"{alpha:g}": alpha for alpha in LANDSCAPE["alphas"]}
LANDSCAPE_SAMPLE = {
    "n": LANDSCAPE["n"],
    "theta_star": LANDSCAPE["theta_star"],
    "seed": config["seed"],
    "sinkhorn_tol": LANDSCAPE["sinkhorn_tol"],
}
LANDSCAPE_GRID_1D = {
    "theta_min": LANDSCAPE["theta_min"],
    "theta_max": LANDSCAPE["theta_max"],
    "n_grid": LANDSCAPE["n_grid"],
}
LANDSCAPE_2D = {
    "alpha": LANDSCAPE["alpha_2d"],
    "n": LANDSCAPE["n"],
    "theta_star": LANDSCAPE["theta_star"],
    "theta_min": LANDSCAPE["theta_min"],
    "theta_max": LANDSCAPE["theta_max"],
    "n_grid": LANDSCAPE["n_grid_2d"],
    "seed": config["seed"],
}


rule landscape_curve:
    output:
        f"{LANDSCAPE_DIR}/curves/alpha{{alpha}}.csv",
    log:
        f"{LOGS}/landscape/curve_alpha{{alpha}}.log",
    benchmark:
        f"{BENCHMARKS}/landscape/curve_alpha{{alpha}}.tsv"
    wildcard_constraints:
        alpha="|".join(re.escape(a) for a in LANDSCAPE_ALPHAS),
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=500,
        runtime=10,
    params:
        cfg=lambda wildcards: {
            "alpha": LANDSCAPE_ALPHAS[wildcards.alpha],
            **LANDSCAPE_SAMPLE,
            **LANDSCAPE_GRID_1D,
        },
    script:
        "../scripts/landscape_curve.py"


rule landscape_minima:
    input:
        curves=expand(
            f"{LANDSCAPE_DIR}/curves/alpha{{alpha}}.csv", alpha=LANDSCAPE_ALPHAS
        ),
    output:
        curves=f"{TABLES}/landscape_curves.csv",
        minima=f"{TABLES}/landscape_minima.csv",
    log:
        f"{LOGS}/landscape/minima.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=500,
        runtime=10,
    params:
        cfg=LANDSCAPE_SAMPLE,
    script:
        "../scripts/landscape_minima.py"


rule landscape_figure:
    input:
        curves=f"{TABLES}/landscape_curves.csv",
        minima=f"{TABLES}/landscape_minima.csv",
    output:
        pdf=report(
            f"{FIGURES}/landscape.pdf",
            caption="../report/landscape.rst",
            category="Landscape",
        ),
        png=report(
            f"{FIGURES}/landscape.png",
            caption="../report/landscape.rst",
            category="Landscape",
        ),
    log:
        f"{LOGS}/landscape/figure.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../scripts/landscape_figure.py"


rule landscape_2d_grid:
    output:
        f"{LANDSCAPE_DIR}/grid_2d.csv",
    log:
        f"{LOGS}/landscape/grid_2d.log",
    benchmark:
        f"{BENCHMARKS}/landscape/grid_2d.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=15,
    params:
        cfg=LANDSCAPE_2D,
    script:
        "../scripts/landscape_2d_grid.py"


rule landscape_2d_stationary:
    input:
        grid=f"{LANDSCAPE_DIR}/grid_2d.csv",
    output:
        f"{TABLES}/landscape_2d_stationary.csv",
    log:
        f"{LOGS}/landscape/stationary_2d.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        cfg={
            "alpha": LANDSCAPE["alpha_2d"],
            "n": LANDSCAPE["n"],
            "theta_star": LANDSCAPE["theta_star"],
            "seed": config["seed"],
            "sinkhorn_tol": LANDSCAPE["sinkhorn_tol"],
        },
    script:
        "../scripts/landscape_2d_stationary.py"


rule landscape_2d_figure:
    input:
        grid=f"{LANDSCAPE_DIR}/grid_2d.csv",
        stationary=f"{TABLES}/landscape_2d_stationary.csv",
    output:
        pdf=report(
            f"{FIGURES}/landscape_2d.pdf",
            caption="../report/landscape_2d.rst",
            category="Landscape",
        ),
        png=report(
            f"{FIGURES}/landscape_2d.png",
            caption="../report/landscape_2d.rst",
            category="Landscape",
        ),
    log:
        f"{LOGS}/landscape/figure_2d.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../scripts/landscape_2d_figure.py"


FINAL_OUTPUTS += [
    f"{FIGURES}/landscape.pdf",
    f"{FIGURES}/landscape.png",
    f"{TABLES}/landscape_minima.csv",
    f"{TABLES}/landscape_curves.csv",
    f"{FIGURES}/landscape_2d.pdf",
    f"{FIGURES}/landscape_2d.png",
    f"{TABLES}/landscape_2d_stationary.csv",
]
