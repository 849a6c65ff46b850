"""osmFISH mouse somatosensory cortex (Codeluppi et al., Nat. Methods 2018).

The Loom file (HDF5) holds a counts ``matrix`` of 33 genes x 6,471 cells,
per-cell ``col_attrs`` (Region, ClusterName, Valid, X, Y, ...) and per-gene
``row_attrs/Gene``. Of the 6,471 segmented cells, 4,839 are flagged ``Valid``;
the others carry the label "Excluded" in both Region and ClusterName.

:func:`load_osmfish` reads it into :class:`OsmFISHData` (cells as rows, the
scikit-learn convention) and :func:`preprocess_counts` turns the counts into
the clustering features (library-size normalisation, ``log1p``, PCA, optional
standardised spatial coordinates). :class:`OsmFISHFeatures` bundles those
features with integer-coded labels and is what the pipeline stores between jobs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "REQUIRED_FIELDS",
    "OsmFISHData",
    "OsmFISHFeatures",
    "build_features",
    "encode_labels",
    "load_osmfish",
    "normalise_library_size",
    "preprocess_counts",
]

#: HDF5 paths the loader needs; anything else in the file is ignored.
REQUIRED_FIELDS = (
    "matrix",
    "row_attrs/Gene",
    "col_attrs/Region",
    "col_attrs/ClusterName",
    "col_attrs/Valid",
    "col_attrs/X",
    "col_attrs/Y",
)

_FETCH_HINT = (
    "obtain the file through the pipeline's dataset rules (config key datasets, "
    "e.g. `snakemake resources/...` with datasets: {mirror: DIR} when offline), "
    "which check its sha256"
)


@dataclass(frozen=True)
class OsmFISHData:
    """Cells of the osmFISH cortex dataset, one row per cell.

    Attributes
    ----------
    counts : ndarray of shape (n_cells, n_genes), int
        Molecule counts; the Loom ``matrix`` transposed so that cells are rows.
    genes : ndarray of shape (n_genes,), str
        Gene names (``row_attrs/Gene``).
    region : ndarray of shape (n_cells,), str
        Anatomical region of each cell (11 regions among valid cells).
    cell_type : ndarray of shape (n_cells,), str
        Cell-type annotation (``ClusterName``; 31 types among valid cells).
    x, y : ndarray of shape (n_cells,), float
        Spatial coordinates of the cell centroid (pixels of the original images).
    valid : ndarray of shape (n_cells,), bool
        The authors' quality flag. All True when loaded with ``valid_only=True``.
    cell_id : ndarray of shape (n_cells,), str
        ``CellID`` when the file has it, else the column index as a string.
    """

    counts: np.ndarray
    genes: np.ndarray
    region: np.ndarray
    cell_type: np.ndarray
    x: np.ndarray
    y: np.ndarray
    valid: np.ndarray
    cell_id: np.ndarray

    @property
    def n_cells(self) -> int:
        return int(self.counts.shape[0])

    @property
    def n_genes(self) -> int:
        return int(self.counts.shape[1])


def _decode(values: np.ndarray) -> np.ndarray:
    """HDF5 string attributes come back as bytes; return a str array."""
    values = np.asarray(values)
    if values.dtype.kind == "S" or values.dtype == object:
        return np.array([v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values])
    return values.astype(str)


def load_osmfish(path: str | os.PathLike, *, valid_only: bool = True) -> OsmFISHData:
    """Read the osmFISH Loom file.

    Parameters
    ----------
    path : path-like
        ``osmFISH_SScortex_mouse_all_cells.loom`` (HDF5, read with h5py).
    valid_only : bool, default True
        Keep only the cells with ``Valid == 1`` (4,839 of 6,471 in the
        published file); the others have no region or cell-type label.

    Returns
    -------
    OsmFISHData

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is not HDF5, lacks one of :data:`REQUIRED_FIELDS`, has
        inconsistent shapes, or has no valid cell.
    """
    import h5py

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"osmFISH loom file {path} does not exist: {_FETCH_HINT}")
    try:
        handle = h5py.File(path, "r")
    except OSError as err:
        raise ValueError(f"{path} is not a readable HDF5/Loom file ({err}); {_FETCH_HINT}") from err
    with handle:
        missing = [field for field in REQUIRED_FIELDS if field not in handle]
        if missing:
            raise ValueError(
                f"{path} lacks the required Loom field(s) {missing}; this is not the osmFISH "
                f"cortex loom (expected {list(REQUIRED_FIELDS)}): {_FETCH_HINT}"
            )
        matrix = np.asarray(handle["matrix"][()])
        if matrix.ndim != 2:
            raise ValueError(f"{path}: 'matrix' must be 2-D (genes x cells), got shape {matrix.shape}")
        n_genes, n_cells = matrix.shape
        genes = _decode(handle["row_attrs/Gene"][()])
        columns = {
            name: np.asarray(handle[f"col_attrs/{name}"][()]) for name in ("Region", "ClusterName", "Valid", "X", "Y")
        }
        cell_id = (
            _decode(handle["col_attrs/CellID"][()]) if "col_attrs/CellID" in handle else np.arange(n_cells).astype(str)
        )
    if genes.shape != (n_genes,):
        raise ValueError(f"{path}: row_attrs/Gene has shape {genes.shape} but 'matrix' has {n_genes} genes (rows)")
    for name, values in {**columns, "CellID": cell_id}.items():
        if values.shape != (n_cells,):
            raise ValueError(
                f"{path}: col_attrs/{name} has shape {values.shape} but 'matrix' has {n_cells} cells (columns)"
            )

    valid = columns["Valid"].astype(bool)
    keep = valid if valid_only else np.ones(n_cells, dtype=bool)
    if not keep.any():
        raise ValueError(f"{path}: no cell has Valid == 1; pass valid_only=False to load all cells")
    return OsmFISHData(
        counts=np.ascontiguousarray(matrix[:, keep].T),
        genes=genes,
        region=_decode(columns["Region"])[keep],
        cell_type=_decode(columns["ClusterName"])[keep],
        x=columns["X"].astype(float)[keep],
        y=columns["Y"].astype(float)[keep],
        valid=valid[keep],
        cell_id=cell_id[keep],
    )


def normalise_library_size(counts: np.ndarray, target_sum: float | None = None) -> np.ndarray:
    r"""Scale every cell to the same library size: :math:`\tilde c_{ig} = T\, c_{ig} / \sum_h c_{ih}`.

    Parameters
    ----------
    counts : array of shape (n_cells, n_genes)
        Finite, non-negative counts; every cell needs a positive total.
    target_sum : float or None
        :math:`T`; ``None`` means the median library size.

    Returns
    -------
    ndarray of shape (n_cells, n_genes) whose rows all sum to :math:`T`.
    """
    counts = np.asarray(counts, dtype=float)
    if counts.ndim != 2:
        raise ValueError(f"counts must be 2-D (cells x genes), got shape {counts.shape}")
    if not np.all(np.isfinite(counts)) or (counts < 0).any():
        raise ValueError("counts must be finite and non-negative; pass raw molecule counts")
    library_size = counts.sum(axis=1)
    if (library_size <= 0).any():
        raise ValueError(
            f"{int((library_size <= 0).sum())} cell(s) have no counts and cannot be library-size "
            "normalised; drop them first (e.g. load with valid_only=True)"
        )
    if target_sum is None:
        target_sum = float(np.median(library_size))
    elif not target_sum > 0:
        raise ValueError(f"target_sum must be positive (or None for the median library size), got {target_sum}")
    return counts * (target_sum / library_size)[:, None]


def preprocess_counts(
    counts: np.ndarray,
    *,
    n_pcs: int = 10,
    target_sum: float | None = None,
    coordinates: np.ndarray | None = None,
) -> np.ndarray:
    r"""Clustering features of a counts matrix.

    For cell :math:`i` with counts :math:`c_{ig}` and library size
    :math:`s_i = \sum_g c_{ig}`:

    1. library-size normalisation :math:`\tilde c_{ig} = T\, c_{ig} / s_i`
       (every cell then sums to :math:`T`, the ``target_sum``; by default the
       median library size, so a typical cell keeps its scale);
    2. :math:`z_{ig} = \log(1 + \tilde c_{ig})`;
    3. the first ``n_pcs`` principal-component scores of :math:`z` (centred,
       exact SVD with scikit-learn's deterministic sign convention);
    4. if ``coordinates`` (n_cells x m) is given, its columns standardised to
       mean 0 and standard deviation 1 are appended.

    Parameters
    ----------
    counts : array of shape (n_cells, n_genes)
        Non-negative counts; every cell needs a positive total.
    n_pcs : int, default 10
        Number of principal components, ``1 <= n_pcs <= min(n_cells, n_genes)``.
    target_sum : float or None
        :math:`T` above; ``None`` means the median library size.
    coordinates : array of shape (n_cells, m), optional
        Spatial coordinates to append after standardisation.

    Returns
    -------
    features : ndarray of shape (n_cells, n_pcs [+ m])
    """
    from sklearn.decomposition import PCA

    counts = np.asarray(counts, dtype=float)
    if counts.ndim != 2:
        raise ValueError(f"counts must be 2-D (cells x genes), got shape {counts.shape}")
    n_cells, n_genes = counts.shape
    if not 1 <= n_pcs <= min(n_cells, n_genes):
        raise ValueError(f"n_pcs={n_pcs} must lie in [1, min(n_cells, n_genes)] = [1, {min(n_cells, n_genes)}]")
    normalised = normalise_library_size(counts, target_sum)
    scores = PCA(n_components=n_pcs, svd_solver="full").fit_transform(np.log1p(normalised))
    if coordinates is None:
        return scores
    coordinates = np.asarray(coordinates, dtype=float)
    if coordinates.ndim == 1:
        coordinates = coordinates[:, None]
    if coordinates.shape[0] != n_cells:
        raise ValueError(f"coordinates have {coordinates.shape[0]} rows but counts have {n_cells} cells")
    spread = coordinates.std(axis=0)
    if (spread == 0).any():
        raise ValueError("a coordinate column is constant and cannot be standardised; drop it")
    return np.hstack([scores, (coordinates - coordinates.mean(axis=0)) / spread])


def encode_labels(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes of string labels: ``(codes, names)`` with ``names[codes] == labels``.

    ``names`` is sorted, so the coding does not depend on cell order.
    """
    names, codes = np.unique(np.asarray(labels), return_inverse=True)
    return codes.astype(np.int64), names


@dataclass(frozen=True)
class OsmFISHFeatures:
    """Features and labels of the valid cells, as passed between pipeline jobs.

    Attributes
    ----------
    X : ndarray of shape (n_cells, d)
        Output of :func:`preprocess_counts`.
    region, cell_type : ndarray of shape (n_cells,), int
        Codes into ``region_names`` / ``cell_type_names``.
    region_names, cell_type_names : ndarray of str
    x, y : ndarray of shape (n_cells,)
        Raw spatial coordinates (for maps).
    """

    X: np.ndarray
    region: np.ndarray
    cell_type: np.ndarray
    region_names: np.ndarray
    cell_type_names: np.ndarray
    x: np.ndarray
    y: np.ndarray

    def labels(self, target: str) -> tuple[np.ndarray, np.ndarray]:
        """``(codes, names)`` of the ground truth ``target`` ("region" or "celltype")."""
        if target == "region":
            return self.region, self.region_names
        if target == "celltype":
            return self.cell_type, self.cell_type_names
        raise ValueError(f"unknown target {target!r}; use 'region' or 'celltype'")

    def save(self, path: str | os.PathLike) -> None:
        """Write an uncompressed ``.npz`` (byte-reproducible)."""
        from sinkhorn_em_repro.pipeline import atomic_output

        with atomic_output(path) as partial, open(partial, "wb") as handle:
            np.savez(handle, **{name: getattr(self, name) for name in self.__dataclass_fields__})

    @classmethod
    def load(cls, path: str | os.PathLike) -> OsmFISHFeatures:
        with np.load(path, allow_pickle=False) as stored:
            return cls(**{name: stored[name] for name in cls.__dataclass_fields__})


def build_features(
    data: OsmFISHData,
    *,
    n_pcs: int = 10,
    with_xy: bool = False,
    target_sum: float | None = None,
) -> OsmFISHFeatures:
    """Features of ``data`` (see :func:`preprocess_counts`) with integer-coded labels.

    ``with_xy=True`` appends the standardised X, Y coordinates ("expr+xy").
    """
    coordinates = np.column_stack([data.x, data.y]) if with_xy else None
    X = preprocess_counts(data.counts, n_pcs=n_pcs, target_sum=target_sum, coordinates=coordinates)
    region, region_names = encode_labels(data.region)
    cell_type, cell_type_names = encode_labels(data.cell_type)
    return OsmFISHFeatures(
        X=X,
        region=region,
        cell_type=cell_type,
        region_names=region_names,
        cell_type_names=cell_type_names,
        x=np.asarray(data.x, dtype=float),
        y=np.asarray(data.y, dtype=float),
    )
