"""sinkhorn-em reproduction: the Snakemake pipeline's code, built on the library ``sinkhorn_em``.

Experiments (pure functions from parameters to tables), plotting (tables to figures),
dataset fetching and loading, the report's verdicts, and the kernels of the symmetric
two-component model. It needs the ``reproduce`` extra: ``pip install 'sinkhorn-em[reproduce]'``.
The library alone (``pip install sinkhorn-em``) fits mixtures without any of this.
"""

from importlib.util import find_spec

_REPRODUCE_EXTRA = (
    "matplotlib",
    "seaborn",
    "ot",
    "h5py",
    "openpyxl",
    "yaml",
    "snakemake",
    "threadpoolctl",
    "psutil",
    "rdata",
)
_missing = [name for name in _REPRODUCE_EXTRA if find_spec(name) is None]
if _missing:
    raise ImportError(
        f"sinkhorn_em_repro needs the packages of the 'reproduce' extra; missing: {', '.join(_missing)}. "
        "Install them with: pip install 'sinkhorn-em[reproduce]' (from a checkout: pip install -e '.[reproduce]')."
    )
