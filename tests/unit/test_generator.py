"""The generator: valid identifiers, reproducibility, honest labels, realistic shapes."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from cdr.contract import RECORD_TYPES, arrow_schema
from cdr.identifiers import is_valid_imei
from cdr.profile import load_profile
from cdr.validation import Context, check_record, coerce, msisdn_pattern, rules_for
from generator.dataset import GenerateOptions, generate_dataset
from cdr.geo import haversine_km
from tests.unit.conftest import SMALL
from tests.unit.dataset_io import read_table

PROFILE = load_profile("algeria")
UTC = dt.timezone.utc


def test_subscriber_identifiers_follow_their_standards(dataset_dir):
    subs = read_table(dataset_dir["parquet"], "subscribers").to_pylist()
    pattern = re.compile(msisdn_pattern(PROFILE))
    mnc = {o.name: o.mnc for o in PROFILE.operators}
    prefix = {o.name: o.prefix for o in PROFILE.operators}
    for s in subs:
        assert pattern.match(s["msisdn"]), s
        if s["line_type"] == "mobile":
            assert len(s["msisdn"]) == 12 and s["msisdn"][3] == prefix[s["operator"]]
            assert len(s["imsi"]) == 15 and s["imsi"][:5] == "603" + mnc[s["operator"]]
            assert is_valid_imei(s["imei"]), s["imei"]
            assert s["imei"][:8] in {d.tac for d in PROFILE.devices}
        else:
            assert len(s["msisdn"]) == 11 and s["imsi"] is None and s["imei"] is None
    for key in ("subscriber_id", "msisdn", "imsi", "imei"):
        values = [s[key] for s in subs if s[key] is not None]
        assert len(values) == len(set(values)), f"{key} not unique"


def test_market_shares_and_line_types_are_realistic(dataset_dir):
    subs = read_table(dataset_dir["parquet"], "subscribers")
    n = subs.num_rows
    counts = Counter(subs.column("operator").to_pylist())
    mobile = n * PROFILE.mobile_share
    for op in PROFILE.operators:
        assert abs(counts[op.name] / mobile - op.share) < 0.04, (op.name, counts[op.name] / mobile)
    assert set(subs.column("line_type").to_pylist()) == {"mobile", "ftth", "adsl", "lte_home"}
    assert len(set(subs.column("region_code").to_pylist())) >= 50  # people live all over the 58 wilayas


def test_same_seed_same_rows_other_seed_other_rows(tmp_path):
    opts = dict(SMALL, subscribers=500, days=1)
    a = generate_dataset(GenerateOptions(out=tmp_path / "a", **opts)).out
    b = generate_dataset(GenerateOptions(out=tmp_path / "b", **opts)).out
    c = generate_dataset(GenerateOptions(out=tmp_path / "c", **dict(opts, seed=8))).out
    for name in ("subscribers", "cells", "defects", "scenarios", *RECORD_TYPES):
        assert read_table(a, name).equals(read_table(b, name)), name
    assert not read_table(a, "voice").equals(read_table(c, "voice"))
    ma, mb = (json.loads((p / "manifest.json").read_text()) for p in (a, b))
    assert ma == mb and ma["seed"] == 7 and ma["arguments"]["subscribers"] == 500


def _all_cdrs(path):
    return {rt: read_table(path, rt) for rt in RECORD_TYPES}


def _context(path):
    cells = frozenset(read_table(path, "cells").column("cell_id").to_pylist())
    return Context(reference_time=dt.datetime(2026, 1, 10, tzinfo=UTC), known_cells=cells)


def test_every_labelled_defect_is_really_defective_and_nothing_else_is(dataset_dir):
    path = dataset_dir["parquet"]
    ctx = _context(path)
    labels = {r["record_id"]: r["defect"] for r in read_table(path, "defects").to_pylist()}
    assert len(labels) > 100
    seen_ids: set[str] = set()
    found: dict[str, str] = {}
    for rt, table in _all_cdrs(path).items():
        rules = rules_for(RECORD_TYPES[rt], PROFILE)
        for rec in table.to_pylist():
            rid = rec["record_id"]
            if rid in seen_ids:
                found[rid] = "duplicate"
                continue
            seen_ids.add(rid)
            violation = check_record(rec, rules, ctx)
            if violation:
                found[rid] = violation.code
    assert found == labels
    assert set(labels.values()) == {
        "missing_field", "malformed_msisdn", "invalid_imei", "timestamp_future", "timestamp_past",
        "unknown_cell", "duplicate", "negative_duration", "duration_over_24h", "negative_bytes"}


def test_duplicates_are_exact_copies(dataset_dir):
    voice = read_table(dataset_dir["parquet"], "voice")
    dup_ids = [r["record_id"] for r in read_table(dataset_dir["parquet"], "defects").to_pylist()
               if r["defect"] == "duplicate" and r["record_type"] == "voice"]
    assert dup_ids
    for rid in dup_ids:
        rows = voice.filter(pc.equal(voice.column("record_id"), rid)).to_pylist()
        assert len(rows) == 2 and rows[0] == rows[1]


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_text_only_defects_are_present_in_text_files(dataset_dir, fmt):
    path = dataset_dir[fmt]
    labels = read_table(path, "defects").to_pylist() if fmt == "csv" else [
        json.loads(line) for line in (path / "labels" / "defects.jsonl").read_text().splitlines()]
    by_code = Counter(r["defect"] for r in labels)
    assert by_code["wrong_type"] > 0
    wrong = {r["record_id"] for r in labels if r["defect"] == "wrong_type"}
    truncated = {r["record_id"] for r in labels if r["defect"] == "truncated_line"}
    checked_wrong = checked_truncated = 0
    for rt in RECORD_TYPES:
        for f in sorted((path / "cdr" / f"record_type={rt}").rglob(f"*.{fmt}")):
            lines = f.read_text().splitlines()
            if fmt == "csv":
                header = lines[0].split(",")
                numeric = [i for i, c in enumerate(header) if arrow_schema(RECORD_TYPES[rt]).field(c.strip('"')).type
                           in (pa.int32(), pa.int64(), pa.float64())]
                for line in lines[1:]:
                    cells = line.split(",")
                    if cells[0] in wrong:
                        assert any(not re.fullmatch(r"-?\d+(\.\d+)?", cells[i]) for i in numeric), line
                        checked_wrong += 1
                continue
            for line in lines:
                rid = line[14:33]  # '{"record_id":"' is 14 characters, ids are 19
                if rid in truncated:
                    with pytest.raises(json.JSONDecodeError):
                        json.loads(line)
                    checked_truncated += 1
                elif rid in wrong:
                    _, violation = coerce(json.loads(line), RECORD_TYPES[rt])
                    assert violation is not None and violation.code == "wrong_type", line
                    checked_wrong += 1
    assert checked_wrong == by_code["wrong_type"]
    assert checked_truncated == by_code["truncated_line"]
    assert fmt == "csv" or checked_truncated > 0


def test_every_scenario_entity_exists_and_shows_its_anomaly(dataset_dir):
    path = dataset_dir["parquet"]
    cdrs = _all_cdrs(path)
    subs = read_table(path, "subscribers")
    cells = read_table(path, "cells")
    scenarios = read_table(path, "scenarios").to_pylist()
    assert Counter(s["scenario"] for s in scenarios) == Counter(
        {k: SMALL["days"] for k in ("sim_box", "cell_outage", "traffic_surge", "data_spike", "imei_cloning",
                                    "impossible_travel", "wangiri")})

    def window(table, s, column, value):
        t = table.column("start_time")
        mask = pc.and_(pc.and_(pc.greater_equal(t, s["start_time"]), pc.less(t, s["end_time"])),
                       pc.equal(table.column(column), value))
        return table.filter(mask)

    for s in scenarios:
        hours = (s["end_time"] - s["start_time"]).total_seconds() / 3600
        e = s["entity_id"]
        if s["entity_type"] == "cell":
            assert e in cells.column("cell_id").to_pylist()
        elif s["entity_type"] == "imei":
            assert e in subs.column("imei").to_pylist()
        elif s["scenario"] != "wangiri":
            assert e in subs.column("msisdn").to_pylist()
        kind = s["scenario"]
        if kind == "sim_box":
            calls = window(cdrs["voice"], s, "served_msisdn", e).to_pylist()
            mo = [c for c in calls if c["direction"] == "MO"]
            assert len(mo) / hours >= 40 and len({c["other_party"] for c in mo}) >= 0.9 * len(mo)
            assert len(calls) - len(mo) <= 3
        elif kind == "cell_outage":
            calls = window(cdrs["voice"], s, "cell_id", e).column("call_result").to_pylist()
            bad = sum(r in ("failed", "dropped") for r in calls)
            assert len(calls) >= 5 and bad / len(calls) > 0.6
        elif kind == "traffic_surge":
            inside = window(cdrs["voice"], s, "cell_id", e).num_rows / hours
            all_day = cdrs["voice"].filter(pc.equal(cdrs["voice"].column("cell_id"), e)).num_rows / 48
            assert inside > 5 * all_day
        elif kind == "data_spike":
            total = pc.sum(window(cdrs["data"], s, "served_msisdn", e).column("bytes_downlink")).as_py()
            assert total > 15e9
        elif kind == "imei_cloning":
            imsis = set(window(cdrs["voice"], s, "served_imei", e).column("served_imsi").to_pylist())
            assert len(imsis) >= 2
        elif kind == "impossible_travel":
            rows = pa.concat_tables([window(cdrs[rt], s, "served_msisdn", e).select(["start_time", "cell_id"])
                                     for rt in ("voice", "sms", "data")]).to_pylist()
            assert len({r["cell_id"] for r in rows}) >= 2
            coords = {c["cell_id"]: (c["latitude"], c["longitude"]) for c in cells.to_pylist()}
            pts = [coords[r["cell_id"]] for r in rows]
            assert max(haversine_km(a[0], a[1], b[0], b[1]) for a in pts for b in pts) > 400
        elif kind == "wangiri":
            rings = window(cdrs["voice"], s, "other_party", e).to_pylist()
            mt = [r for r in rings if r["direction"] == "MT"]
            assert len({r["served_msisdn"] for r in mt}) / hours >= 80
            assert all(r["duration_s"] == 0 and r["call_result"] == "no_answer" for r in mt)
            assert any(r["direction"] == "MO" and r["call_result"] == "answered" for r in rings)


def _local_hours(table):
    hours = pc.hour(table.column("start_time").drop_null()).to_numpy()
    return (hours + PROFILE.timezone_offset_h) % 24


def test_night_traffic_is_far_below_daytime(dataset_dir):
    voice = read_table(dataset_dir["parquet"], "voice")
    by_hour = np.bincount(_local_hours(voice), minlength=24)
    assert by_hour[3] < 0.1 * by_hour[11]
    assert by_hour[10:20].mean() > 5 * by_hour[2:6].mean()


def test_new_years_eve_midnight_surge(dataset_dir):
    sms = read_table(dataset_dir["parquet"], "sms")
    t = sms.column("start_time").drop_null().to_numpy().astype("datetime64[us]")
    local = t + np.timedelta64(PROFILE.timezone_offset_h, "h")
    midnight = np.datetime64("2026-01-01T00:00")
    first_hour = ((local >= midnight) & (local < midnight + np.timedelta64(1, "h"))).sum()
    hour_before = ((local >= midnight - np.timedelta64(1, "h")) & (local < midnight)).sum()
    assert first_hour > 3 * hour_before


def test_call_durations_are_heavy_tailed_with_a_realistic_median(dataset_dir):
    voice = read_table(dataset_dir["parquet"], "voice").to_pylist()
    answered = np.array([r["duration_s"] for r in voice if r["call_result"] == "answered"
                         and r["duration_s"] is not None and 0 < r["duration_s"] < 86_400])
    median = np.median(answered)
    assert 60 <= median <= 120
    assert np.percentile(answered, 99) > 8 * median
    results = Counter(r["call_result"] for r in voice)
    assert 0.72 < results["answered"] / len(voice) < 0.86
    assert results["dropped"] > 0 and results["busy"] > 0


def test_data_volumes_depend_on_technology(dataset_dir):
    data = read_table(dataset_dir["parquet"], "data")
    ok = pc.and_(pc.greater(data.column("bytes_downlink"), 0), pc.greater(data.column("bytes_uplink"), 0))
    data = data.filter(ok)
    median = {}
    for tech in ("2G", "4G", "FTTH"):
        rows = data.filter(pc.equal(data.column("access_technology"), tech))
        median[tech] = np.median(rows.column("bytes_downlink").to_numpy())
    assert median["2G"] < median["4G"] < median["FTTH"]
    assert np.median(data.column("bytes_downlink").to_numpy()) > 4 * np.median(data.column("bytes_uplink").to_numpy())


def test_mobility_stays_near_home_and_a_few_percent_roam(dataset_dir):
    voice = read_table(dataset_dir["parquet"], "voice")
    roaming = pc.mean(voice.column("roaming").cast(pa.float64())).as_py()
    assert 0.005 < roaming < 0.06
    distinct_cells = voice.group_by("served_msisdn").aggregate([("cell_id", "count_distinct")])
    assert np.median(distinct_cells.column("cell_id_count_distinct").to_numpy()) <= 7


def test_parts_respect_chunk_rows(tmp_path):
    out = generate_dataset(GenerateOptions(out=tmp_path / "d", **dict(SMALL, days=1, chunk_rows=5000))).out
    import pyarrow.parquet as pq
    parts = sorted((out / "cdr" / "record_type=data").rglob("*.parquet"))
    sizes = [pq.ParquetFile(p).metadata.num_rows for p in parts]
    assert len(parts) > 3
    # Every part but the last holds at most chunk_rows baseline records (+ their duplicated defects).
    assert max(sizes[:-1]) <= 5000 * 1.05


def test_record_ids_are_consecutive_across_a_million():
    from cdr.identifiers import digits_matrix
    from generator.engine import record_ids

    start, n = 1_999_990, 25
    got = [bytes(row).decode() for row in record_ids("V20251231", start, n)]
    seq = np.arange(start, start + n)
    want = ["V20251231" + "".join(map(chr, d)) for d in digits_matrix(seq, 10)]
    assert got == want


def test_parts_merge_their_dictionaries_without_changing_values():
    from generator.arrow_util import DICT_TYPE, encoded, single_dictionaries

    base = pa.array(["a", "b", "c"])
    chunks = [
        encoded(np.array([0, 3, 1]), pa.array(["a", "b", "c", "x"])),  # base + a defect value
        encoded(np.array([2, 3, 0]), pa.array(["a", "b", "c", "y"]), np.array([True, False, True])),
        encoded(np.array([1, 2]), base),
        encoded(np.array([1, 0]), pa.array(["MO", "a"])),  # no common prefix
    ]
    table = pa.table({"c": pa.chunked_array(chunks, DICT_TYPE)})
    merged = single_dictionaries(table).column("c")
    dictionary = merged.chunks[0].dictionary
    assert all(c.dictionary.equals(dictionary) for c in merged.chunks)
    assert len(pc.unique(dictionary)) == len(dictionary)
    assert merged.cast(pa.string()).to_pylist() == table.column("c").cast(pa.string()).to_pylist()


def test_parquet_keeps_every_dictionary_column_dictionary_encoded(dataset_dir):
    """Identifiers, cells and categories are written as dictionary pages + indices, never
    decoded and rewritten plain (which happens when a part's chunks disagree on a dictionary,
    a dictionary repeats a value or exceeds the dictionary page limit); numbers are delta-packed."""
    import pyarrow.parquet as pq

    from generator.engine import generated_schema

    for record_type in RECORD_TYPES:
        wanted = {f.name for f in generated_schema(record_type) if pa.types.is_dictionary(f.type)}
        delta = {f.name for f in generated_schema(record_type) if pa.types.is_integer(f.type) or pa.types.is_timestamp(f.type)}
        for part in (dataset_dir["parquet"] / "cdr" / f"record_type={record_type}").rglob("*.parquet"):
            meta = pq.ParquetFile(part).metadata
            for g in range(meta.num_row_groups):
                for i in range(meta.num_columns):
                    column = meta.row_group(g).column(i)
                    if column.path_in_schema in wanted:
                        assert "RLE_DICTIONARY" in column.encodings, (part, column.path_in_schema)
                    if column.path_in_schema in delta:  # integers and times: bit-packed differences
                        assert "DELTA_BINARY_PACKED" in column.encodings, (part, column.path_in_schema)
