"""Dataset fetching: sha256 verification, mirror copies, real HTTP, failure modes, config."""

from __future__ import annotations

import functools
import hashlib
import http.server
import re
import shutil
import threading
from pathlib import Path

import jsonschema
import pytest
import yaml

from repro_support import MIRROR_ENV_VAR, run_snakemake
from sinkhorn_em_repro.datasets import ChecksumMismatchError, DatasetFetchError, fetch, verify_sha256
from sinkhorn_em_repro.datasets.fetch import dataset_key_by_path, file_sha256, local_dataset_path

REPO_ROOT = Path(__file__).resolve().parents[2]

# A small real file of the mirror (about 80 kB).
SMALL_RELPATH = "celegans/openworm_nml/NeuroPAL_1_YAw.net.nml"
UNREACHABLE_URL = "http://127.0.0.1:9/atlas.mat"  # port 9 (discard) is closed on a normal host


@pytest.fixture
def mirror(mirror_dir) -> Path:
    """The offline mirror of the real files (repro_support: $SINKHORN_EM_MIRROR or ../shared/data)."""
    if mirror_dir is None or not (mirror_dir / "SHA256SUMS").is_file():
        pytest.skip(
            f"no dataset mirror with SHA256SUMS: set {MIRROR_ENV_VAR} or put it at "
            f"{REPO_ROOT.parent / 'shared' / 'data'}"
        )
    return mirror_dir


def mirror_checksums(mirror: Path) -> dict[str, str]:
    """path -> sha256 from the mirror's SHA256SUMS (paths written as ./dir/file)."""
    checksums = {}
    for line in (mirror / "SHA256SUMS").read_text().splitlines():
        if line.strip():
            digest, path = line.split(maxsplit=1)
            checksums[path.removeprefix("./")] = digest
    return checksums


def datasets_config() -> dict:
    return yaml.safe_load((REPO_ROOT / "config.yaml").read_text())["datasets"]


def files_in(directory: Path) -> list[Path]:
    """Every file (hidden temporaries included) below ``directory``."""
    return [path for path in directory.rglob("*") if path.is_file()] if directory.exists() else []


@pytest.fixture
def http_root(tmp_path):
    """Directory served by a real threaded HTTP server on 127.0.0.1; yields (dir, base URL).

    ``/truncated`` announces more bytes than it sends, like a dropped connection.
    """
    root = tmp_path / "served"
    root.mkdir()

    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):  # keep pytest output clean
            pass

        def do_GET(self):
            if self.path != "/truncated":
                return super().do_GET()
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(b"only the beginning")
            self.close_connection = True

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# --- verify_sha256 -------------------------------------------------------------------------


def test_verify_sha256_accepts_the_true_digest_and_rejects_any_other(tmp_path):
    payload = b"NeuroPAL\x00" * 1000
    path = tmp_path / "blob.bin"
    path.write_bytes(payload)
    true_digest = hashlib.sha256(payload).hexdigest()
    verify_sha256(path, true_digest)
    verify_sha256(path, true_digest.upper())  # digests are case-insensitive hex
    wrong_digest = hashlib.sha256(payload + b"!").hexdigest()
    with pytest.raises(ChecksumMismatchError) as caught:
        verify_sha256(path, wrong_digest)
    assert f"expected {wrong_digest}" in str(caught.value)
    assert f"got {true_digest}" in str(caught.value)


@pytest.mark.parametrize("malformed", ["", "abc", "g" * 64, "0" * 63, None])
def test_malformed_sha256_is_a_value_error_saying_what_is_expected(tmp_path, malformed):
    path = tmp_path / "blob.bin"
    path.write_bytes(b"x")
    with pytest.raises(ValueError, match="64 hexadecimal"):
        verify_sha256(path, malformed)
    with pytest.raises(ValueError, match="64 hexadecimal"):
        fetch(UNREACHABLE_URL, malformed, tmp_path / "out.bin")


# --- mirror ----------------------------------------------------------------------------------


