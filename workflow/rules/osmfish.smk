# osmFISH family (see docs/ARCHITECTURE.md).
