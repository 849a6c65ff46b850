# Rules of the sweeps family: see docs/ARCHITECTURE.md.
