# Rules of the landscape family: NLL vs EOT loss.
# 1-D: one job per alpha* evaluates both losses of the symmetric model on the theta grid
# with the core's nll / Sinkhorn eot_loss; one job gathers the curves and finds the local
# minima. 2-D: one job evaluates both losses and their gradients on a (theta1, theta2)
# grid (vectorised K = 2 solver), one finds and classifies the stationary points.
import re

LANDSCAPE = section("landscape")
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
        out.LANDSCAPE_CURVE.path,
    log:
        out.log("landscape", "curve_alpha{alpha}"),
    benchmark:
        out.benchmark("landscape", "curve_alpha{alpha}")
    wildcard_constraints:
        alpha="|".join(re.escape(a) for a in LANDSCAPE_ALPHAS),
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
        curves=expand(rules.landscape_curve.output[0], alpha=LANDSCAPE_ALPHAS),
    output:
        curves=out.LANDSCAPE_CURVES.path,
        minima=out.LANDSCAPE_MINIMA.path,
    log:
        out.log("landscape", "minima"),
    params:
        cfg=LANDSCAPE_SAMPLE,
    script:
        "../scripts/landscape_minima.py"


rule landscape_figure:
    input:
        curves=rules.landscape_minima.output.curves,
        minima=rules.landscape_minima.output.minima,
    output:
        **figure_outputs("landscape"),
    log:
        out.log("landscape", "figure"),
    script:
        "../scripts/landscape_figure.py"


rule landscape_2d_grid:
    output:
        out.LANDSCAPE_GRID_2D.path,
    log:
        out.log("landscape", "grid_2d"),
    benchmark:
        out.benchmark("landscape", "grid_2d")
    resources:
        runtime=15,
    params:
        cfg=LANDSCAPE_2D,
    script:
        "../scripts/landscape_2d_grid.py"


rule landscape_2d_stationary:
    input:
        grid=rules.landscape_2d_grid.output[0],
    output:
        out.LANDSCAPE_2D_STATIONARY.path,
    log:
        out.log("landscape", "stationary_2d"),
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
        grid=rules.landscape_2d_grid.output[0],
        stationary=rules.landscape_2d_stationary.output[0],
    output:
        **figure_outputs("landscape_2d"),
    log:
        out.log("landscape", "figure_2d"),
    script:
        "../scripts/landscape_2d_figure.py"


FINAL_OUTPUTS += out.final_outputs("landscape")
