"""Detection scenarios: every threshold and window of the anomaly detectors, defined once.

The generator injects the scenarios of ``cdr.contract.SCENARIOS`` (generator/scenarios.py); the
batch layer (``batch/anomalies.py``) and the speed layer (``streaming/flink/rules.py``) detect them
and read every threshold and window from here. A field's name says who reads it:

- no prefix: both layers measure this quantity, with this one value;
- ``batch_``: only the batch detectors (evidence over a day, robust baselines over cell hours);
- ``stream_``: only the stream rules (tumbling event-time windows, decided when a window closes).

Each field carries why it is what it is (``why``, rendered in docs/data-contract.md by
``cdr contract docs``). The values keep both layers' precision and recall at 1.0 on what the
generator injects, with a wide margin to normal traffic. ``tests/unit/test_scenario_definitions.py``
fails if either layer uses a value of its own or ignores one of these.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from cdr.contract import SCENARIOS

LAYERS = {"batch_": "batch", "stream_": "stream"}


def _value(default: Any, why: str) -> Any:
    return field(default=default, metadata={"why": why})


@dataclass(frozen=True)
class SimBox:
    window_min: int = _value(
        60, "Calls are counted per clock hour (a tumbling window): the injected rate is per hour and a SIM box "
            "runs 4-8 h, so it fills whole hours.")
    min_mo_calls: int = _value(
        30, "A SIM box relays 45-70 short outgoing calls an hour; the busiest normal line makes a handful.")
    min_distinct_callees: int = _value(
        25, "Relayed calls go to numbers drawn from the whole population, nearly all distinct; a busy normal line "
            "calls the same few contacts again.")
    stream_max_mt_calls: int = _value(
        2, "Nobody calls a SIM box back: in the window it receives at most this many calls (a stray call or two), "
           "a normal line about as many as it makes.")
    batch_max_in_out_ratio: float = _value(
        0.1, "Over the day a SIM box receives (almost) no calls: incoming calls at most this share of outgoing.")


@dataclass(frozen=True)
class CellOutage:
    stream_window_min: int = _value(
        15, "An outage lasts 60-180 min; 15-min windows alert within a quarter of an hour and lie inside it.")
    stream_min_attempts: int = _value(
        8, "Voice attempts in the window: keeps a quiet cell from alerting on two unlucky calls.")
    stream_min_failed_share: float = _value(
        0.6, "Failed or dropped share of the window's attempts: the baseline is a few %; inside an outage 80 % of "
             "calls fail and the retries add failed attempts.")
    batch_min_failures: int = _value(
        4, "Failed+dropped calls in the hour: fewer is no evidence, whatever the share.")
    batch_min_failed_share: float = _value(
        0.5, "Failed+dropped share of the clock hour's attempts. Lower than the stream's: a 60-min outage from "
             "hh:30 covers only half of each clock hour, which brings the share down to about 0.6.")
    batch_min_z: float = _value(
        5.0, "Robust z of the cell's failure share against the same hour over all cells (median, MAD).")
    batch_min_g: float = _value(
        25.0, "Likelihood-ratio (G) statistic of the cell's failures against a binomial at the other cells' rate "
              "that hour: 25 is a chance below 1e-6 (chi-squared, 1 df), small enough for the tens of thousands "
              "of cell-hours a month tests. A quiet cell failing 4 of 7 calls at a 5 % base rate has G ~ 15 "
              "(chance, seen in the demo); real outages fail 10 of 12 and more, G > 30. The normal approximation "
              "(a z-score) is far too generous in this tail.")
    batch_rate_floor: float = _value(
        0.01, "The other cells' failure rate in the G test is at least this: an hour in which no other cell "
              "failed must not make any failure infinitely improbable.")
    batch_mad_floor: float = _value(
        0.02, "The MAD of the hour's failure shares is at least this: when all cells fail alike, a tiny "
              "deviation must not become a huge z.")


@dataclass(frozen=True)
class TrafficSurge:
    stream_window_min: int = _value(60, "Records are counted per clock hour (a tumbling window); a crowd stays 1-2 h.")
    stream_min_records: int = _value(
        250, "Voice+SMS+data records on one radio cell in the hour: busy cells carry at most 150 at the demo scale, a "
             "crowd adds about 780. Absolute: cells scale with subscribers, so it holds across --subscribers.")
    batch_min_extra_events: int = _value(
        150, "Events above the cell's median hour: a crowd adds hundreds an hour.")
    batch_min_z: float = _value(8.0, "Robust z of the hour's events against the cell's own hours (median, MAD).")
    batch_mad_floor: float = _value(
        1.0, "The MAD of a cell's hourly events is at least one event: a cell with flat traffic must not turn a "
             "few extra events into a huge z.")


@dataclass(frozen=True)
class DataSpike:
    min_session_bytes: int = _value(
        2_000_000_000, "A big session (bytes up+down, radio access only: fixed lines are flat-rate and move far "
                       "more): injected ones carry 2.6-6.6 GB; a heavy user has one such session now and then.")
    stream_window_min: int = _value(120, "The shortest injected spike lasts 2 h (2-4 h).")
    stream_min_big_sessions: int = _value(
        3, "Big sessions in the window: a spike is 8-14 of them in 2-4 h; a heavy user has one now and then.")
    batch_min_sessions: int = _value(5, "Big sessions in the day: a spike is 8-14; a heavy user has one or two.")
    batch_min_day_bytes: int = _value(
        18_000_000_000, "Bytes in the day's big sessions: a spike moves 20-80 GB.")


@dataclass(frozen=True)
class ImeiCloning:
    min_sims: int = _value(
        2, "One handset serves one SIM at a time: a second SIM with the same IMEI is a clone (the stream counts "
           "lines in the window, the batch IMSIs in the day).")
    stream_window_min: int = _value(
        60, "The owner and the clone are both active for the 4-8 h of the scenario: one hour shows both.")
    batch_min_distance_km: float = _value(
        200, "Between the centroids of the cells each SIM used that day. The generator puts a clone's home at least "
             "300 km from the owner's, but neighbour cells pull centroids closer (295 km on seed 7): 300 missed "
             "one clone in six. A SIM moved into another handset in the same town stays near 0.")


@dataclass(frozen=True)
class ImpossibleTravel:
    window_min: int = _value(
        60, "Batch: consecutive events at most this many minutes apart; stream: the tumbling window the cells' "
            "spread is measured in. An injected trip alternates between two cells for 40-60 min.")
    min_distance_km: float = _value(
        300, "Batch: one hop; stream: the spread of the window's cells. The injected far cell lies over 400 km from "
             "home; 300 leaves room for hops from a neighbour cell of either end. Normal mobility stays among "
             "the nearest cells of home; where those are far apart (the Sahara), batch_neighbour_factor and "
             "stream_reach_factor tell it from a jump. The batch scores 1.0, 1.0 anywhere from 150 to 400 km on "
             "seeds 42 and 7 (450 km misses 2 trips of 6).")
    batch_min_hops: int = _value(
        3, "Far, fast hops in the day: an injected trip makes 5-7 (6-8 events alternating between two cells); "
           "one jump may be a wrong cell reference.")
    batch_neighbour_factor: float = _value(
        1.5, "A hop must also exceed this times the larger nearest-site distance of its two cells: a hop to the "
             "nearest other site is a handover, however far.")
    stream_reach_factor: float = _value(
        1.2, "The spread must also exceed this times the farthest reach of the line's cells (distance to the "
             "farthest of a cell's 6 neighbours): normal movement among Saharan neighbours is not a jump.")


@dataclass(frozen=True)
class Wangiri:
    window_min: int = _value(60, "Victims are counted per clock hour (a tumbling window), as the injected rate is.")
    min_victims: int = _value(
        15, "Distinct subscribers one foreign number rings, unanswered, in the hour: the fraud rings 90-140 an hour "
            "for 30-90 min (a 30-min one split over two clock hours still leaves about 22 in one); a normal "
            "foreign caller reaches a few (the batch scores 1.0, 1.0 anywhere from 5 to 40 on seeds 42 and 7).")


@dataclass(frozen=True)
class Definitions:
    """One definition per scenario, fields named and ordered as ``cdr.contract.SCENARIOS``."""

    sim_box: SimBox = field(default_factory=SimBox)
    cell_outage: CellOutage = field(default_factory=CellOutage)
    traffic_surge: TrafficSurge = field(default_factory=TrafficSurge)
    data_spike: DataSpike = field(default_factory=DataSpike)
    imei_cloning: ImeiCloning = field(default_factory=ImeiCloning)
    impossible_travel: ImpossibleTravel = field(default_factory=ImpossibleTravel)
    wangiri: Wangiri = field(default_factory=Wangiri)

    def of(self, scenario: str) -> Any:
        if scenario not in SCENARIOS:
            raise KeyError(f"unknown scenario {scenario!r}; known: {', '.join(SCENARIOS)}")
        return getattr(self, scenario)


# What both layers detect with. Read it when detecting (``detection.DEFINITIONS``), not at import:
# the stream rules also take a Definitions argument, and tests replace this one.
DEFINITIONS = Definitions()


def layer_of(name: str) -> str:
    """Who reads a field: 'batch', 'stream' or 'both' (from its prefix)."""
    return next((layer for prefix, layer in LAYERS.items() if name.startswith(prefix)), "both")


def rows(defs: Definitions = DEFINITIONS) -> list[tuple[str, str, Any, str, str]]:
    """(scenario, field, value, layer, why) of every definition, in SCENARIOS order."""
    return [(s, f.name, getattr(defs.of(s), f.name), layer_of(f.name), f.metadata["why"])
            for s in SCENARIOS for f in fields(defs.of(s))]
