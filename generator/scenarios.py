"""Injected anomaly scenarios: fraud and network faults with ground-truth labels.

Each scenario picks its entity from the population, a window inside one UTC day, and either
adds records (built by the engine like any other traffic) or alters the baseline records it
covers. ``labels/scenarios`` lists every instance; the batch and speed layers are scored
against it, so the entity and window written there are exactly what was injected.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from cdr.contract import CALL_RESULTS, SCENARIO_ENTITY, SCENARIOS
from cdr.geo import haversine_km
from generator.arrow_util import categorical, encoded, replace_rows, repoint_rows
from generator.engine import DIRECTIONS, US_PER_MIN, Engine, Events, day_start_us
from generator.population import TECH

# Window lengths in minutes (min, max) per scenario.
WINDOW_MIN = {
    "sim_box": (240, 480), "cell_outage": (60, 180), "traffic_surge": (60, 120), "data_spike": (120, 240),
    "imei_cloning": (240, 480), "impossible_travel": (40, 60), "wangiri": (30, 90),
}
PREMIUM_PREFIXES = ["882", "881", "252", "239", "675"]
H = 60 * US_PER_MIN
ANSWERED, NO_ANSWER, FAILED, DROPPED = (CALL_RESULTS.index(r) for r in ("answered", "no_answer", "failed", "dropped"))


@dataclass
class Scenario:
    scenario_id: str
    kind: str
    day: dt.date
    start_us: int
    end_us: int
    entity_id: str
    subs: dict[str, int] = field(default_factory=dict)  # named subscriber indices
    cells: dict[str, int] = field(default_factory=dict)  # named cell indices
    number: str | None = None  # foreign number (wangiri)

    @property
    def entity_type(self) -> str:
        return SCENARIO_ENTITY[self.kind]


def plan_scenarios(engine: Engine, days: list[dt.date], kinds: list[str], per_day: int) -> list[Scenario]:
    """Choose entities and windows for ``per_day`` instances of each kind on each day."""
    pop = engine.pop
    rng = engine.rng(11)
    used: set[int] = set()
    active_mobile = np.flatnonzero(pop.mobile & (pop.activity > 0))
    radio = np.isin(pop.cells.tech, [TECH[t] for t in ("2G", "3G", "4G", "5G")])
    home_counts = np.bincount(pop.home_cell[pop.activity > 0], minlength=len(pop.cells.tech))
    # Faults and crowds are injected on the busiest cells (top 5 %): a fault on an idle cell
    # would be invisible in the data, for an analyst as for a detector.
    radio_cells = np.flatnonzero(radio)
    busy_cells = radio_cells[np.argsort(-home_counts[radio_cells], kind="stable")[: max(10, len(radio_cells) // 20)]]
    used_cells: set[int] = set()
    out: list[Scenario] = []

    def fresh(pool: np.ndarray) -> int:
        for _ in range(1000):
            i = int(pool[rng.integers(0, len(pool))])
            if i not in used:
                used.add(i)
                return i
        raise ValueError("population too small for the requested scenarios")

    def fresh_cell() -> int:
        for _ in range(1000):
            c = int(busy_cells[rng.integers(0, len(busy_cells))])
            if c not in used_cells:
                used_cells.add(c)
                return c
        raise ValueError("too few cells for the requested scenarios")

    def far_from(sub: int, km: float) -> np.ndarray:
        lat, lon = pop.cells.lat, pop.cells.lon
        home = pop.home_cell[sub]
        dist = haversine_km(lat[home], lon[home], lat[pop.home_cell[active_mobile]], lon[pop.home_cell[active_mobile]])
        return active_mobile[dist > km]

    low_activity = active_mobile[pop.prepaid[active_mobile] & (pop.activity[active_mobile] < 0.6)]
    modern = active_mobile[pop.device_tech[active_mobile] >= TECH["4G"]]
    for day in days:
        for kind in kinds:
            for _ in range(per_day):
                lo, hi = WINDOW_MIN[kind]
                length = int(rng.integers(lo, hi + 1))
                start_min = int(rng.integers(7 * 60, 22 * 60 - length))  # local daytime, inside the day
                start = day_start_us(day) + start_min * US_PER_MIN
                sc = Scenario(f"SC{len(out) + 1:05d}", kind, day, start, start + length * US_PER_MIN, "")
                if kind in ("sim_box",):
                    sc.subs["line"] = fresh(low_activity)
                elif kind in ("data_spike",):
                    sc.subs["line"] = fresh(modern)
                elif kind == "impossible_travel":
                    sc.subs["line"] = fresh(active_mobile)
                    far = far_from(sc.subs["line"], 400)
                    sc.cells["far"] = int(pop.home_cell[far[rng.integers(0, len(far))]])
                elif kind == "imei_cloning":
                    sc.subs["owner"] = fresh(active_mobile)
                    sc.subs["clone"] = fresh(far_from(sc.subs["owner"], 300))
                elif kind in ("cell_outage", "traffic_surge"):
                    sc.cells["cell"] = fresh_cell()
                elif kind == "wangiri":
                    sc.number = engine.international_numbers(rng, 1, PREMIUM_PREFIXES)[0].as_py()
                sc.entity_id = _entity_id(engine, sc)
                out.append(sc)
    return out


def _entity_id(engine: Engine, sc: Scenario) -> str:
    pop = engine.pop
    if sc.kind in ("cell_outage", "traffic_surge"):
        return engine.cell_ids[sc.cells["cell"]].as_py()
    if sc.kind == "imei_cloning":
        return pop.imei[sc.subs["owner"]].as_py()
    if sc.kind == "wangiri":
        return sc.number
    return pop.msisdn[sc.subs["line"]].as_py()


def labels_table(scenarios: list[Scenario]) -> pa.Table:
    from cdr.contract import SCENARIO_LABELS, arrow_schema

    ts = pa.timestamp("us", tz="UTC")
    return pa.table(
        {
            "scenario_id": [s.scenario_id for s in scenarios],
            "scenario": [s.kind for s in scenarios],
            "entity_type": [s.entity_type for s in scenarios],
            "entity_id": [s.entity_id for s in scenarios],
            "start_time": pa.array([s.start_us for s in scenarios], ts),
            "end_time": pa.array([s.end_us for s in scenarios], ts),
        },
        schema=arrow_schema(SCENARIO_LABELS),
    )


# --- extra records ---------------------------------------------------------------------------


def extra_events(engine: Engine, sc: Scenario, record_type: str, rng: np.random.Generator) -> Events | None:
    """Records a scenario adds to ``record_type`` (None when it adds none)."""
    pop = engine.pop
    span = sc.end_us - sc.start_us

    def times(k: int) -> np.ndarray:
        return np.sort(sc.start_us + rng.integers(0, span, k))

    if sc.kind == "sim_box" and record_type == "voice":
        # A SIM box relays international calls as local ones: many short MO calls to
        # many distinct numbers from one place, and nobody calls the SIM back.
        k = int(span / H * rng.uniform(45, 70))
        line = sc.subs["line"]
        callee = rng.integers(0, pop.size, k)
        result = np.where(rng.random(k) < 0.75, ANSWERED, np.where(rng.random(k) < 0.7, NO_ANSWER, FAILED))
        ev = Events(np.full(k, line, np.int32), times(k), np.full(k, pop.home_cell[line], np.int32))
        ev.overrides = {"other_party": encoded(callee, engine.msisdn), "direction": _direction(np.zeros(k, np.int32)),
                        "call_result_code": result}
        return ev
    if sc.kind == "traffic_surge" and record_type in ("voice", "sms", "data"):
        # An event (match, concert) brings a crowd from the wilaya to one cell.
        cell = sc.cells["cell"]
        region_subs = np.flatnonzero((pop.region == pop.cells.region[cell]) & pop.mobile & (pop.activity > 0))
        per_hour = {"voice": 260, "sms": 200, "data": 320}[record_type]
        k = int(span / H * per_hour * rng.uniform(0.8, 1.2))
        subs = region_subs[rng.integers(0, len(region_subs), k)].astype(np.int32)
        return Events(subs, times(k), np.full(k, cell, np.int32))
    if sc.kind == "data_spike" and record_type == "data":
        k = int(rng.integers(8, 14))
        line = sc.subs["line"]
        ev = Events(np.full(k, line, np.int32), times(k), np.full(k, pop.home_cell[line], np.int32))
        ev.overrides = {"bytes_downlink": (rng.uniform(2.5e9, 6e9, k)).astype(np.int64),
                        "bytes_uplink": (rng.uniform(1e8, 6e8, k)).astype(np.int64)}
        return ev
    if sc.kind == "imei_cloning" and record_type in ("voice", "data"):
        # The owner and the clone both use one IMEI, with different SIMs, far apart.
        k = int(rng.integers(6, 10))
        subs = np.concatenate([np.full(k, sc.subs["owner"]), np.full(k, sc.subs["clone"])]).astype(np.int32)
        ev = Events(subs, times(2 * k), pop.home_cell[subs].astype(np.int32))
        ev.overrides = {"imei_owner": np.full(2 * k, sc.subs["owner"], np.int32)}
        return ev
    if sc.kind == "impossible_travel" and record_type in ("voice", "sms", "data"):
        # Alternating between home and a cell hundreds of km away within minutes.
        k = int(rng.integers(3, 5))
        line = sc.subs["line"]
        t = np.linspace(sc.start_us, sc.end_us - US_PER_MIN, 2 * k).astype(np.int64)
        t += rng.integers(0, US_PER_MIN // 2, 2 * k)
        cells = np.where(np.arange(2 * k) % 2 == 0, pop.home_cell[line], sc.cells["far"]).astype(np.int32)
        return Events(np.full(2 * k, line, np.int32), t, cells)
    if sc.kind == "wangiri" and record_type == "voice":
        # One ring from a premium foreign number to many subscribers; a few call back (IRSF).
        victims_pool = np.flatnonzero(pop.mobile & (pop.activity > 0))
        k = int(span / H * rng.uniform(90, 140))
        victims = victims_pool[rng.choice(len(victims_pool), size=min(k, len(victims_pool)), replace=False)].astype(np.int32)
        k = len(victims)
        back = max(2, int(k * 0.06))
        subs = np.concatenate([victims, victims[:back]])
        t = np.concatenate([times(k), np.sort(sc.start_us + span // 2 + rng.integers(0, span // 2, back))])
        result = np.concatenate([np.full(k, NO_ANSWER), np.full(back, ANSWERED)])
        ev = Events(subs, t, engine.mobility(subs, rng))
        ev.overrides = {
            "other_party": encoded(np.zeros(k + back, np.int32), pa.array([sc.number], pa.string())),
            "direction": _direction(np.concatenate([np.ones(k, np.int32), np.zeros(back, np.int32)])),
            "call_result_code": result,
        }
        return ev
    return None


def _direction(codes: np.ndarray) -> pa.Array:
    """Directions with the engine's dictionary (0 MO, 1 MT), so that parts keep one dictionary."""
    return categorical(codes, DIRECTIONS)


