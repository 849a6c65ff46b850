# Rules of the datasets family: see docs/ARCHITECTURE.md.
