"""sinkhorn-em: Gaussian mixtures fitted by EM, overparametrised EM and Sinkhorn-EM.

Sinkhorn-EM (Mena, Nejatbakhsh, Varol & Niles-Weed, 2020) fits a Gaussian mixture with
known mixing weights by minimising an entropic optimal transport loss instead of the
negative log-likelihood; both share the global optimum, and the EOT loss has fewer
spurious local optima.
"""

from .gaussian import estimate_gaussian_parameters, gaussian_cost, log_gaussian_density
from .losses import eot_loss, free_energy, nll, semi_relaxed_plan
from .metrics import ari, matched_parameter_error, nmi, w2_squared
from .mixture import EOTGaussianMixture, fit_many
from .sinkhorn import SinkhornConvergenceWarning, SinkhornResult, sinkhorn_log, sinkhorn_newton

__version__ = "0.1.0"


def __getattr__(name):
    # sinkhorn_em.tl (the AnnData entry point) is imported on first use, so that importing the
    # library never imports anndata's optional extra.
    if name == "tl":
        import importlib

        return importlib.import_module(".tl", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "EOTGaussianMixture",
    "SinkhornConvergenceWarning",
    "SinkhornResult",
    "ari",
    "eot_loss",
    "estimate_gaussian_parameters",
    "fit_many",
    "free_energy",
    "gaussian_cost",
    "log_gaussian_density",
    "matched_parameter_error",
    "nll",
    "nmi",
    "semi_relaxed_plan",
    "sinkhorn_log",
    "sinkhorn_newton",
    "w2_squared",
]
