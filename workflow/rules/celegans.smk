# C. elegans family (see docs/ARCHITECTURE.md).
