"""The synthetic population: cells, subscribers, their handsets, plans and social graph.

Everything is built with numpy from one seed. The population keeps the internal arrays the
event engine samples from (activity weights, contacts, neighbouring cells) beside the two
public tables (`subscribers`, `cells`) that follow the data contract.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from cdr.contract import ACCESS_TECHNOLOGIES, CELLS, SUBSCRIBERS, arrow_schema
from cdr.identifiers import digits_matrix, luhn_digits
from cdr.profile import Profile
from generator.arrow_util import fixed_width_strings, join_fixed_width
from generator.sampling import bucket

# Access technology codes: positions in the contract's ACCESS_TECHNOLOGIES.
TECH = {name: i for i, name in enumerate(ACCESS_TECHNOLOGIES)}
RADIO_TECHS = ("2G", "3G", "4G", "5G")
FIXED_TECH_BY_LINE = {"ftth": "FTTH", "adsl": "ADSL", "lte_home": "LTE_HOME"}
LINE_TYPES = ("mobile", "ftth", "adsl", "lte_home")
NODE_KIND = {"ftth": "OLT", "adsl": "DSL", "lte_home": "LTE"}
EARTH_KM_PER_DEG = 111.2


@dataclass
class Cells:
    table: pa.Table
    operator: np.ndarray  # int8: index into profile.operators, or -1 for the fixed operator
    region: np.ndarray  # int16 index into profile.regions
    tech: np.ndarray  # int8 TECH code
    lat: np.ndarray
    lon: np.ndarray
    neighbours: np.ndarray  # (n_cells, K) int32, nearest cells of the same operator (self first)


@dataclass
class Population:
    profile: Profile
    cells: Cells
    table: pa.Table  # subscribers, contract schema
    msisdn: pa.Array
    imsi: pa.Array
    imei: pa.Array
    line_type: np.ndarray  # int8 index into LINE_TYPES
    operator: np.ndarray  # int8 (-1: fixed operator)
    region: np.ndarray  # int16
    home_cell: np.ndarray  # int32
    device_tech: np.ndarray  # int8 TECH code of the handset (fixed lines: their access tech)
    activity: np.ndarray  # float64 relative activity (0 for suspended/churned lines)
    contacts: np.ndarray  # (n, C) int32 indices of subscribers
    prepaid: np.ndarray  # bool

    @property
    def size(self) -> int:
        return len(self.line_type)

    @property
    def mobile(self) -> np.ndarray:
        return self.line_type == 0


def _unique_draw(rng: np.random.Generator, high: int, size: int) -> np.ndarray:
    """``size`` distinct integers in [0, high) without materialising the range."""
    if size > high:
        raise ValueError(f"cannot draw {size} distinct values below {high}")
    out = np.empty(0, dtype=np.int64)
    while len(out) < size:
        extra = rng.integers(0, high, size=int((size - len(out)) * 1.1) + 16)
        out = np.unique(np.concatenate([out, extra]))
    return rng.permutation(out)[:size]


def _pick(rng: np.random.Generator, weights: np.ndarray, size: int) -> np.ndarray:
    cum = np.cumsum(weights, dtype=np.float64)
    return bucket(cum, rng.random(size) * cum[-1])


def build_cells(profile: Profile, n_mobile: int, n_fixed_by_line: dict[str, int], rng) -> Cells:
    regions = profile.regions
    pop = np.array([r.population_k for r in regions])
    pop_share = pop / pop.sum()
    cfg = profile.cells
    rows: dict[str, list] = {k: [] for k in ("cell_id", "operator", "region", "tech", "lat", "lon")}

    def place(region_idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lat0 = np.array([regions[i].latitude for i in region_idx])
        lon0 = np.array([regions[i].longitude for i in region_idx])
        sigma_km = cfg["radius_km_per_sqrt_thousand"] * np.sqrt(pop[region_idx])
        dlat = rng.normal(0, 1, len(region_idx)) * sigma_km / EARTH_KM_PER_DEG
        dlon = rng.normal(0, 1, len(region_idx)) * sigma_km / (EARTH_KM_PER_DEG * np.cos(np.radians(lat0)))
        return np.round(lat0 + dlat, 5), np.round(lon0 + dlon, 5)

    radio_mix = np.array([cfg["technology_mix"][t] for t in RADIO_TECHS])
    sectors = int(cfg["sectors_per_site"])
    for op_idx, op in enumerate(profile.operators):
        sites_total = max(1, round(n_mobile * op.share / cfg["mobile_subscribers_per_site"]))
        sites = np.maximum(1, np.round(pop_share * sites_total)).astype(int)
        site_region = np.repeat(np.arange(len(regions)), sites)
        lat, lon = place(site_region)
        site_tech = np.array([TECH[t] for t in RADIO_TECHS])[_pick(rng, radio_mix, len(site_region))]
        n_sites = len(site_region)
        site_no = np.arange(1, n_sites + 1)
        ids = join_fixed_width(
            [
                np.frombuffer(f"{profile.mcc}{op.mnc}-".encode(), dtype=np.uint8)[None, :].repeat(n_sites * sectors, 0),
                digits_matrix(np.repeat(site_no, sectors), 5),
                np.full((n_sites * sectors, 1), ord("-"), dtype=np.uint8),
                digits_matrix(np.tile(np.arange(1, sectors + 1), n_sites), 1),
            ]
        )
        rows["cell_id"].append(fixed_width_strings(ids))
        rows["operator"].append(np.full(n_sites * sectors, op_idx, dtype=np.int8))
        rows["region"].append(np.repeat(site_region, sectors).astype(np.int16))
        rows["tech"].append(np.repeat(site_tech, sectors).astype(np.int8))
        rows["lat"].append(np.repeat(lat, sectors))
        rows["lon"].append(np.repeat(lon, sectors))

    for line, n_lines in n_fixed_by_line.items():
        total = max(1, round(n_lines / cfg["fixed_lines_per_access_node"]))
        nodes = np.maximum(1, np.round(pop_share * total)).astype(int)
        node_region = np.repeat(np.arange(len(regions)), nodes)
        lat, lon = place(node_region)
        # Number nodes within each region: AT-<wilaya>-<kind>-<n>.
        first = np.repeat(np.cumsum(nodes) - nodes, nodes)
        within = np.arange(len(node_region)) - first + 1
        codes = np.array([regions[i].code for i in node_region])
        ids = join_fixed_width(
            [
                np.frombuffer(b"AT-", dtype=np.uint8)[None, :].repeat(len(node_region), 0),
                digits_matrix(codes, 2),
                np.frombuffer(f"-{NODE_KIND[line]}-".encode(), dtype=np.uint8)[None, :].repeat(len(node_region), 0),
                digits_matrix(within, 4),
            ]
        )
        rows["cell_id"].append(fixed_width_strings(ids))
        rows["operator"].append(np.full(len(node_region), -1, dtype=np.int8))
        rows["region"].append(node_region.astype(np.int16))
        rows["tech"].append(np.full(len(node_region), TECH[FIXED_TECH_BY_LINE[line]], dtype=np.int8))
        rows["lat"].append(lat)
        rows["lon"].append(lon)

    cell_id = pa.concat_arrays(rows["cell_id"])
    operator = np.concatenate(rows["operator"])
    region = np.concatenate(rows["region"])
    tech = np.concatenate(rows["tech"])
    lat = np.concatenate(rows["lat"])
    lon = np.concatenate(rows["lon"])
    neighbours = _nearest_cells(operator, tech, lat, lon, int(cfg["neighbours"]))
    op_names = np.array([o.name for o in profile.operators] + [profile.fixed["operator"]], dtype=object)
    table = pa.table(
        {
            "cell_id": cell_id,
            "operator": pa.array(op_names[operator], pa.string()),
            "latitude": lat,
            "longitude": lon,
            "region": pa.array([regions[i].name for i in region], pa.string()),
            "region_code": pa.array([regions[i].code for i in region], pa.int32()),
            "technology": pa.array(np.array(ACCESS_TECHNOLOGIES, dtype=object)[tech], pa.string()),
        },
        schema=arrow_schema(CELLS),
    )
    return Cells(table, operator, region, tech, lat, lon, neighbours)


def _nearest_cells(operator, tech, lat, lon, k: int) -> np.ndarray:
    """K nearest radio cells of the same operator for each cell (itself first); fixed nodes: itself."""
    n = len(operator)
    out = np.repeat(np.arange(n, dtype=np.int32)[:, None], k, axis=1)
    radio = np.isin(tech, [TECH[t] for t in RADIO_TECHS])
    for op in np.unique(operator[radio]):
        idx = np.flatnonzero(radio & (operator == op))
        x = lon[idx] * np.cos(np.radians(lat[idx]))
        y = lat[idx]
        # Block-wise distance matrix keeps memory bounded for large cell counts.
        for start in range(0, len(idx), 2048):
            sl = slice(start, start + 2048)
            d2 = (x[sl, None] - x[None, :]) ** 2 + (y[sl, None] - y[None, :]) ** 2
            kk = min(k, len(idx))
            near = np.argpartition(d2, kk - 1, axis=1)[:, :kk]
            order = np.take_along_axis(d2, near, 1).argsort(axis=1)
            near = np.take_along_axis(near, order, 1)
            out[idx[sl], :kk] = idx[near]
    return out


def build_population(profile: Profile, n_subscribers: int, start: dt.date, seed: int) -> Population:
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xC0FFEE]))
    n = n_subscribers
    regions = profile.regions
    pop_w = np.array([r.population_k for r in regions], dtype=np.float64)

    mobile = rng.random(n) < profile.mobile_share
    fixed_mix = profile.fixed["line_types"]
    fixed_kind = _pick(rng, np.array([fixed_mix[t] for t in LINE_TYPES[1:]]), n) + 1
    line_type = np.where(mobile, 0, fixed_kind).astype(np.int8)
    op_shares = np.array([o.share for o in profile.operators])
    operator = np.where(mobile, _pick(rng, op_shares, n), -1).astype(np.int8)
    region = _pick(rng, pop_w, n).astype(np.int16)

    n_fixed_by_line = {t: int((line_type == i).sum()) for i, t in enumerate(LINE_TYPES) if i > 0}
    cells = build_cells(profile, int(mobile.sum()), n_fixed_by_line, rng)

    # Home cell: a random cell of the subscriber's operator (or access node of its line type) in its region.
    home_cell = np.empty(n, dtype=np.int32)
    cell_kind = np.where(cells.operator >= 0, cells.operator, 100 + cells.tech).astype(np.int32)
    sub_kind = np.where(operator >= 0, operator, 100 + np.array(
        [TECH[FIXED_TECH_BY_LINE[LINE_TYPES[i]]] if i > 0 else 0 for i in range(4)])[line_type]).astype(np.int32)
    key_cells = cell_kind * 1000 + cells.region
    order = np.argsort(key_cells, kind="stable")
    sorted_keys = key_cells[order]
    key_subs = sub_kind * 1000 + region
    lo = np.searchsorted(sorted_keys, key_subs, side="left")
    hi = np.searchsorted(sorted_keys, key_subs, side="right")
    home_cell[:] = order[lo + (rng.random(n) * (hi - lo)).astype(np.int64)]

    # Identifiers, unique per subscriber.
    msisdn_digits = np.zeros((n, len(profile.country_code) + 9), dtype=np.uint8)
    cc = np.frombuffer(profile.country_code.encode(), dtype=np.uint8)
    mobile_idx = np.flatnonzero(mobile)
    for op_idx, op in enumerate(profile.operators):
        sel = mobile_idx[operator[mobile_idx] == op_idx]
        national = int(op.prefix) * 10**8 + _unique_draw(rng, 10**8, len(sel))
        msisdn_digits[sel, : len(cc)] = cc
        msisdn_digits[sel, len(cc):] = digits_matrix(national, 9)
    fixed_idx = np.flatnonzero(~mobile)
    area = np.array([r.area_code for r in regions])[region[fixed_idx]]
    fixed_national = _dedupe_numbers(rng, area * 10**6 + rng.integers(0, 10**6, len(fixed_idx)), area)
    fixed_digits = np.concatenate([np.repeat(cc[None, :], len(fixed_idx), 0), digits_matrix(fixed_national, 8)], axis=1)
    msisdn_arr = _combine_by_mask(mobile, msisdn_digits, fixed_digits, fixed_idx)

    imsi_digits = np.zeros((n, 15), dtype=np.uint8)
    for op_idx, op in enumerate(profile.operators):
        sel = mobile_idx[operator[mobile_idx] == op_idx]
        head = np.frombuffer(f"{profile.mcc}{op.mnc}".encode(), dtype=np.uint8)
        imsi_digits[sel, :5] = head
        imsi_digits[sel, 5:] = digits_matrix(_unique_draw(rng, 10**10, len(sel)), 10)
    device_share = np.array([d.share for d in profile.devices])
    device = _pick(rng, device_share, n)
    imei_digits = np.zeros((n, 15), dtype=np.uint8)
    tacs = np.array([[ord(c) for c in d.tac] for d in profile.devices], dtype=np.uint8)
    for d_idx in range(len(profile.devices)):
        sel = mobile_idx[device[mobile_idx] == d_idx]
        imei_digits[sel, :8] = tacs[d_idx]
        imei_digits[sel, 8:14] = digits_matrix(_unique_draw(rng, 10**6, len(sel)), 6)
    imei_digits[mobile_idx, 14] = luhn_digits(imei_digits[mobile_idx, :14])
    imsi_arr = fixed_width_strings(imsi_digits, valid=mobile)
    imei_arr = fixed_width_strings(imei_digits, valid=mobile)
    dev_tech = np.array([TECH[d.technology] for d in profile.devices], dtype=np.int8)[device]
    fixed_tech = np.array([0] + [TECH[FIXED_TECH_BY_LINE[t]] for t in LINE_TYPES[1:]], dtype=np.int8)
    device_tech = np.where(mobile, dev_tech, fixed_tech[line_type]).astype(np.int8)

    # Plans by line type and share; segment and payment follow the plan.
    plan = np.empty(n, dtype=np.int32)
    for lt_idx, lt in enumerate(LINE_TYPES):
        sel = np.flatnonzero(line_type == lt_idx)
        candidates = [i for i, p in enumerate(profile.plans) if p.line_type == lt]
        shares = np.array([profile.plans[i].share for i in candidates])
        plan[sel] = np.array(candidates)[_pick(rng, shares, len(sel))]
    plan_codes = np.array([p.code for p in profile.plans], dtype=object)
    segments = np.array([p.segment for p in profile.plans], dtype=object)
    payments = np.array([p.payment for p in profile.plans], dtype=object)

    tenure_days = np.minimum(rng.exponential(3 * 365, n), 20 * 365).astype(np.int64) + 1
    activation = np.datetime64(start) - tenure_days.astype("timedelta64[D]")
    status = np.array(["active", "suspended", "churned"], dtype=object)[_pick(rng, np.array([0.96, 0.02, 0.02]), n)]

    sigma = float(profile.traffic["activity_sigma"])
    activity = rng.lognormal(-sigma**2 / 2, sigma, n)
    activity = np.minimum(activity, 8.0)  # a line is a person: cap the tail at 8x the mean
    activity[status != "active"] = 0.0

    contacts = _social_graph(rng, region, n, int(profile.traffic["contacts_per_subscriber"]),
                             float(profile.traffic["same_region_contacts"]))

    sub_ids = join_fixed_width([
        np.frombuffer(b"S", dtype=np.uint8)[None, :].repeat(n, 0), digits_matrix(np.arange(1, n + 1), 9)])
    op_names = np.array([o.name for o in profile.operators] + [profile.fixed["operator"]], dtype=object)
    table = pa.table(
        {
            "subscriber_id": fixed_width_strings(sub_ids),
            "msisdn": msisdn_arr,
            "imsi": imsi_arr,
            "imei": imei_arr,
            "operator": pa.array(op_names[operator], pa.string()),
            "line_type": pa.array(np.array(LINE_TYPES, dtype=object)[line_type], pa.string()),
            "plan": pa.array(plan_codes[plan], pa.string()),
            "segment": pa.array(segments[plan], pa.string()),
            "payment": pa.array(payments[plan], pa.string()),
            "region": pa.array([regions[i].name for i in region], pa.string()),
            "region_code": pa.array(np.array([r.code for r in regions], dtype=np.int32)[region]),
            "home_cell_id": cells.table["cell_id"].take(pa.array(home_cell)),
            "activation_date": pa.array(activation.astype("datetime64[D]"), pa.date32()),
            "status": pa.array(status, pa.string()),
        },
        schema=arrow_schema(SUBSCRIBERS),
    )
    return Population(
        profile=profile, cells=cells, table=table, msisdn=table["msisdn"].combine_chunks(),
        imsi=imsi_arr, imei=imei_arr, line_type=line_type, operator=operator, region=region,
        home_cell=home_cell, device_tech=device_tech, activity=activity, contacts=contacts,
        prepaid=payments[plan] == "prepaid",
    )


def _dedupe_numbers(rng, numbers: np.ndarray, area: np.ndarray) -> np.ndarray:
    """Redraw the 6 local digits of colliding fixed numbers until every number is unique."""
    numbers = numbers.copy()
    for _ in range(100):
        _, first = np.unique(numbers, return_index=True)
        dup = np.ones(len(numbers), dtype=bool)
        dup[first] = False
        if not dup.any():
            return numbers
        numbers[dup] = area[dup] * 10**6 + rng.integers(0, 10**6, dup.sum())
    raise ValueError("too many fixed lines for the numbering plan")


def _combine_by_mask(mobile: np.ndarray, mobile_digits: np.ndarray, fixed_digits: np.ndarray,
                     fixed_idx: np.ndarray) -> pa.Array:
    """Mobile numbers have 12 digits, fixed 11: build one string array in subscriber order."""
    mob = fixed_width_strings(mobile_digits)
    fix = fixed_width_strings(fixed_digits)
    positions = np.empty(len(mobile), dtype=np.int64)
    positions[np.flatnonzero(mobile)] = np.arange(int(mobile.sum()))
    positions[fixed_idx] = int(mobile.sum()) + np.arange(len(fixed_idx))
    both = pa.concat_arrays([mob.filter(pa.array(mobile)), fix])
    return both.take(pa.array(positions))


def _social_graph(rng, region: np.ndarray, n: int, c: int, same_region: float) -> np.ndarray:
    """(n, c) contact indices: mostly people of the same wilaya, the rest anywhere."""
    order = np.argsort(region, kind="stable")
    sorted_region = region[order]
    lo = np.searchsorted(sorted_region, region, side="left")
    hi = np.searchsorted(sorted_region, region, side="right")
    local = order[lo[:, None] + (rng.random((n, c)) * (hi - lo)[:, None]).astype(np.int64)]
    anywhere = rng.integers(0, n, size=(n, c))
    return np.where(rng.random((n, c)) < same_region, local, anywhere).astype(np.int32)