# --- alterations of baseline records ---------------------------------------------------------


def alter(engine: Engine, sc: Scenario, record_type: str, ev: Events, table: pa.Table,
          rng: np.random.Generator) -> tuple[pa.Table, Events | None]:
    """Change baseline records inside the window; may return retry records to add."""
    if sc.kind == "cell_outage" and record_type == "voice":
        hit = np.flatnonzero((ev.cell == sc.cells["cell"]) & (ev.t >= sc.start_us) & (ev.t < sc.end_us))
        hit = hit[rng.random(len(hit)) < 0.8]
        if not len(hit):
            return table, None
        failed = rng.random(len(hit)) < 0.55
        table = replace_rows(table, "call_result", hit, np.where(failed, "failed", "dropped").tolist())
        table = replace_rows(table, "duration_s", hit, np.where(failed, 0, rng.integers(1, 20, len(hit))).tolist())
        # Subscribers retry: one or two more failed attempts within minutes.
        retries = np.repeat(hit, rng.integers(1, 3, len(hit)))
        t = ev.t[retries] + rng.integers(US_PER_MIN // 4, 4 * US_PER_MIN, len(retries))
        keep = t < sc.end_us
        retry = Events(ev.sub[retries][keep], t[keep], ev.cell[retries][keep])
        retry.overrides = {"call_result_code": np.full(int(keep.sum()), FAILED)}
        return table, retry
    if sc.kind == "imei_cloning":
        hit = np.flatnonzero((ev.sub == sc.subs["clone"]) & (ev.t >= sc.start_us) & (ev.t < sc.end_us))
        if len(hit):
            # The served IMEI dictionary holds the population's IMEIs: point at the owner's.
            table = repoint_rows(table, "served_imei", hit, int(engine.handset[sc.subs["owner"]]))
    return table, None