def test_copy_from_mirror_yields_the_verified_bytes(tmp_path, mirror):
    expected = mirror_checksums(mirror)[SMALL_RELPATH]
    destination = tmp_path / "resources" / SMALL_RELPATH
    returned = fetch(UNREACHABLE_URL, expected, destination, mirror=mirror, mirror_relpath=SMALL_RELPATH)
    assert returned == destination
    assert destination.read_bytes() == (mirror / SMALL_RELPATH).read_bytes()
    assert file_sha256(destination) == expected
    assert files_in(destination.parent) == [destination]  # no temporary left over


def test_relative_mirror_is_resolved_against_the_working_directory(tmp_path, monkeypatch, mirror):
    monkeypatch.chdir(mirror.parent)
    expected = mirror_checksums(mirror)[SMALL_RELPATH]
    destination = tmp_path / "copy.nml"
    fetch(UNREACHABLE_URL, expected, destination, mirror=mirror.name, mirror_relpath=SMALL_RELPATH)
    assert file_sha256(destination) == expected


def test_wrong_sha256_from_mirror_fails_with_expected_vs_got_and_leaves_no_file(tmp_path, mirror):
    true_digest = mirror_checksums(mirror)[SMALL_RELPATH]
    wrong_digest = hashlib.sha256(b"not the file").hexdigest()
    resources = tmp_path / "resources"
    with pytest.raises(ChecksumMismatchError) as caught:
        fetch(
            UNREACHABLE_URL,
            wrong_digest,
            resources / SMALL_RELPATH,
            mirror=mirror,
            mirror_relpath=SMALL_RELPATH,
        )
    assert f"expected {wrong_digest}" in str(caught.value)
    assert f"got {true_digest}" in str(caught.value)
    assert files_in(resources) == []


def test_file_missing_from_mirror_names_the_mirror_path(tmp_path):
    empty_mirror = tmp_path / "mirror"
    empty_mirror.mkdir()
    with pytest.raises(DatasetFetchError) as caught:
        fetch(
            UNREACHABLE_URL,
            "0" * 64,
            tmp_path / "out.mat",
            mirror=empty_mirror,
            mirror_relpath="celegans/atlas.mat",
        )
    assert str(empty_mirror / "celegans" / "atlas.mat") in str(caught.value)
    assert not (tmp_path / "out.mat").exists()


@pytest.mark.parametrize("relpath", [None, "/etc/passwd", "../outside.mat", "celegans/../../x"])
def test_mirror_needs_a_relative_path_inside_it(tmp_path, relpath):
    with pytest.raises(ValueError, match="mirror_relpath|relative"):
        fetch(UNREACHABLE_URL, "0" * 64, tmp_path / "out.mat", mirror=tmp_path, mirror_relpath=relpath)


# --- HTTP ------------------------------------------------------------------------------------


def test_real_http_download_is_verified_and_renamed_into_place(tmp_path, http_root):
    root, base_url = http_root
    payload = bytes(range(256)) * 5000  # > 1 MiB: several streamed chunks
    (root / "data file.bin").write_bytes(payload)
    destination = tmp_path / "resources" / "sub" / "data.bin"
    digest = hashlib.sha256(payload).hexdigest()
    fetch(f"{base_url}/data%20file.bin", digest, destination, timeout=10)
    assert destination.read_bytes() == payload
    assert files_in(destination.parent) == [destination]


def test_wrong_sha256_over_http_fails_with_expected_vs_got_and_leaves_no_file(tmp_path, http_root):
    root, base_url = http_root
    payload = b"osmFISH" * 10_000
    (root / "cells.loom").write_bytes(payload)
    wrong_digest = hashlib.sha256(payload[:-1]).hexdigest()
    resources = tmp_path / "resources"
    with pytest.raises(ChecksumMismatchError) as caught:
        fetch(f"{base_url}/cells.loom", wrong_digest, resources / "cells.loom", timeout=10)
    message = str(caught.value)
    assert f"expected {wrong_digest}" in message
    assert f"got {hashlib.sha256(payload).hexdigest()}" in message
    assert files_in(resources) == []


