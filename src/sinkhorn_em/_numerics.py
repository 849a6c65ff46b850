"""Floating-point guards of the balanced solvers and the E-steps, in one place.

Every threshold that protects an iteration from overflow, underflow, subnormal numbers or
a division by zero lives here, so that :func:`~sinkhorn_em.sinkhorn.sinkhorn_log`,
:func:`~sinkhorn_em.sinkhorn.sinkhorn_newton` and the Sinkhorn-EM fits (all of them
running on :mod:`._balanced`) agree on them. The values rest on IEEE 754 double precision:
the largest finite number is ~1.8e308 (``e^709``), the smallest normal one ~2.2e-308
(``e^-708``), and arithmetic on subnormal numbers below that runs 20-100x slower on x86
CPUs (Intel's optimisation manual, "floating-point denormals"; Dawson, "That's not
normal -- the performance of odd floats", 2012).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "ABSORB_LOG_BOUND",
    "BLOCK_BYTES",
    "LOG_FLOOR",
    "NARROW",
    "SATURATED_LOGIT",
    "SINGLE_ROUND_OFF",
    "TINY",
    "UNDERFLOW",
    "exp_below_row_max",
]

# Column scalings v = exp(log_v) outside [e^-50, e^50] are absorbed into the potentials and
# the kernel is rebuilt (Schmitzer 2019, "Stabilized sparse scaling algorithms for entropy
# regularized transport problems", Algorithm 2, absorbs at a threshold tau alike). Every
# kernel row has its largest entry equal to 1, so K v lies in [e^-50, K e^50] and
# u = a / (K v) in [a e^-50 / K, a e^50]: the scaled kernel u K v never overflows, and its
# smallest entries (about a e^(LOG_FLOOR - 100) / K) stay close to the smallest normal
# number e^-708 instead of far below it. A larger bound would push them into subnormal
# numbers; a smaller one rebuilds (one exponential per entry) more often.
ABSORB_LOG_BOUND = 50.0

# Kernel entries (and E-step responsibilities) below e^-600 times their sample's largest
# are stored as e^-600 (~2.6e-261): an exponential or a product that would underflow to a
# subnormal number runs ~20-100x slower, and such an entry changes no row or column sum by
# more than 1e-250 relative.
LOG_FLOOR = -600.0


def exp_below_row_max(block):
    """In place, ``block[s, k, i] <- exp(max(block[s, k, i] - top[s, i], LOG_FLOOR))``; returns ``top``.

    ``top[s, i] = max_k block[s, k, i]`` (``(S, B)``): the exponentials of a block of log
    kernel entries ``(S, K, B)`` against each sample's largest, so the largest is 1 and
    none is below ``e^LOG_FLOOR`` (no overflow, no subnormal number); ``block[s, k, i] =
    top[s, i] + log(result)`` for the entries above the floor.
    """
    top = block.max(axis=1)
    block -= top[:, None, :]
    np.maximum(block, LOG_FLOOR, out=block)
    np.exp(block, out=block)
    return top


# A column mass below this is treated as underflowed and that column half-step is taken in
# the log domain. Right after a rebuild a column made only of floored entries has mass at
# most e^LOG_FLOOR * sum(a) ~ 2.6e-261, below this threshold; any mass that matters is far
# above it; and b / mass stays finite (b <= 1) for the masses that pass.
UNDERFLOW = 1e-250

# Lower bound of a denominator that may be zero (a step length, a tolerance, an objective):
# 1e-300 is a normal number whose reciprocal (1e300) is still finite.
TINY = 1e-300

# Bytes of one block of a pass over the kernel, (problems, components, samples in the block):
# about the size of a per-core L2 cache, so that the second use of a block (the row sums,
# then the column masses) reads it from cache rather than from memory.
BLOCK_BYTES = 1 << 20

# Up to this many components the Hessian's Gram product is done in double precision; above,
# in single precision (twice the BLAS throughput, and W is a sum of non-negative terms, so
# every entry keeps a relative error ~1e-6).
NARROW = 8

# Single-precision Gram operands are rounded to multiples of 2**-63 (x + c - c with
# c = 2**-40): entries below 5e-20 become zero and every product of two non-zero entries
# stays a normal single-precision float (smallest normal ~1.2e-38; subnormal products run
# ~100x slower). The absolute change, < 6e-20 per entry, is far below single precision for
# the entries that matter (~ sqrt(1/n)).
SINGLE_ROUND_OFF = np.float32(2.0**-40)

# A group root (``_balanced._sigmoid_root``) is solved on the samples whose logit lies within
# this distance of the bracket: beyond it a sample adds its whole mass a_i or none of it to
# within expit(-40) a_i = 4e-18 a_i, so the mass function changes by < 4.3e-18 (sum a = 1),
# far below the roots' tolerance and the E-step's 1e-10.
SATURATED_LOGIT = 40.0
