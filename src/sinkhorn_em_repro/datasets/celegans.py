"""Loaders for the C. elegans NeuroPAL files (atlas, real worms, Table S2).

Every loader returns plain NumPy arrays in micrometres (positions) and in the file's own
colour units, together with the neuron names, so that experiments never touch file
formats (the protocol's scene is built from them by
:func:`sinkhorn_em_repro.experiments.celegans.load_scene`). Provenance of each file is in ``README.md`` (section "Real datasets").

=========================  =============================================================
file                       loader
=========================  =============================================================
``atlas.mat`` (MATLAB v5)  :func:`load_neuropal_atlas` -> :class:`NeuronAtlas`
``*.net.nml`` (NeuroML2)   :func:`load_neuroml_worm` -> :class:`WormNeurons`
fDNC ``*.data`` (pickle)   :func:`load_fdnc_worm` -> :class:`WormNeurons` (sha256 first)
Table S2 (``.xlsx``)       :func:`load_table_s2` -> :class:`pandas.DataFrame`
=========================  =============================================================
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pandas as pd

from sinkhorn_em_repro.datasets.fetch import ChecksumMismatchError

__all__ = [
    "ATLAS_REGIONS",
    "FDNC_SHA256",
    "NeuronAtlas",
    "WormNeurons",
    "load_fdnc_worm",
    "load_neuroml_worm",
    "load_neuropal_atlas",
    "load_table_s2",
    "match_table_s2",
]

ATLAS_REGIONS = ("head", "tail")

#: sha256 of the two fDNC example pickles at commit cbd2b1b of XinweiYu/fDNC_Neuron_ID.
#: Unpickling runs code chosen by the file's author, so only these exact bytes are loaded.
FDNC_SHA256 = {
    "template.data": "bd59c24e7a0361d3e9bb61b168b436ccfe15b2e3873cc21212e1ce31f637b0a2",
    "test.data": "241d00d26d572f208865147ba87585385ee8bc39be2a5f5cb9a432a6f41f6b31",
}

# NeuroML marks cells nobody could identify with an empty name or the string "NaN".
_UNLABELLED_NAMES = ("", "NaN", "nan")


@dataclass(frozen=True)
class NeuronAtlas:
    """A statistical atlas: one 6-D Gaussian (x, y, z, R, G, B) per named neuron.

    Attributes
    ----------
    names : tuple of str, length K
        Neuron names (e.g. ``"PDA"``), in file order.
    means : ndarray of shape (K, 6)
        Mean position (micrometres, columns x, y, z) and mean colour (R, G, B).
    covariances : ndarray of shape (K, 6, 6)
        Full covariance of each neuron's position and colour across animals.
    region : str
        ``"head"`` or ``"tail"``.
    """

    names: tuple[str, ...]
    means: np.ndarray
    covariances: np.ndarray
    region: str

    @property
    def n_neurons(self) -> int:
        return len(self.names)

    @property
    def positions(self) -> np.ndarray:
        """Mean positions ``(K, 3)``."""
        return self.means[:, :3]

    @property
    def colors(self) -> np.ndarray:
        """Mean colours ``(K, 3)`` (R, G, B in the atlas's intensity units)."""
        return self.means[:, 3:]

    def subset(self, names) -> NeuronAtlas:
        """The atlas restricted to ``names`` (in the order given).

        Raises
        ------
        ValueError
            If a name is not in the atlas; the message lists the missing names.
        """
        names = [str(name) for name in names]
        index = {name: k for k, name in enumerate(self.names)}
        missing = [name for name in names if name not in index]
        if missing:
            raise ValueError(f"neurons {missing} are not in the {self.region} atlas; choose among {sorted(self.names)}")
        rows = [index[name] for name in names]
        return NeuronAtlas(tuple(names), self.means[rows], self.covariances[rows], self.region)


@dataclass(frozen=True)
class WormNeurons:
    """The identified neurons of one real worm.

    Attributes
    ----------
    worm : str
        Identifier of the animal (e.g. ``"NeuroPAL_1_YAw"``).
    names : tuple of str, length n
        Neuron names, unique, unlabelled cells removed.
    positions : ndarray of shape (n, 3)
        Cell-body centres in micrometres, in the file's frame.
    colors : ndarray of shape (n, 3)
        R, G, B intensities in the file's own units (NeuroML: [0, 1]; fDNC: raw
        channel intensities, see :func:`load_fdnc_worm`).
    n_unlabelled : int
        Cells in the file without a name, dropped here.
    """

    worm: str
    names: tuple[str, ...]
    positions: np.ndarray
    colors: np.ndarray
    n_unlabelled: int = 0
    source: str = field(default="", compare=False)

    @property
    def n_neurons(self) -> int:
        return len(self.names)

    def subset(self, names) -> WormNeurons:
        """The worm restricted to ``names`` (in the order given); ValueError if one is absent."""
        names = [str(name) for name in names]
        index = {name: k for k, name in enumerate(self.names)}
        missing = [name for name in names if name not in index]
        if missing:
            raise ValueError(f"neurons {missing} are not labelled in worm {self.worm}")
        rows = [index[name] for name in names]
        return WormNeurons(
            self.worm, tuple(names), self.positions[rows], self.colors[rows], self.n_unlabelled, self.source
        )


def _require_file(path: str | os.PathLike, what: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{what} not found at {path}. Fetch it with `snakemake fetch_datasets` "
            f"(or point `datasets: mirror` at a local copy)."
        )
    return path


def load_neuropal_atlas(path: str | os.PathLike, region: str = "tail", *, zero_based: bool = True) -> NeuronAtlas:
    """Read one region of a NeuroPAL statistical atlas saved by MATLAB.

    The file holds a struct ``atlas`` with fields ``head`` and ``tail``; each has
    ``model.mu`` (K x 6: x, y, z, R, G, B), ``model.sigma`` (6 x 6 x K) and ``N``
    (names). Both the Sinkhorn-EM atlas (head 195 / tail 45 neurons) and the newer
    NeuroPAL_ID atlas (head 194 / tail 45) have this layout.

    Positions in these files are MATLAB coordinates, whose first voxel is 1. With
    ``zero_based=True`` (default) one is subtracted from x, y and z so that the returned
    positions follow NumPy's convention (first voxel at 0); colours and covariances are
    unchanged (a translation does not change a covariance). ``zero_based=False`` returns
    the numbers exactly as stored.

    Parameters
    ----------
    path
        The ``.mat`` file.
    region : {"head", "tail"}
    zero_based : bool
        Convert the 1-based positions to 0-based ones.

    Returns
    -------
    NeuronAtlas
    """
    from scipy import io as sio

    if region not in ATLAS_REGIONS:
        raise ValueError(f"region must be one of {ATLAS_REGIONS}, got {region!r}")
    path = _require_file(path, "NeuroPAL atlas")
    contents = sio.loadmat(path, squeeze_me=True, struct_as_record=False)
    if "atlas" not in contents:
        raise ValueError(f"{path} has no MATLAB variable 'atlas'; is it a NeuroPAL atlas file?")
    part = getattr(contents["atlas"], region)
    means = np.array(part.model.mu, dtype=float)
    covariances = np.moveaxis(np.array(part.model.sigma, dtype=float), -1, 0)  # (6,6,K) -> (K,6,6)
    names = tuple(str(name).strip() for name in np.atleast_1d(part.N))
    if means.ndim != 2 or means.shape[1] != 6 or covariances.shape != (len(names), 6, 6):
        raise ValueError(
            f"{path} ({region}): expected mu (K, 6), sigma (6, 6, K) and K names, got "
            f"{means.shape}, {covariances.shape[::-1]} and {len(names)}"
        )
    if zero_based:
        means[:, :3] -= 1.0
    return NeuronAtlas(names, means, covariances, region)


def load_neuroml_worm(path: str | os.PathLike, worm: str | None = None) -> WormNeurons:
    """Read the identified neurons of one worm from an openworm NeuroPAL NeuroML2 file.

    Each neuron is a ``<population id="pop_NAME">`` holding a ``color`` property
    (``"R G B"`` in [0, 1]) and one ``<instance>`` with a ``<location x y z>`` in
    micrometres. Populations named ``pop_`` or ``pop_NaN`` are cells nobody identified;
    they are dropped and counted in ``n_unlabelled``. Upstream marks these files as
    preliminary conversions.

    Raises
    ------
    ValueError
        If a population lacks a colour or a location, has several instances, or a
        neuron name occurs twice.
    """
    path = _require_file(path, "NeuroML worm")
    root = ElementTree.parse(path).getroot()
    namespace = root.tag.split("}")[0] + "}" if root.tag.startswith("{") else ""
    names, positions, colors, n_unlabelled = [], [], [], 0
    for population in root.iter(f"{namespace}population"):
        population_id = population.get("id", "")
        name = population_id[len("pop_") :] if population_id.startswith("pop_") else population_id
        if name in _UNLABELLED_NAMES:
            n_unlabelled += 1
            continue
        color = next(
            (p.get("value") for p in population.iter(f"{namespace}property") if p.get("tag") == "color"),
            None,
        )
        locations = list(population.iter(f"{namespace}location"))
        if color is None or len(locations) != 1:
            raise ValueError(
                f"{path}: population {population_id!r} should have one colour property and one "
                f"instance location, found colour={color!r} and {len(locations)} locations"
            )
        names.append(name)
        colors.append([float(v) for v in color.split()])
        positions.append([float(locations[0].get(axis)) for axis in "xyz"])
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise ValueError(f"{path}: neurons {duplicated} occur more than once")
    if not names:
        raise ValueError(f"{path}: no labelled neuron found; is it a NeuroPAL NeuroML2 network?")
    if worm is None:
        worm = Path(path).name.split(".")[0]
    return WormNeurons(worm, tuple(names), np.array(positions), np.array(colors), n_unlabelled, str(path))


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that can rebuild NumPy arrays and nothing else (no arbitrary callables)."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module, name):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a data pickle")
        # numpy.core is a deprecated alias of numpy._core since NumPy 2.
        if module.startswith("numpy.core.") and hasattr(np, "_core"):
            module = "numpy._core." + module[len("numpy.core.") :]
        return super().find_class(module, name)


