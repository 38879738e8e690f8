"""The event engine: turns a population and a time window into CDR records, vectorised.

Records are built in two steps. ``sample_events`` decides who does something where and when
(subscriber index, UTC microseconds, cell index); ``build_records`` draws every other attribute
for those events and assembles an Arrow table following the data contract. Scenarios reuse
``build_records`` with their own events and attribute overrides, so injected fraud looks like
ordinary traffic in every column it does not change on purpose.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cdr.contract import ACCESS_TECHNOLOGIES, CALL_RESULTS, RECORD_TYPES, arrow_schema
from cdr.identifiers import digits_matrix
from generator.arrow_util import DICT_TYPE, categorical, constant_prefix, encoded, fixed_width_strings, join_fixed_width
from generator.calendar import minute_intensity
from generator.population import LINE_TYPES, TECH, Population, _pick
from generator.sampling import GuideTableSampler, bucket

US_PER_MIN = 60_000_000
US_PER_DAY = 86_400_000_000
TYPE_LETTER = {"voice": "V", "sms": "S", "data": "D", "voip": "P", "ims": "I"}
RADIO = np.array([TECH[t] for t in ("2G", "3G", "4G", "5G")], dtype=np.int8)
ROAMING_CELL = -1
# The six low digits of every sequence number, as ASCII: record ids gather rows of this table
# instead of dividing by ten six times per record.
LOW_DIGITS = digits_matrix(np.arange(1_000_000), 6)
DIRECTIONS = ("MO", "MT")
ABROAD_CELLS = 200  # distinct cells a roaming subscriber may be seen on, per visited network


def day_start_us(day: dt.date) -> int:
    return int((dt.datetime.combine(day, dt.time()) - dt.datetime(1970, 1, 1)).total_seconds()) * 1_000_000


@dataclass
class Events:
    """Who, when, where: one row per record to build. ``overrides`` fix attributes by name."""

    sub: np.ndarray  # int32 subscriber index
    t: np.ndarray  # int64 UTC microseconds
    cell: np.ndarray  # int32 cell index, ROAMING_CELL when abroad
    overrides: dict[str, np.ndarray | pa.Array] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.sub)


class Engine:
    def __init__(self, population: Population, seed: int):
        self.pop = population
        self.profile = population.profile
        self.seed = seed
        tr = self.profile.traffic
        # Daily rate per subscriber for each record type (0 where the line type cannot do it).
        self.rate = {
            rt: np.array([tr.get(lt, {}).get(rt, 0.0) for lt in LINE_TYPES])[population.line_type]
            * population.activity
            for rt in RECORD_TYPES
        }
        self.samplers = {rt: GuideTableSampler(r) for rt, r in self.rate.items() if r.sum() > 0}
        self.result_p = np.array([tr["call_results"][r] for r in CALL_RESULTS])
        self.msisdn = population.msisdn
        # Dictionaries must hold no nulls and no duplicates (else Parquet decodes the column and
        # writes it plain): IMSIs and IMEIs of mobile lines only, ``handset[sub]`` is the position
        # of a subscriber's in them; validity (mobile lines) lives in the indices.
        mobile = population.mobile
        self.imsi = population.imsi.filter(pa.array(mobile))
        self.imei = population.imei.filter(pa.array(mobile))
        self.handset = np.zeros(population.size, dtype=np.int32)
        self.handset[mobile] = np.arange(int(mobile.sum()), dtype=np.int32)
        self.cells = population.cells
        self.cell_ids = population.cells.table["cell_id"].combine_chunks()
        self.contact_cum = np.cumsum(1.0 / np.arange(1, population.contacts.shape[1] + 1) ** 0.8)
        self.intl_prefixes = list(tr["international_prefixes"])
        self.visited = list(tr["visited_plmns"])
        # Site numbers abroad are drawn at random and may repeat: the dictionary keeps each cell
        # id once and ``abroad_slot`` maps the drawn slots to it (a repeated id is drawn twice as often).
        abroad = self._abroad_cells()
        unique = pc.unique(abroad)
        self.abroad_slot = len(self.cell_ids) + np.asarray(pc.index_in(abroad, value_set=unique), dtype=np.int32)
        self.home_and_abroad_cells = pa.concat_arrays([self.cell_ids, unique])

    def _abroad_cells(self) -> pa.Array:
        """ABROAD_CELLS cell ids per visited network, built once: `PLMN-site-sector`."""
        rng = self.rng(9)
        n = ABROAD_CELLS * len(self.visited)
        plmn = np.array([[ord(c) for c in p] for p in self.visited], dtype=np.uint8).repeat(ABROAD_CELLS, axis=0)
        return fixed_width_strings(join_fixed_width([
            plmn, constant_prefix("-", n), digits_matrix(rng.integers(1, 99999, n), 5),
            constant_prefix("-", n), digits_matrix(rng.integers(1, 4, n), 1)]))

    # --- randomness -----------------------------------------------------------------------------

    def rng(self, *key: int) -> np.random.Generator:
        """Independent, reproducible stream per (purpose, record type, day, part)."""
        return np.random.default_rng(np.random.SeedSequence([self.seed, *key]))

    def roaming_today(self, day: dt.date) -> np.ndarray:
        """Mobile subscribers abroad on ``day`` (the same set for every record type)."""
        rng = self.rng(7, day.toordinal())
        return self.pop.mobile & (rng.random(self.pop.size) < self.profile.roaming_share)

    # --- sampling who/when/where ----------------------------------------------------------------

    def day_counts(self, record_type: str, day: dt.date) -> np.ndarray:
        """Events per minute of the UTC day for the baseline traffic (1440 ints)."""
        intensity = minute_intensity(self.profile, day, record_type)
        expected_per_day = self.samplers[record_type].total
        rng = self.rng(1, _type_key(record_type), day.toordinal())
        expected = intensity / intensity.size * expected_per_day
        return rng.poisson(expected)

    def sample_events(self, record_type: str, day: dt.date, minute_counts: np.ndarray,
                      first_minute: int, part: int) -> Events:
        rng = self.rng(2, _type_key(record_type), day.toordinal(), part)
        n = int(minute_counts.sum())
        minutes = np.repeat(np.arange(first_minute, first_minute + len(minute_counts)), minute_counts)
        t = day_start_us(day) + minutes.astype(np.int64) * US_PER_MIN + rng.integers(0, US_PER_MIN, n)
        sub = self.samplers[record_type].draw(rng, n)
        cell = self.mobility(sub, rng)
        roaming = self.roaming_today(day)[sub]
        cell[roaming] = ROAMING_CELL
        return Events(sub, t, cell)

    def mobility(self, sub: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Home cell most of the time, otherwise one of its nearest cells (fixed lines: home node)."""
        home = self.pop.home_cell[sub]
        k = self.cells.neighbours.shape[1]
        away = (rng.random(len(sub)) > self.profile.traffic["home_cell_share"]) & self.pop.mobile[sub]
        cell = home.copy()
        cell[away] = self.cells.neighbours[home[away], rng.integers(1, k, int(away.sum()))]
        return cell

    # --- building records -----------------------------------------------------------------------

    def build_records(self, record_type: str, ev: Events, rng: np.random.Generator, seq_start: int,
                      day: dt.date) -> pa.Table:
        n = len(ev)
        pop = self.pop
        o = ev.overrides
        roaming = ev.cell == ROAMING_CELL
        cols: dict[str, pa.Array | np.ndarray] = {}
        letter = TYPE_LETTER[record_type]
        cols["record_id"] = fixed_width_strings(record_ids(f"{letter}{day:%Y%m%d}", seq_start, n))
        cols["record_type"] = categorical(np.zeros(n, np.int32), [record_type])
        cols["start_time"] = pa.array(ev.t, pa.timestamp("us", tz="UTC"))
        mobile = pop.mobile[ev.sub]
        cols["served_msisdn"] = encoded(ev.sub, self.msisdn)
        handset = self.handset[ev.sub]
        cols["served_imsi"] = encoded(handset, self.imsi, mobile)
        imei_owner = o.get("imei_owner")
        cols["served_imei"] = encoded(self.handset[imei_owner] if imei_owner is not None else handset, self.imei, mobile)
        visited = rng.integers(0, len(self.visited), n)
        cols["cell_id"] = self._cell_ids(ev.cell, roaming, visited, rng)
        tech = self._access_tech(record_type, ev, roaming, rng)
        cols["access_technology"] = categorical(tech, ACCESS_TECHNOLOGIES)
        cols["roaming"] = pa.array(roaming)
        cols["visited_plmn"] = encoded(visited, pa.array(self.visited, pa.string()), roaming)
        getattr(self, f"_{record_type}")(cols, ev, rng, tech)
        for name, value in o.items():
            if name in cols:
                cols[name] = value
        schema = generated_schema(record_type)
        return pa.table([_as_arrow(cols[f.name], f.type) for f in schema], schema=schema)

    def _cell_ids(self, cell: np.ndarray, roaming: np.ndarray, visited: np.ndarray, rng) -> pa.Array:
        """Home network cells by index; abroad, one of the visited network's cells (PLMN-site-sector)."""
        if not roaming.any():
            return encoded(cell, self.cell_ids)
        idx = cell.copy()
        k = int(roaming.sum())
        idx[roaming] = self.abroad_slot[visited[roaming] * ABROAD_CELLS + rng.integers(0, ABROAD_CELLS, k)]
        return encoded(idx, self.home_and_abroad_cells)

    def _access_tech(self, record_type, ev: Events, roaming, rng) -> np.ndarray:
        """min(cell technology, handset technology) on mobile lines; the access itself on fixed."""
        cell_tech = self.cells.tech[np.where(roaming, 0, ev.cell)]
        cell_tech = np.where(roaming, TECH["4G"], cell_tech)
        dev = self.pop.device_tech[ev.sub]
        mobile = self.pop.mobile[ev.sub]
        tech = np.where(mobile, np.minimum(cell_tech, dev), dev).astype(np.int8)
        if record_type in ("voip", "ims"):  # part of OTT/IMS traffic runs over Wi-Fi at home
            wifi = mobile & (rng.random(len(tech)) < (0.35 if record_type == "voip" else 0.15))
            tech[wifi] = TECH["WIFI"]
        return tech

    def other_party(self, sub: np.ndarray, rng) -> pa.Array:
        """Mostly a contact of the subscriber (Zipf over the contact list), else anyone, some abroad."""
        n = len(sub)
        tr = self.profile.traffic
        rank = bucket(self.contact_cum, rng.random(n) * self.contact_cum[-1])
        callee = self.pop.contacts[sub, rank]
        anyone = rng.random(n) > tr["contact_share"]
        callee[anyone] = rng.integers(0, self.pop.size, int(anyone.sum()))
        abroad = rng.random(n) < tr["international_share"]
        if not abroad.any():
            return encoded(callee, self.msisdn)
        k = int(abroad.sum())
        numbers = self.international_numbers(rng, k)
        unique = pc.unique(numbers)  # random numbers may repeat; a dictionary must not
        callee[abroad] = self.pop.size + np.asarray(pc.index_in(numbers, value_set=unique), dtype=np.int32)
        return encoded(callee, pa.concat_arrays([self.msisdn, unique]))

    def international_numbers(self, rng, k: int, prefixes: list[str] | None = None) -> pa.Array:
        prefixes = prefixes or self.intl_prefixes
        which = rng.integers(0, len(prefixes), k)
        parts = []
        order = []
        for i, cc in enumerate(prefixes):
            sel = np.flatnonzero(which == i)
            width = 12 - len(cc) if len(cc) < 3 else 9
            parts.append(fixed_width_strings(join_fixed_width([
                constant_prefix(cc, len(sel)),
                digits_matrix(rng.integers(10 ** (width - 1), 10**width, len(sel)), width)])))
            order.append(sel)
        positions = np.empty(k, dtype=np.int64)
        positions[np.concatenate(order)] = np.arange(k)
        return pa.concat_arrays(parts).take(pa.array(positions))

    def _direction(self, n, rng) -> np.ndarray:
        return (rng.random(n) < self.profile.traffic["mt_share"]).astype(np.int32)

    def _voice(self, cols, ev: Events, rng, tech) -> None:
        n = len(ev)
        tr = self.profile.traffic
        cols["other_party"] = self.other_party(ev.sub, rng)
        cols["direction"] = categorical(self._direction(n, rng), DIRECTIONS)
        result = _pick(rng, self.result_p, n)
        if "call_result_code" in ev.overrides:
            result = ev.overrides["call_result_code"]
        talk = rng.lognormal(np.log(tr["call_median_s"]), tr["call_sigma"], n)
        duration = np.where(result == 0, talk, 0.0)
        dropped = result == CALL_RESULTS.index("dropped")
        duration[dropped] = talk[dropped] * rng.random(int(dropped.sum()))
        cols["duration_s"] = np.clip(np.round(duration), 0, 4 * 3600).astype(np.int32)
        cols["duration_s"][result == 0] = np.maximum(cols["duration_s"][result == 0], 1)
        cols["call_result"] = categorical(result, CALL_RESULTS)

    def _sms(self, cols, ev: Events, rng, tech) -> None:
        n = len(ev)
        cols["other_party"] = self.other_party(ev.sub, rng)
        cols["direction"] = categorical(self._direction(n, rng), DIRECTIONS)
        cols["sms_status"] = categorical((rng.random(n) < 0.015).astype(np.int32), ["delivered", "failed"])
        length = np.minimum(rng.geometric(1 / 45, n), 160)
        long = rng.random(n) < 0.04
        length[long] = rng.integers(161, 460, int(long.sum()))
        cols["message_length"] = length.astype(np.int32)

    def _data(self, cols, ev: Events, rng, tech) -> None:
        n = len(ev)
        tr = self.profile.traffic
        medians = np.array([tr["data_median_bytes"].get(t, 1e7) for t in ACCESS_TECHNOLOGIES])
        down = rng.lognormal(np.log(medians[tech]), tr["data_sigma"])
        up = down * rng.lognormal(np.log(0.12), 0.5, n)
        duration = rng.lognormal(np.log(tr["data_session_median_s"]), 1.0, n)
        cols["duration_s"] = np.clip(np.round(duration), 1, 86_399).astype(np.int32)
        cols["bytes_downlink"] = np.minimum(down, 5e10).astype(np.int64)
        cols["bytes_uplink"] = np.minimum(up, 1e10).astype(np.int64)
        fixed = ~self.pop.mobile[ev.sub]
        apn = np.where(fixed, 2, (rng.random(n) < 0.04).astype(np.int32))
        cols["apn"] = categorical(apn, ["internet", "mms", "broadband"])

    def _voip(self, cols, ev: Events, rng, tech) -> None:
        n = len(ev)
        cols["other_party"] = self.other_party(ev.sub, rng)
        cols["direction"] = categorical(self._direction(n, rng), DIRECTIONS)
        answered = rng.random(n) > 0.09
        talk = rng.lognormal(np.log(150), 1.1, n)
        cols["duration_s"] = np.where(answered, np.clip(np.round(talk), 1, 4 * 3600), 0).astype(np.int32)
        codec = np.where(np.isin(tech, [TECH["FTTH"], TECH["ADSL"]]), 3, _pick(rng, np.array([0.2, 0.1, 0.65, 0.0, 0.05]), n))
        cols["codec"] = categorical(codec, ["AMR-WB", "EVS", "OPUS", "G.711", "G.729"])
        quality = np.array([3.2, 3.6, 4.1, 4.3, 4.0, 4.3, 3.9, 3.9])[tech]
        cols["mos"] = np.round(np.clip(rng.normal(quality, 0.35), 1.0, 5.0), 2)

    def _ims(self, cols, ev: Events, rng, tech) -> None:
        n = len(ev)
        service = _pick(rng, np.array([0.6, 0.15, 0.1, 0.15]), n)
        service[tech == TECH["WIFI"]] = 1
        cols["other_party"] = self.other_party(ev.sub, rng)
        codes = np.array([200, 486, 480, 408, 487, 503])
        status = codes[_pick(rng, np.array([0.86, 0.04, 0.04, 0.02, 0.03, 0.01]), n)]
        talk = rng.lognormal(np.log(100), 1.1, n)
        talk[service == 3] = rng.integers(0, 5, int((service == 3).sum()))
        cols["duration_s"] = np.where(status == 200, np.clip(np.round(talk), 0, 4 * 3600), 0).astype(np.int32)
        cols["ims_service"] = categorical(service, ["volte", "vowifi", "video", "rcs"])
        cols["sip_status"] = status.astype(np.int32)


