# Rules of the fig2 family: see docs/ARCHITECTURE.md.
