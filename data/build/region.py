"""The region being built: its name, codes, CRSs, base seed and random streams."""

from __future__ import annotations

#: Base seed of every random draw in the build. Each step derives its own stream from it.
SEED = 2016
#: Independent random streams, one per derivation step (``np.random.default_rng([seed, stream])``).
STREAM_DEM, STREAM_SEATS, STREAM_VILLAGES, STREAM_INCOME = 1, 2, 3, 4
STREAM_TOWERS, STREAM_POPS, STREAM_POWER, STREAM_VILLAGE_TOWERS = 5, 6, 7, 8

PREFECTURE_ID = "522700"
REGION_NAME = "Qiannan Buyei and Miao Autonomous Prefecture, Guizhou (2016 divisions)"
#: The metric CRS of the region (UTM zone 48N); the DEM is written in it.
METRIC_CRS = "EPSG:32648"
GEO_CRS = "EPSG:4326"
