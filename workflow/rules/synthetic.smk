# Rules of the synthetic family: see docs/ARCHITECTURE.md.
