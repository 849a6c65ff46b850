# Rules of the convergence family: see docs/ARCHITECTURE.md.
