# Application families: each lives in its own file so they evolve independently.
include: "celegans.smk"
include: "osmfish.smk"
include: "dlpfc.smk"
