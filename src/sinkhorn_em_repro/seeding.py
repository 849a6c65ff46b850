"""Seeds derived from what a job computes, never from a global random stream.

Every experiment job draws its random numbers from a generator seeded by
``derive_seed(base_seed, *keys)``, where ``keys`` name the job's setting (family,
K, d, separation, chunk index, ...). The result therefore does not depend on the
number of cores, on job order, or on which other jobs ran.
"""

from __future__ import annotations

import hashlib

import numpy as np

__all__ = ["derive_rng", "derive_seed"]


def derive_seed(base_seed: int, *keys: object) -> int:
    """Return a 63-bit seed determined by ``base_seed`` and the ``keys``.

    Parameters
    ----------
    base_seed : int
        The global seed of the configuration.
    *keys : object
        Anything with a stable ``repr`` (str, int, float, tuples of those) that
        identifies the job, for example ``("init_sweep", 3, 2, 1.5, "chunk", 0)``.

    Returns
    -------
    seed : int
        ``sha256(repr((base_seed, keys)))`` truncated to 63 bits. Python's
        ``hash`` is salted per process and must not be used for this.
    """
    digest = hashlib.sha256(repr((int(base_seed), tuple(keys))).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def derive_rng(base_seed: int, *keys: object) -> np.random.Generator:
    """A ``numpy.random.Generator`` seeded by :func:`derive_seed`."""
    return np.random.default_rng(derive_seed(base_seed, *keys))
