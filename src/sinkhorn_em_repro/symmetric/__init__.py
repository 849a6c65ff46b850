r"""Batched EM, overparametrised EM and Sinkhorn-EM for the symmetric two-component model.

The model of Mena et al. (2020, section 5) on the line: two unit-variance Gaussian
components with means :math:`(\theta, -\theta)` and weights :math:`(\alpha, 1 - \alpha)`.
Component 0 is the one at :math:`+\theta`. With entropic weight :math:`\varepsilon = 1`
and cost :math:`C_{ik} = -\log N(x_i; \mu_k, 1)`, every E-step produces a coupling
:math:`P` of total mass 1 whose rows carry the sample weights :math:`q_i` (:math:`1/N` for
a sample; quadrature weights for the population), and whose two columns have the form

.. math:: P_{i0} = q_i\, \sigma(u_i), \qquad P_{i1} = q_i\, \sigma(-u_i), \qquad
          u_i = s + 2 x_i \theta ,

because :math:`C_{i1} - C_{i0} = 2 x_i \theta`. The three methods differ only in the
log-odds offset :math:`s`:

* **vEM** (weights known): :math:`s = \operatorname{logit}\alpha` (semi-relaxed E-step);
* **oEM** (weights estimated): :math:`s = \operatorname{logit} w_t`, then
  :math:`w_{t+1} = \sum_i P_{i0}` (or, in the order of the authors' Figure 2 code,
  :math:`P` recomputed at the new mean and the old weight);
* **sEM** (Sinkhorn-EM): :math:`s` is the difference :math:`g_0 - g_1` of the column
  potentials of the balanced entropic OT problem, i.e. the unique root of the monotone
  scalar equation :math:`\sum_i q_i \sigma(s + 2 x_i \theta) = \alpha`
  (:func:`balanced_log_odds`, which calls the one K = 2 solver
  :func:`solve_balanced_offset`).

The M-step for the constrained means maximises
:math:`\sum_i P_{i0} \log N(x_i; \theta, 1) + P_{i1} \log N(x_i; -\theta, 1)`, which gives

.. math:: \theta \leftarrow \sum_i (P_{i0} - P_{i1})\, x_i
          = \sum_i q_i\, x_i \tanh(u_i / 2).

Everything is vectorised over a batch of independent runs (rows of ``x``), so a whole
grid of initialisations and repetitions costs a handful of array operations per
iteration. ``alpha = 1`` (or 0) is handled exactly: :math:`s = \pm\infty`, the empty
component gets no mass, and no NaN or warning is produced.

Modules: :mod:`.balanced` (E-steps: the K = 2 solver, the authors' Sinkhorn sweeps, the
EOT loss), :mod:`.run` (the iterations, the population quadrature), :mod:`.errors`.
"""

from sinkhorn_em_repro.symmetric.balanced import (
    balanced_log_odds,
    sinkhorn_sweeps_plan,
    solve_balanced_offset,
    symmetric_eot_loss,
)
from sinkhorn_em_repro.symmetric.errors import symmetric_parameter_error, symmetric_w2_squared, w2_squared_two_atoms
from sinkhorn_em_repro.symmetric.run import (
    ESTEP_VARIANTS,
    OEM_WEIGHT_UPDATES,
    SYMMETRIC_METHODS,
    SymmetricRun,
    population_grid,
    run_symmetric,
)

__all__ = [
    "ESTEP_VARIANTS",
    "OEM_WEIGHT_UPDATES",
    "SYMMETRIC_METHODS",
    "SymmetricRun",
    "balanced_log_odds",
    "population_grid",
    "run_symmetric",
    "sinkhorn_sweeps_plan",
    "solve_balanced_offset",
    "symmetric_eot_loss",
    "symmetric_parameter_error",
    "symmetric_w2_squared",
    "w2_squared_two_atoms",
]