def test_http_error_names_the_url_and_the_mirror_option(tmp_path, http_root):
    _, base_url = http_root
    url = f"{base_url}/no-such-file.mat"
    with pytest.raises(DatasetFetchError) as caught:
        fetch(url, "0" * 64, tmp_path / "out.mat", timeout=10)
    assert url in str(caught.value) and "404" in str(caught.value)
    assert "datasets: {mirror: DIR}" in str(caught.value)
    assert files_in(tmp_path) == []


def test_connection_dropped_mid_transfer_fails_and_leaves_no_file(tmp_path, http_root):
    _, base_url = http_root
    with pytest.raises(DatasetFetchError, match="broke off after"):
        fetch(f"{base_url}/truncated", "0" * 64, tmp_path / "resources" / "x.mat", timeout=10)
    assert files_in(tmp_path) == []


def test_unreachable_url_without_mirror_names_the_url_and_the_mirror_option(tmp_path):
    with pytest.raises(DatasetFetchError) as caught:
        fetch(UNREACHABLE_URL, "0" * 64, tmp_path / "resources" / "atlas.mat", timeout=2)
    message = str(caught.value)
    assert UNREACHABLE_URL in message
    assert "datasets: {mirror: DIR}" in message and "--config datasets='{mirror: DIR}'" in message
    assert files_in(tmp_path) == []


# --- already present / stale ---------------------------------------------------------------


def test_present_file_with_right_checksum_is_left_untouched(tmp_path):
    payload = b"already here"
    destination = tmp_path / "atlas.mat"
    destination.write_bytes(payload)
    inode_before = destination.stat().st_ino
    # The URL is unreachable: succeeding proves the source was never contacted.
    fetch(UNREACHABLE_URL, hashlib.sha256(payload).hexdigest(), destination, timeout=2)
    assert destination.stat().st_ino == inode_before
    assert destination.read_bytes() == payload


def test_present_file_with_wrong_checksum_is_replaced_by_the_verified_one(tmp_path, http_root):
    root, base_url = http_root
    payload = b"the pinned bytes"
    (root / "atlas.mat").write_bytes(payload)
    destination = tmp_path / "atlas.mat"
    destination.write_bytes(b"a truncated download")
    fetch(f"{base_url}/atlas.mat", hashlib.sha256(payload).hexdigest(), destination, timeout=10)
    assert destination.read_bytes() == payload


def test_present_file_with_wrong_checksum_is_gone_when_the_fetch_fails(tmp_path):
    destination = tmp_path / "atlas.mat"
    destination.write_bytes(b"a truncated download")
    with pytest.raises(DatasetFetchError):
        fetch(UNREACHABLE_URL, "0" * 64, destination, timeout=2)
    assert files_in(tmp_path) == []


# --- config and its helpers ----------------------------------------------------------------


def test_config_sha256_match_the_mirror_checksums_for_every_file(mirror):
    files = datasets_config()["files"]
    configured = {entry["path"]: entry["sha256"] for entry in files.values()}
    assert configured == mirror_checksums(mirror)


def test_config_urls_are_the_commit_pinned_upstreams_of_sources_md(mirror):
    sources = (mirror / "SOURCES.md").read_text()
    pinned_prefixes = set(re.findall(r"RAW/([\w.-]+/[\w.-]+/[0-9a-f]{40})/", sources))
    for key, entry in datasets_config()["files"].items():
        url = entry["url"]
        assert url.startswith("https://raw.githubusercontent.com/"), key
        owner_repo_commit = "/".join(url.split("/")[3:6])
        assert owner_repo_commit in pinned_prefixes, f"{key}: {url} is not pinned as in SOURCES.md"
        # Upstream names either equal the local name or, for renamed files, appear in SOURCES.md.
        upstream_name = url.rsplit("/", 1)[1]
        assert upstream_name == Path(entry["path"]).name or upstream_name in sources, key


