"""Upper bounds on counts that catch typos ("-c nodes=400000"), shared by the app's settings and the constructs.

The figures and their sources are in ``data/bounds.json`` (:mod:`mlcdk.presets.bounds`); this module names the
ones that code compares with directly, so that the constructs need not read the app's settings for them.
"""

from __future__ import annotations

from mlcdk.presets import bounds

MAX_NODES = int(bounds.number("nodes").high)
MAX_CAPACITY = int(bounds.number("max_capacity").high)
#: Upper bound of ``shared_storage_gib`` that catches typos (1,000 steps of 2,400 GiB).
MAX_SHARED_STORAGE_GIB = int(bounds.number("storage_capacity_gib").high)
#: How many offered AZs a stack's network spans (a cluster uses one; a fleet spreads across them).
MAX_NETWORK_AZS = 3
