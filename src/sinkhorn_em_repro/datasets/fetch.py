"""Fetch the real datasets, from upstream or from a local mirror, with sha256 verification.

Every dataset the pipeline uses is pinned by an upstream URL (a commit-pinned
``raw.githubusercontent.com`` address) and the sha256 of its bytes (both listed in
``config.yaml`` under ``datasets: files:``). :func:`fetch` puts the file at a
destination path only if its SHA-256 digest equals the pinned one:

* the bytes are downloaded with :mod:`urllib` (or copied from ``<mirror>/<relpath>``
  when a mirror directory is given, as on an air-gapped cluster) into a temporary
  file *next to* the destination, hashing them as they stream;
* the digest is compared with the expected one; on mismatch the temporary file is
  deleted and :class:`ChecksumMismatchError` says expected vs got;
* on match the temporary file is renamed onto the destination with
  :func:`os.replace`, which is atomic on POSIX when both live in one directory, so
  a reader (or a killed job) never sees a half-written dataset.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import re
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO

__all__ = [
    "MIRROR_HINT",
    "ChecksumMismatchError",
    "DatasetFetchError",
    "dataset_key_by_path",
    "fetch",
    "file_sha256",
    "local_dataset_path",
    "verify_sha256",
]

logger = logging.getLogger(__name__)

#: How to point the pipeline (or :func:`fetch`) at a local copy of the files.
MIRROR_HINT = (
    "To copy the files from a local mirror directory instead (same relative paths, "
    "sha256 still checked), set `datasets: {mirror: DIR}` in the config file, or run "
    "`snakemake --config datasets='{mirror: DIR}' ...`, or call fetch(..., mirror=DIR)."
)

_SHA256_PATTERN = re.compile(r"^[0-9a-f]{64}$")
_CHUNK_BYTES = 1 << 20
_SUPPORTED_SCHEMES = ("http", "https", "file")


class DatasetFetchError(RuntimeError):
    """A dataset could not be obtained (unreachable URL, missing mirror file, bad bytes)."""


class ChecksumMismatchError(DatasetFetchError):
    """The SHA-256 digest of a file differs from the pinned one."""


def _normalise_sha256(expected: str) -> str:
    """Lower-case hex digest, or ValueError saying what a sha256 must look like."""
    if not isinstance(expected, str) or not _SHA256_PATTERN.match(expected.strip().lower()):
        raise ValueError(f"sha256 must be 64 hexadecimal characters (as printed by `sha256sum FILE`), got {expected!r}")
    return expected.strip().lower()


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 digest of a file's bytes, as a lower-case hex string (``sha256sum``)."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_sha256(path: str | os.PathLike, expected: str) -> None:
    """Check that the SHA-256 digest of the file at ``path`` equals ``expected``.

    Parameters
    ----------
    path
        File to check.
    expected
        Pinned digest, 64 hexadecimal characters (case-insensitive).

    Raises
    ------
    ValueError
        If ``expected`` is not a 64-character hex string.
    FileNotFoundError
        If ``path`` does not exist.
    ChecksumMismatchError
        If ``sha256(bytes of path) != expected``; the message gives both digests.
    """
    expected = _normalise_sha256(expected)
    got = file_sha256(path)
    if got != expected:
        raise ChecksumMismatchError(f"sha256 mismatch for {os.fspath(path)}: expected {expected}, got {got}")


def _copy_hashing(source: BinaryIO, target: BinaryIO) -> str:
    """Stream ``source`` into ``target`` and return the SHA-256 of the bytes copied."""
    digest = hashlib.sha256()
    for chunk in iter(lambda: source.read(_CHUNK_BYTES), b""):
        digest.update(chunk)
        target.write(chunk)
    return digest.hexdigest()


def _check_url(url: str) -> None:
    scheme = urllib.parse.urlsplit(url).scheme if isinstance(url, str) else ""
    if scheme not in _SUPPORTED_SCHEMES:
        schemes = ", ".join(f"{scheme}://" for scheme in _SUPPORTED_SCHEMES)
        raise ValueError(f"dataset URL must start with one of {schemes}; got {url!r}")


def _check_relpath(relpath: str | os.PathLike) -> Path:
    """A mirror path must stay inside the mirror: relative, without '..'."""
    relative = Path(relpath)
    if relative.is_absolute() or ".." in relative.parts or not relative.parts:
        raise ValueError(
            f"a dataset path must be relative (inside resources/ and the mirror) without '..' "
            f"(e.g. 'celegans/sinkhornem_atlas.mat'), got {os.fspath(relpath)!r}"
        )
    return relative


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _download_into(url: str, target: BinaryIO, timeout: float) -> str:
    """Download ``url`` into ``target`` and return the SHA-256 of the bytes received.

    Network failures become :class:`DatasetFetchError` naming the URL and the mirror
    option; failures writing ``target`` (e.g. a full disk) propagate unchanged.
    """
    request = urllib.request.Request(url, headers={"User-Agent": "sinkhorn-em dataset fetch"})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        raise DatasetFetchError(f"could not download {url}: HTTP {error.code} {error.reason}. {MIRROR_HINT}") from error
    except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
        # URLError wraps refused connections and DNS failures; TimeoutError is a stalled connect.
        reason = getattr(error, "reason", error)
        raise DatasetFetchError(
            f"could not download {url} (offline or unreachable: {reason}). {MIRROR_HINT}"
        ) from error
    digest = hashlib.sha256()
    received = 0
    with response:
        announced = response.headers.get("Content-Length")
        while True:
            try:
                chunk = response.read(_CHUNK_BYTES)
            except (OSError, http.client.HTTPException) as error:
                raise DatasetFetchError(
                    f"download of {url} broke off after {received} bytes ({error!r}). {MIRROR_HINT}"
                ) from error
            if not chunk:
                break
            digest.update(chunk)
            target.write(chunk)
            received += len(chunk)
    # http.client ends a chunked read silently when the server closes early; the
    # checksum would catch it too, but this message says what actually went wrong.
    if announced is not None and announced.isdigit() and received != int(announced):
        raise DatasetFetchError(f"download of {url} broke off after {received} of {announced} bytes. {MIRROR_HINT}")
    return digest.hexdigest()


def fetch(
    url: str,
    sha256: str,
    destination: str | os.PathLike,
    mirror: str | os.PathLike | None = None,
    timeout: float = 60.0,
    *,
    mirror_relpath: str | os.PathLike | None = None,
) -> Path:
    """Put the file pinned by ``(url, sha256)`` at ``destination``, verified and atomically.

    Source: ``url`` when ``mirror`` is None, otherwise the local file
    ``<mirror>/<mirror_relpath>`` (``url`` is then only used in messages). Either way
    the bytes are written to a temporary file in ``destination``'s directory, their
    SHA-256 digest :math:`h` is computed while streaming, and the file is renamed onto
    ``destination`` only if :math:`h` equals ``sha256``. If ``destination`` already
    holds bytes with the right digest nothing is read from the source at all; if it
    holds other bytes it is deleted first. Hence, once the call returns or raises,
    ``destination`` exists only if its digest is ``sha256``.

    Parameters
    ----------
    url
        Upstream address (``http``, ``https`` or ``file`` scheme), ideally pinned to a
        commit so that its bytes never change.
    sha256
        Expected SHA-256 digest, 64 hexadecimal characters.
    destination
        Where the verified file goes; parent directories are created.
    mirror
        Directory holding an offline copy of the datasets; relative paths are resolved
        against the current working directory. None downloads from ``url``.
    timeout
        Seconds that one network operation (connect, or one read) may block before the
        download is abandoned. Not a bound on the whole transfer.
    mirror_relpath
        Path of the file inside ``mirror`` (e.g. ``"celegans/sinkhornem_atlas.mat"``);
        required when ``mirror`` is given.

    Returns
    -------
    pathlib.Path
        ``destination``.

    Raises
    ------
    ValueError
        Malformed ``sha256`` or ``url``, non-positive ``timeout``, or ``mirror`` without
        a relative ``mirror_relpath``.
    DatasetFetchError
        Unreachable URL (the message names it and how to use a mirror), or the file is
        missing from the mirror (the message names the mirror path).
    ChecksumMismatchError
        The source's bytes have another digest; the message gives expected and got,
        and neither ``destination`` nor any temporary file is left behind.
    """
    expected = _normalise_sha256(sha256)
    _check_url(url)
    if not timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    source_file = None
    if mirror is not None:
        if mirror_relpath is None:
            raise ValueError(
                "fetch(..., mirror=DIR) also needs mirror_relpath, the file's path inside DIR "
                "(e.g. mirror_relpath='celegans/sinkhornem_atlas.mat')"
            )
        source_file = Path(mirror).resolve() / _check_relpath(mirror_relpath)

    destination = Path(destination)
    if destination.is_file():
        if file_sha256(destination) == expected:
            logger.info("%s already present with sha256 %s; nothing to do", destination, expected)
            return destination
        # Removed before fetching so that, whatever happens next, the destination
        # either holds verified bytes or does not exist.
        logger.warning("%s has an unexpected sha256; deleting it and fetching again", destination)
        destination.unlink()

    if source_file is not None and not source_file.is_file():
        raise DatasetFetchError(
            f"{source_file} is missing from the mirror {Path(mirror).resolve()} "
            f"(needed for {url}). Put the file there, or unset `datasets: mirror` to "
            f"download it from upstream."
        )

    destination.parent.mkdir(parents=True, exist_ok=True)
    # Same directory as the destination so that os.replace is a rename, never a copy.
    handle, temporary_name = tempfile.mkstemp(prefix=f".{destination.name}.", suffix=".part", dir=destination.parent)
    temporary = Path(temporary_name)
    try:
        with os.fdopen(handle, "wb") as target:
            if source_file is None:
                logger.info("downloading %s", url)
                got = _download_into(url, target, timeout)
            else:
                logger.info("copying %s (mirror of %s)", source_file, url)
                with open(source_file, "rb") as source:
                    got = _copy_hashing(source, target)
            target.flush()
            os.fsync(target.fileno())
            # mkstemp creates the file private (0600); a dataset gets the usual umask mode.
            os.fchmod(target.fileno(), 0o666 & ~_current_umask())
        if got != expected:
            origin = url if source_file is None else f"{source_file} (mirror of {url})"
            raise ChecksumMismatchError(
                f"sha256 mismatch for {origin}: expected {expected}, got {got}. Nothing was written to {destination}."
            )
        os.replace(temporary, destination)
    except BaseException:
        # Also on KeyboardInterrupt: a killed job must not leave a '.part' file behind.
        temporary.unlink(missing_ok=True)
        raise
    logger.info("%s verified (sha256 %s)", destination, expected)
    return destination


def dataset_key_by_path(files: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    """Invert ``datasets: files:`` (key -> {url, sha256, path}) into path -> key.

    The fetch rule's output is ``resources/{relpath}``; this map tells it which
    dataset (hence which URL and sha256) a requested path is.

    Raises
    ------
    ValueError
        If an entry lacks ``path``, a path is not relative or contains ``..``, or two
        keys share a path (one file cannot have two pinned checksums).
    """
    key_by_path: dict[str, str] = {}
    for key, entry in files.items():
        if "path" not in entry:
            raise ValueError(f"datasets.files.{key} has no `path`; give its path under resources/")
        path = entry["path"]
        _check_relpath(path)
        if path in key_by_path:
            raise ValueError(
                f"datasets.files.{key_by_path[path]} and datasets.files.{key} share the path "
                f"{path!r}; give every dataset its own path"
            )
        key_by_path[path] = key
    return key_by_path


def local_dataset_path(files: Mapping[str, Mapping[str, str]], key: str, root: str = "resources") -> str:
    """Where dataset ``key`` of ``datasets: files:`` lives locally: ``<root>/<path>``.

    Raises
    ------
    ValueError
        If ``key`` is not configured; the message lists the known keys.
    """
    if key not in files:
        raise ValueError(
            f"unknown dataset key {key!r}; add it under `datasets: files:` in config.yaml or use one of {sorted(files)}"
        )
    return f"{root}/{files[key]['path']}"
