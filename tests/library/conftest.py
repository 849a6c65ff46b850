"""The library's half of the tests: they need only the core install (``pip install .`` and the
test extra's scikit-learn, POT, scipy, hypothesis), never the pipeline, and run alone with
``make test-library``. Independent references shared by these tests are in ``references.py``."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True, scope="session")
def _one_blas_thread():
    """One BLAS thread for the whole session: the tests use small matrices, on which
    OpenBLAS threads only spin."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield
