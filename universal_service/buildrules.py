"""The rules every region builder shares: the end-2015 network and the spread of incomes.

The bundled region's builder (``data/build_region.py``) and the county builder
(:mod:`universal_service.countybuild`) read these constants from here, so a rule and its source
are stated once.
"""

from __future__ import annotations

#: The baseline year: end-2015, before the 2016-2019 universal-service pilots.
BASELINE_YEAR = 2015
#: 4G in 2015 reached "townships and above" (the State Council's 2015 broadband guidance, Guo Ban
#: Fa [2015] 41, May 2015: "4G ... 实现乡镇以上地区网络深度覆盖"): the seat and corridor towers
#: carry 4G, village towers 2G or 3G.
SEAT_TECHNOLOGY = "4g"
#: Height of the towers at county and township seats [m] (assumption).
TOWER_HEIGHT_SEAT_M = 35.0
#: Share of rural administrative villages (ur_code 210/220) with no mobile service in 2015, the
#: target of the village-tower rule [-]. 0.02, range 0-0.042: Guizhou aimed to give every
#: natural village a telephone by 2015 (Guizhou Communications Administration via gov.cn,
#: 2013-12-14: 96% of natural villages at end-2012, "力争提前2年实现自然村村村通电话"), and its
#: mobile network coverage was 95.8% when the 2015-2017 campaign began (Guizhou Daily,
#: 2018-02-07). An assumption inside that range.
NO_SERVICE_SHARE = 0.02
#: Village towers carry 3G with this probability, else 2G [-]: 60.1% of mobile users were on
#: 3G/4G at end-2015 (MIIT, 2015 communications statistics). An assumption (range 0.4-0.8): a
#: user share stands for a site share.
VILLAGE_TOWER_3G_PROBABILITY = 0.601
#: Height of a village mast [m] (assumption).
VILLAGE_TOWER_HEIGHT_M = 30.0
#: PoP rule: probability that an operator has a PoP at a township seat (assumption; China
#: Telecom inherited the fixed network that reached every township, so it is always present).
POP_TOWNSHIP_PROBABILITY = {"ct": 1.0, "cmcc": 0.7, "cu": 0.4}
#: Log-standard deviation of village income around its mean (assumption, mean preserved).
INCOME_SIGMA = 0.3
