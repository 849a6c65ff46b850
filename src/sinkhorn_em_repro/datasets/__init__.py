"""Real datasets: fetching with sha256 verification (:mod:`.fetch`) and loaders."""

from sinkhorn_em_repro.datasets.fetch import (
    ChecksumMismatchError,
    DatasetFetchError,
    fetch,
    file_sha256,
    verify_sha256,
)

__all__ = [
    "ChecksumMismatchError",
    "DatasetFetchError",
    "fetch",
    "file_sha256",
    "verify_sha256",
]
