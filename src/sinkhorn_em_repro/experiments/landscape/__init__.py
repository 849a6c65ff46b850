r"""Loss landscapes of the negative log-likelihood and of the EOT loss.

Model: one-dimensional data, two Gaussian components with unit variance and known
weights ``w = (w_0, w_1)``; the cost is ``C_ik = -log N(x_i; mu_k, 1)``. With
``a_ik = log w_k - C_ik`` the two objectives of the paper are

.. math::

    \mathrm{NLL}(\mu) = -\frac1n \sum_i \log \sum_k e^{a_{ik}}, \qquad
    L_{\mathrm{EOT}}(\mu) = \max_{g \in \mathbb{R}^K}\;
        \sum_k w_k g_k - \frac1n \sum_i \log \sum_k e^{a_{ik} + g_k}.

The second line is the semi-dual of the balanced entropic problem
``min <P, C> + KL(P || (1/n) x w)`` over plans with rows ``1/n`` and columns ``w``
(epsilon = 1). The NLL is the same concave dual objective evaluated at ``g = 0``,
hence ``L_EOT >= NLL``, with equality exactly when ``g = 0`` is optimal, i.e. when the
posterior column masses equal ``w``.

For ``K = 2`` only ``u = g_1 - g_0`` matters. With ``D_i = a_i1 - a_i0`` (an affine
function of ``x_i``) and ``sigma`` the logistic function,

.. math::

    L_{\mathrm{EOT}} = -\overline{a_{\cdot 0}} + \max_u \Big[ w_1 u
        - \frac1n \sum_i \operatorname{softplus}(D_i + u) \Big],

whose optimality condition ``(1/n) sum_i sigma(D_i + u) = w_1`` is one monotone scalar
equation, the one the symmetric model's E-step solves too.
:func:`two_component_losses` solves it for many parameter values at once with the shared
K = 2 solver (:func:`sinkhorn_em_repro.symmetric.solve_balanced_offset`, safeguarded
Newton), which is what makes a 2-D grid over ``(mu_0, mu_1)`` affordable; the test suite
checks it against the core's Sinkhorn-based :func:`sinkhorn_em.eot_loss`.

Gradients follow from Danskin's theorem (the optimal ``u`` is unique):
``dL/dmu_k = -(1/n) sum_i s_ik (x_i - mu_k)`` with ``s_ik`` the posterior
responsibilities (NLL) or ``n`` times the optimal plan (EOT). Stationary points of the
NLL are therefore the fixed points of EM with known weights, those of the EOT loss the
fixed points of Sinkhorn-EM.

The experiment functions follow the project convention: parameters in, DataFrame out,
no file I/O, samples drawn from :func:`sinkhorn_em_repro.seeding.derive_rng`.

Modules: :mod:`.losses` (both losses, vectorised and from the core; the samples),
:mod:`.curves` (1-D symmetric model) and :mod:`.surface` (2-D free means).
"""

from sinkhorn_em_repro.experiments.landscape.curves import find_local_minima, landscape_minima, run_landscape_1d
from sinkhorn_em_repro.experiments.landscape.losses import (
    LOSSES,
    TwoComponentLosses,
    landscape_sample,
    symmetric_losses_core,
    two_component_losses,
)
from sinkhorn_em_repro.experiments.landscape.surface import run_landscape_2d, stationary_points_2d

__all__ = [
    "LOSSES",
    "TwoComponentLosses",
    "find_local_minima",
    "landscape_minima",
    "landscape_sample",
    "run_landscape_1d",
    "run_landscape_2d",
    "stationary_points_2d",
    "symmetric_losses_core",
    "two_component_losses",
]
