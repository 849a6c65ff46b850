"""Fixtures of the pipeline's half of the tests; they live in ``repro_support.py``, which the
tests import by that name (two ``conftest`` modules, one per half, cannot both be imported as
``conftest``)."""

from repro_support import *  # noqa: F403  (pytest finds the fixtures among this module's names)
from repro_support import _one_blas_thread  # noqa: F401  (autouse; `import *` skips private names)
