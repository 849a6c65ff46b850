# Rules of the report family: see docs/ARCHITECTURE.md.