def test_datasets_section_of_config_is_valid_under_the_schema():
    schema = yaml.safe_load((REPO_ROOT / "workflow/schemas/config.schema.yaml").read_text())
    section_schema = schema["properties"]["datasets"]
    section = datasets_config()
    jsonschema.Draft202012Validator(section_schema).validate(section)
    assert section["mirror"] is None  # the default reproduction downloads from upstream
    broken_entry = {"url": "no-scheme", "sha256": "0" * 64, "path": "../x"}
    broken = {**section, "files": {"atlas": broken_entry}}
    assert not jsonschema.Draft202012Validator(section_schema).is_valid(broken)


def test_dataset_helpers_map_keys_to_paths_and_reject_ambiguity():
    files = {
        "atlas": {"url": "https://example.org/a.mat", "sha256": "0" * 64, "path": "celegans/a.mat"},
        "loom": {"url": "https://example.org/b.loom", "sha256": "1" * 64, "path": "spatial/b.loom"},
    }
    assert dataset_key_by_path(files) == {"celegans/a.mat": "atlas", "spatial/b.loom": "loom"}
    assert local_dataset_path(files, "loom") == "resources/spatial/b.loom"
    with pytest.raises(ValueError, match="unknown dataset key 'lom'.*'atlas', 'loom'"):
        local_dataset_path(files, "lom")
    clash = {**files, "again": {**files["atlas"]}}
    with pytest.raises(ValueError, match="share the path 'celegans/a.mat'"):
        dataset_key_by_path(clash)


# --- pipeline --------------------------------------------------------------------------------


DATASETS_ONLY_SNAKEFILE = """
from snakemake.utils import validate

configfile: "config.yaml"
validate(config, "workflow/schemas/config.schema.yaml")
include: "workflow/rules/common.smk"
include: "workflow/rules/datasets.smk"
"""


@pytest.mark.pipeline
def test_fetch_rule_fails_on_bad_checksum_and_mirror_switch_keeps_outputs(tmp_path, mirror):
    # The real rule file, schema and script with only the datasets family included, so
    # that this test neither waits for nor breaks on the other families' rules.
    shutil.copytree(REPO_ROOT / "workflow", tmp_path / "workflow")
    shutil.copytree(REPO_ROOT / "envs", tmp_path / "envs")
    (tmp_path / "Snakefile").write_text(DATASETS_ONLY_SNAKEFILE)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"datasets": datasets_config()}))
    files = datasets_config()["files"]
    bad_key, good_key = "openworm_NeuroPAL_1_YAw", "fdnc_test"
    bad_digest = "0" * 64
    override = {"datasets": {"mirror": str(mirror), "files": {bad_key: {"sha256": bad_digest}}}}
    (tmp_path / "override.yaml").write_text(yaml.safe_dump(override))
    bad_target = f"resources/{files[bad_key]['path']}"
    good_target = f"resources/{files[good_key]['path']}"

    # Targets before --configfile, which takes every following word as a config file.
    run = run_snakemake(
        tmp_path,
        "--cores",
        "1",
        bad_target,
        good_target,
        "--keep-going",
        "--configfile",
        "override.yaml",
        timeout=300,
    )
    console = run.output
    assert run.returncode != 0, run.describe()
    true_digest = mirror_checksums(mirror)[files[bad_key]["path"]]
    assert f"expected {bad_digest}, got {true_digest}" in console
    log = tmp_path / "results/logs/datasets" / f"{files[bad_key]['path']}.log"
    assert f"expected {bad_digest}, got {true_digest}" in log.read_text()
    assert not (tmp_path / bad_target).exists()
    assert files_in((tmp_path / bad_target).parent) == []  # not even a hidden temporary
    assert file_sha256(tmp_path / good_target) == files[good_key]["sha256"]

    # Without the mirror the verified file is up to date: switching source must not
    # invalidate datasets (and all results downstream of them).
    dry_run = run_snakemake(tmp_path, "--cores", "1", "--dry-run", good_target, timeout=300)
    dry_run.assert_ok()
    assert "Nothing to be done" in dry_run.output, dry_run.describe()
