"""Values of the tables' label columns, shared by the experiments that write them and the figures and report that read them.

They live below both floors so that a figure names a table's values without importing the
experiment that computed it.
"""

from __future__ import annotations

__all__ = ["AUTHORS", "INIT_SCHEMES", "PROJECT", "PROTOCOLS"]

#: Values of the ``protocol`` column of the C. elegans tables: the authors' demo protocol, this project's.
AUTHORS = "authors"
PROJECT = "project"
PROTOCOLS = (PROJECT, AUTHORS)

#: Values of the ``init`` column of the sweeps: initialisation schemes ("truth" is the reference start, for checks).
INIT_SCHEMES = ("random_from_data", "k-means++", "uniform_box", "truth")