def record_ids(prefix: str, seq_start: int, n: int) -> np.ndarray:
    """ASCII matrix of ``prefix`` + 10-digit sequence numbers ``seq_start .. seq_start + n - 1``.

    The numbers are consecutive, so the matrix is filled by block copies: per million, the
    four high digits are one constant and the six low ones a slice of LOW_DIGITS.
    """
    width = len(prefix)
    out = np.empty((n, width + 10), dtype=np.uint8)
    out[:, :width] = np.frombuffer(prefix.encode("ascii"), dtype=np.uint8)
    row, seq, end = 0, seq_start, seq_start + n
    while seq < end:  # one step per million records
        high, low = divmod(seq, 1_000_000)
        take = min(end - seq, 1_000_000 - low)
        out[row:row + take, width:width + 4] = digits_matrix(np.array([high]), 4)
        out[row:row + take, width + 4:] = LOW_DIGITS[low:low + take]
        row, seq = row + take, seq + take
    return out


def _type_key(record_type: str) -> int:
    return list(RECORD_TYPES).index(record_type) + 1


def generated_schema(record_type: str) -> pa.Schema:
    """The contract's Arrow schema with repeated strings dictionary-encoded (same logical type:
    Parquet files are written without the Arrow schema, so readers see plain strings)."""
    schema = arrow_schema(RECORD_TYPES[record_type])
    return pa.schema([pa.field(f.name, DICT_TYPE) if pa.types.is_string(f.type) and f.name != "record_id" else f
                      for f in schema])


def _as_arrow(value, arrow_type: pa.DataType) -> pa.Array:
    if isinstance(value, (pa.Array, pa.ChunkedArray)):
        if pa.types.is_dictionary(arrow_type) and not pa.types.is_dictionary(value.type):
            return value.dictionary_encode().cast(arrow_type)
        return value
    return pa.array(value, arrow_type)