def load_fdnc_worm(path: str | os.PathLike, sha256: str | None = None, worm: str | None = None) -> WormNeurons:
    """Read one of the two fDNC example NeuroPAL worms (Yu et al., eLife 2021).

    The file is a pickle, and unpickling can execute code. So the bytes are read once,
    their sha256 is compared with ``sha256`` (default: the pinned digest of a file of
    that name in :data:`FDNC_SHA256`), and only matching bytes are unpickled, by an
    unpickler that can build nothing but NumPy arrays.

    Colour channels: ``fluo`` has 4 columns. Columns 0, 1, 2 are the NeuroPAL colour
    fluorophores mNeptune2.5 (red), CyOFP1 (green) and mTagBFP2 (blue), which is how
    the fDNC code itself uses them (``fluo[:, :3]``); on the identified neurons they
    correlate best with the mNeptune2.5, CyOFP1 and mTagBFP2 columns of Table S2
    respectively. Column 3 (correlated with both red and green: the pan-neuronal
    marker) is dropped. Returned colours are the raw intensities of columns 0-2.

    Positions are ``pts`` (micrometres, the unaligned coordinates). Cells whose
    ``name`` is empty are dropped and counted in ``n_unlabelled``.

    Raises
    ------
    ChecksumMismatchError
        If the bytes' sha256 differs from the expected one (nothing is unpickled).
    ValueError
        If no expected digest is known for the file name and none is given.
    """
    path = _require_file(path, "fDNC worm")
    if sha256 is None:
        if path.name not in FDNC_SHA256:
            raise ValueError(
                f"no pinned sha256 for {path.name}; pass sha256=... (the fDNC loader only "
                f"unpickles files whose checksum is known: {sorted(FDNC_SHA256)})"
            )
        sha256 = FDNC_SHA256[path.name]
    payload = path.read_bytes()
    got = hashlib.sha256(payload).hexdigest()
    if got != sha256.strip().lower():
        raise ChecksumMismatchError(
            f"sha256 mismatch for {path}: expected {sha256}, got {got}; refusing to unpickle it"
        )
    data = _NumpyOnlyUnpickler(io.BytesIO(payload)).load()
    if not isinstance(data, dict) or not {"pts", "fluo", "name"} <= set(data):
        raise ValueError(f"{path}: expected a dict with keys pts, fluo, name")
    names = np.array([str(name).strip() for name in data["name"]])
    positions = np.asarray(data["pts"], dtype=float)
    fluorescence = np.asarray(data["fluo"], dtype=float)
    if positions.shape != (len(names), 3) or fluorescence.shape != (len(names), 4):
        raise ValueError(
            f"{path}: expected pts (n, 3) and fluo (n, 4) for {len(names)} names, got "
            f"{positions.shape} and {fluorescence.shape}"
        )
    labelled = ~np.isin(names, _UNLABELLED_NAMES)
    kept = names[labelled]
    if len(set(kept)) != len(kept):
        raise ValueError(f"{path}: some neuron names occur more than once")
    if worm is None:
        worm = "fDNC_" + path.name.split(".")[0]
    return WormNeurons(
        worm,
        tuple(kept.tolist()),
        positions[labelled],
        fluorescence[labelled, :3],
        int((~labelled).sum()),
        str(path),
    )


