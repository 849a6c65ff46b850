"""Spatial transcriptomics with annotated layers: DLPFC Visium slices and the mouse olfactory bulb.

DLPFC (Maynard et al., Nat. Neurosci. 2021): four 10x Visium slices of one donor,
151673-151676. Each slice comes as three files:

* ``dlpfc<ID>.rda`` (from the BANKSY repository): an R list with ``expression``, raw UMI
  counts of 5,000 genes x the slice's in-tissue spots (columns named by spot barcode), and
  ``locations`` (image pixel coordinates);
* ``<ID>_tissue_positions_list.txt`` (Space Ranger): barcode, in_tissue, array_row,
  array_col, pixel row and column in the full-resolution image, for every spot of the
  capture area;
* ``barcode_level_layer_map.tsv`` (shared by the 12 slices of the study): barcode, slice
  ID and manual layer (L1-L6, WM).

Mouse olfactory bulb (Stahl et al., Science 2016; ``mOB.rda`` from STdeconvolve): an R
list with ``counts`` (genes x 262 spots), ``pos`` (x, y on the legacy ST grid) and
``annot``, the layer of 260 spots as a factor named by barcode.

:func:`load_dlpfc_slice` and :func:`load_mob` return a :class:`SpatialSample` (spots as
rows). Barcodes are matched by name, never by position; annotation barcodes absent from
the counts, and counted spots without annotation, are logged with their number and
examples (:func:`attach_annotation`), and a sample with no matching barcode at all is
refused.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = [
    "DLPFC_LAYERS",
    "UNLABELLED",
    "SpatialSample",
    "attach_annotation",
    "layer_proportions",
    "load_dlpfc_slice",
    "load_mob",
    "read_dlpfc_counts",
    "read_layer_map",
    "read_rda",
]

logger = logging.getLogger(__name__)

#: The seven annotated classes of the DLPFC slices, in anatomical order.
DLPFC_LAYERS = ("L1", "L2", "L3", "L4", "L5", "L6", "WM")
#: Label of a spot that has no annotation (left out of ARI and NMI).
UNLABELLED = ""

_FETCH_HINT = (
    "obtain the files through the pipeline's dataset rules (config key datasets, e.g. "
    "`snakemake --cores 1 fetch_datasets`, with datasets: {mirror: DIR} when offline), which check their sha256"
)
_EXAMPLES = 5


@dataclass(frozen=True)
class SpatialSample:
    """Spots of one spatial transcriptomics sample, one row per spot.

    Attributes
    ----------
    name : str
        Sample name (a DLPFC slice ID such as "151673", or "mOB").
    counts : ndarray of shape (n_spots, n_genes), float
        Raw counts (integers stored as floats).
    genes : ndarray of shape (n_genes,), str
    barcodes : ndarray of shape (n_spots,), str
    grid_row, grid_col : ndarray of shape (n_spots,), int
        Position on the array grid: Visium's array_row / array_col (hexagonal: the six
        neighbours of (r, c) are (r, c +- 2) and (r +- 1, c +- 1)), or the rounded legacy
        ST coordinates (square grid: four neighbours).
    x, y : ndarray of shape (n_spots,), float
        Position for drawing, y pointing up (Visium: full-resolution image pixel column and
        minus the pixel row; ST: grid units).
    layer : ndarray of shape (n_spots,), str
        Annotated layer, :data:`UNLABELLED` when the spot has none.
    grid : {"hex", "square"}
        Geometry of ``grid_row`` / ``grid_col``.
    """

    name: str
    counts: np.ndarray
    genes: np.ndarray
    barcodes: np.ndarray
    grid_row: np.ndarray
    grid_col: np.ndarray
    x: np.ndarray
    y: np.ndarray
    layer: np.ndarray
    grid: str

    @property
    def n_spots(self) -> int:
        return int(self.counts.shape[0])

    @property
    def n_genes(self) -> int:
        return int(self.counts.shape[1])

    @property
    def labelled(self) -> np.ndarray:
        """Boolean mask of the annotated spots."""
        return self.layer != UNLABELLED


def _require_file(path: str | os.PathLike, what: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} does not exist: {_FETCH_HINT}")
    return path


def _named_factor(obj, attrs):
    """A factor converted by rdata, keeping its ``names`` (mOB's annotation is named by barcode)."""
    from rdata.conversion import factor_constructor

    values = factor_constructor(obj, attrs)
    names = attrs.get("names")
    return values if names is None else pd.Series(values, index=[str(name) for name in names])


def read_rda(path: str | os.PathLike) -> dict:
    """The objects of an R data file (``save()`` output), read by the pure-Python ``rdata``.

    Matrices come back as ``xarray.DataArray`` (dimension names = R's dimnames), data
    frames as ``pandas.DataFrame``, factors as ``pandas.Categorical`` or, when the factor
    has names, as a ``pandas.Series`` indexed by them.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is not an R data file.
    """
    import rdata

    path = _require_file(path, "R data file")
    try:
        parsed = rdata.parser.parse_file(path)
    except Exception as error:  # rdata raises several types for foreign bytes
        raise ValueError(f"{path} is not a readable R data file ({error!r}); {_FETCH_HINT}") from error
    return rdata.conversion.convert(parsed, {**rdata.conversion.DEFAULT_CLASS_MAP, "factor": _named_factor})


def _single_object(objects: dict, path: Path, expected: Sequence[str]) -> dict:
    """The one list stored in an .rda file, checked to hold the ``expected`` entries."""
    if len(objects) != 1:
        raise ValueError(f"{path} holds {len(objects)} R objects ({list(objects)}); expected one list")
    ((name, value),) = objects.items()
    if not isinstance(value, dict) or any(key not in value for key in expected):
        have = list(value) if isinstance(value, dict) else type(value).__name__
        raise ValueError(f"{path}: object {name!r} must be a list with entries {list(expected)}, got {have}")
    return value


def _genes_by_spots(matrix, path: Path, entry: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Counts (spots x genes), gene names and spot barcodes of an R matrix with dimnames."""
    values = np.asarray(matrix.values, dtype=float)
    if values.ndim != 2 or len(matrix.dims) != 2:
        raise ValueError(f"{path}: {entry} must be a genes x spots matrix, got shape {values.shape}")
    genes = np.asarray(matrix.coords[matrix.dims[0]].values).astype(str)
    barcodes = np.asarray(matrix.coords[matrix.dims[1]].values).astype(str)
    if not np.all(np.isfinite(values)) or (values < 0).any() or not np.array_equal(values, np.round(values)):
        raise ValueError(f"{path}: {entry} must hold raw non-negative integer counts")
    if len(set(barcodes)) != barcodes.size:
        raise ValueError(f"{path}: {entry} has duplicated spot barcodes")
    return np.ascontiguousarray(values.T), genes, barcodes


def attach_annotation(barcodes: np.ndarray, annotation: pd.Series, sample: str) -> np.ndarray:
    """Labels of ``barcodes`` looked up in ``annotation`` (barcode -> layer), by name.

    Spots without annotation get :data:`UNLABELLED`. Mismatches are not dropped
    silently: annotation barcodes absent from the counts and counted spots without
    annotation are logged (warning) with their number and up to five examples.

    Raises
    ------
    ValueError
        If no barcode of the annotation occurs among ``barcodes`` (another sample's
        annotation, or barcodes spelt differently, e.g. without the "-1" suffix).
    """
    barcodes = np.asarray(barcodes).astype(str)
    annotation = annotation.dropna().astype(str)
    if annotation.index.has_duplicates:
        duplicated = annotation.index[annotation.index.duplicated()].unique()
        raise ValueError(f"{sample}: the annotation lists barcode(s) twice, e.g. {list(duplicated[:_EXAMPLES])}")
    counted = set(barcodes)
    absent = [code for code in annotation.index if code not in counted]
    if len(absent) == len(annotation):
        raise ValueError(
            f"{sample}: none of the {len(annotation)} annotated barcodes (e.g. {[str(c) for c in annotation.index[:3]]}) "
            f"occurs among the {len(barcodes)} spots of the counts (e.g. {[str(c) for c in barcodes[:3]]}): the annotation "
            "belongs to another sample or spells barcodes differently"
        )
    if absent:
        logger.warning(
            "%s: %d of %d annotated barcodes are not among the counted spots and are ignored, e.g. %s",
            sample,
            len(absent),
            len(annotation),
            [str(code) for code in absent[:_EXAMPLES]],
        )
    labels = annotation.reindex(barcodes).fillna(UNLABELLED).to_numpy(dtype=str)
    unlabelled = barcodes[labels == UNLABELLED]
    if unlabelled.size:
        logger.warning(
            "%s: %d of %d counted spots have no annotation and are left out of ARI/NMI, e.g. %s",
            sample,
            unlabelled.size,
            barcodes.size,
            [str(code) for code in unlabelled[:_EXAMPLES]],
        )
    logger.info("%s: %d of %d spots annotated", sample, int((labels != UNLABELLED).sum()), barcodes.size)
    return labels


def read_layer_map(path: str | os.PathLike) -> pd.DataFrame:
    """The DLPFC layer map: columns barcode, slice (str), layer; one row per annotated spot.

    Raises
    ------
    ValueError
        If the file does not have three tab-separated columns.
    """
    path = _require_file(path, "DLPFC layer map")
    table = pd.read_csv(path, sep="\t", header=None, dtype=str)
    if table.shape[1] != 3:
        raise ValueError(f"{path} must have 3 tab-separated columns (barcode, slice, layer), got {table.shape[1]}")
    table.columns = ["barcode", "slice", "layer"]
    return table


def _slice_annotation(layer_map: pd.DataFrame, slice_id: str) -> pd.Series:
    rows = layer_map[layer_map["slice"] == str(slice_id)]
    if rows.empty:
        raise ValueError(
            f"the layer map has no spot of slice {slice_id!r}; it lists slices {sorted(layer_map['slice'].unique())}"
        )
    return rows.set_index("barcode")["layer"]


def layer_proportions(layer_map: pd.DataFrame, slice_id: str, layers: Sequence[str] = DLPFC_LAYERS) -> np.ndarray:
    r"""Proportions :math:`n_k / \sum_j n_j` of the annotated spots of a slice, in the order of ``layers``.

    Raises
    ------
    ValueError
        If a layer of ``layers`` has no spot or the slice has layers not in ``layers``.
    """
    annotation = _slice_annotation(layer_map, slice_id)
    counts = annotation.value_counts()
    unknown = sorted(set(counts.index) - set(layers))
    missing = [layer for layer in layers if layer not in counts.index]
    if unknown or missing:
        raise ValueError(f"slice {slice_id}: layers {unknown} are not among {list(layers)}; missing {missing}")
    values = counts.reindex(list(layers)).to_numpy(dtype=float)
    return values / values.sum()


def read_dlpfc_counts(counts_path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Counts (spots x genes), gene IDs and spot barcodes of a ``dlpfc<ID>.rda`` file."""
    counts_path = Path(counts_path)
    objects = _single_object(read_rda(counts_path), counts_path, ("expression",))
    return _genes_by_spots(objects["expression"], counts_path, "expression")


def load_dlpfc_slice(
    counts_path: str | os.PathLike,
    positions_path: str | os.PathLike,
    layer_map: pd.DataFrame,
    slice_id: str,
    *,
    counts: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> SpatialSample:
    """Read one DLPFC slice: counts, grid positions and manual layers.

    Parameters
    ----------
    counts_path : path-like
        ``dlpfc<ID>.rda`` (list with ``expression``, genes x spots counts).
    positions_path : path-like
        Space Ranger ``tissue_positions_list.txt`` of the same slice.
    layer_map : DataFrame
        :func:`read_layer_map` of ``barcode_level_layer_map.tsv``.
    slice_id : str
        The slice's sample ID (e.g. "151673").
    counts : tuple, optional
        :func:`read_dlpfc_counts` of ``counts_path`` when already read (it takes seconds).

    Raises
    ------
    ValueError
        A counted spot has no position, or no annotated barcode matches (see
        :func:`attach_annotation`).
    """
    counts, genes, barcodes = read_dlpfc_counts(counts_path) if counts is None else counts
    positions_path = _require_file(positions_path, "Space Ranger positions file")
    positions = pd.read_csv(positions_path, header=None, dtype={0: str})
    if positions.shape[1] != 6:
        raise ValueError(
            f"{positions_path} must have 6 columns (barcode, in_tissue, array_row, array_col, pxl_row, pxl_col), "
            f"got {positions.shape[1]}"
        )
    positions = positions.set_index(0)
    missing = [code for code in barcodes if code not in positions.index]
    if missing:
        raise ValueError(
            f"{len(missing)} spots of {counts_path} have no position in {positions_path}, e.g. "
            f"{[str(c) for c in missing[:_EXAMPLES]]}: the two files belong to different slices"
        )
    placed = positions.loc[barcodes]
    return SpatialSample(
        name=str(slice_id),
        counts=counts,
        genes=genes,
        barcodes=barcodes,
        grid_row=placed[2].to_numpy(dtype=np.int64),
        grid_col=placed[3].to_numpy(dtype=np.int64),
        x=placed[5].to_numpy(dtype=float),
        y=-placed[4].to_numpy(dtype=float),
        layer=attach_annotation(barcodes, _slice_annotation(layer_map, slice_id), str(slice_id)),
        grid="hex",
    )


def load_mob(path: str | os.PathLike) -> SpatialSample:
    """Read the mouse olfactory bulb sample (``mOB.rda``: counts, pos, annot).

    The legacy ST array is a square grid with spots at integer (x, y) up to a small
    registration jitter; ``grid_row`` / ``grid_col`` are the rounded y / x.

    Raises
    ------
    ValueError
        Missing list entries, spots without position, or no annotated barcode among the spots.
    """
    path = Path(path)
    objects = _single_object(read_rda(path), path, ("counts", "pos", "annot"))
    counts, genes, barcodes = _genes_by_spots(objects["counts"], path, "counts")
    positions = objects["pos"]
    missing = [code for code in barcodes if code not in positions.index]
    if missing:
        raise ValueError(
            f"{path}: {len(missing)} spots have no entry in pos, e.g. {[str(c) for c in missing[:_EXAMPLES]]}"
        )
    placed = positions.loc[barcodes]
    annotation = objects["annot"]
    if not isinstance(annotation, pd.Series):
        raise ValueError(f"{path}: annot must be a factor named by spot barcode (its names are needed to match spots)")
    x, y = placed["x"].to_numpy(dtype=float), placed["y"].to_numpy(dtype=float)
    return SpatialSample(
        name="mOB",
        counts=counts,
        genes=genes,
        barcodes=barcodes,
        grid_row=np.rint(y).astype(np.int64),
        grid_col=np.rint(x).astype(np.int64),
        x=x,
        y=y,
        layer=attach_annotation(barcodes, annotation.astype(str), "mOB"),
        grid="square",
    )
