# Rules of the landscape family: see docs/ARCHITECTURE.md.