_POSITION_COLUMNS = {
    "Volume (μm3)": "volume_um3",
    "A-P Position (μm)": "ap_um",
    "D-V Position (μm)": "dv_um",
    "L-R Position (μm)": "lr_um",
    "A-P Variance (μm2)": "ap_variance_um2",
    "D-V Variance (μm2)": "dv_variance_um2",
    "L-R Variance (μm2)": "lr_variance_um2",
}
_COLOR_CHANNELS = {"mNeptune2.5": "red", "CyOFP1": "green", "mTagBFP2": "blue"}


def load_table_s2(path: str | os.PathLike, sex: str = "Hermaphrodite") -> pd.DataFrame:
    """Table S2 of Yemini et al. (Cell 2021): per-neuron volume, position and colour.

    The workbook has one "Positions" and one "Colors" sheet per (sex, region). This
    returns one row per neuron of ``sex`` (head then tail) with columns ``name``,
    ``region`` (head/tail), ``volume_um3``, ``ap_um``, ``dv_um``, ``lr_um`` (mean
    position), ``ap_variance_um2``, ``dv_variance_um2``, ``lr_variance_um2``, and the
    mean colours ``red`` (mNeptune2.5), ``green`` (CyOFP1), ``blue`` (mTagBFP2) with
    ``red_variance``, ``green_variance``, ``blue_variance`` (NaN for a neuron that the
    colour sheet does not list).

    Note on ``volume_um3``: the paper's column is "Volume (μm3)"; its values (0.07 to
    7,400 μm³, log-correlation 0.97 with the product of the three positional standard
    deviations) say it is the volume of the neuron's positional-variability ellipsoid,
    not of its cell body.

    Parameters
    ----------
    sex : {"Hermaphrodite", "Male"}
    """
    if sex not in ("Hermaphrodite", "Male"):
        raise ValueError(f"sex must be 'Hermaphrodite' or 'Male', got {sex!r}")
    path = _require_file(path, "Table S2")
    tables = []
    with pd.ExcelFile(path) as workbook:
        for region in ("head", "tail"):
            stem = f"{sex} {region.capitalize()}"
            positions = pd.read_excel(workbook, f"{stem} Positions")
            colors = pd.read_excel(workbook, f"{stem} Colors", header=None)
            positions.columns = [str(c).strip() for c in positions.columns]
            missing = sorted(set(_POSITION_COLUMNS) - set(positions.columns))
            if missing:
                raise ValueError(f"{path}: sheet '{stem} Positions' lacks columns {missing}")
            positions = positions.rename(columns={"Neuron": "name", **_POSITION_COLUMNS})
            positions = positions[["name", *_POSITION_COLUMNS.values()]]
            # Colour sheets repeat the header "Variance" after each channel: name by position.
            header = [str(v).strip() for v in colors.iloc[0]]
            colors = colors.iloc[1:].reset_index(drop=True)
            renamed = {0: "name"}
            for column, label in enumerate(header):
                if label in _COLOR_CHANNELS:
                    renamed[column] = _COLOR_CHANNELS[label]
                    renamed[column + 1] = _COLOR_CHANNELS[label] + "_variance"
            if len(renamed) != 7:
                raise ValueError(f"{path}: sheet '{stem} Colors' lacks one of {sorted(_COLOR_CHANNELS)}")
            colors = colors[list(renamed)].rename(columns=renamed)
            for frame in (positions, colors):
                frame["name"] = frame["name"].astype(str).str.strip()
            # Left join: the position sheet defines the neurons. (Upstream's male tail
            # sheets disagree on two names, PVPL/PVPR vs PVS/PVU; those get NaN colours.)
            merged = positions.merge(colors, on="name", how="left", validate="one_to_one")
            merged.insert(1, "region", region)
            tables.append(merged)
    table = pd.concat(tables, ignore_index=True)
    numeric = table.columns.drop(["name", "region"])
    table[numeric] = table[numeric].astype(float)
    return table


def match_table_s2(worm: WormNeurons, table: pd.DataFrame, region: str | None = None) -> WormNeurons:
    """Keep the neurons of ``worm`` that Table S2 lists (optionally only one region).

    Names are matched exactly after stripping white space (both sources use the
    standard WormBase names, e.g. ``"AVAL"``); the worm's order is kept.
    """
    if region is not None and region not in ATLAS_REGIONS:
        raise ValueError(f"region must be one of {ATLAS_REGIONS} or None, got {region!r}")
    listed = table if region is None else table[table["region"] == region]
    known = set(listed["name"])
    return worm.subset([name for name in worm.names if name in known])
