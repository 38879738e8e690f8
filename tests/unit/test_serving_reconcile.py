"""The layer reconciliation's verdicts (serving.reconcile.compare) on inline counts."""

from __future__ import annotations

import datetime as dt

from serving.reconcile import BatchCounts, SpeedCounts, compare

D = dt.date(2026, 1, 5)


def _one(speed, batch, closed=True, tolerance=0.0):
    [row] = compare(D, {"voice": speed}, {"voice": batch}, closed, tolerance)
    return row


def test_the_stream_counts_clean_records_and_the_duplicates_the_batch_removed():
    row = _one(SpeedCounts(103, 50, 3, 0), BatchCounts(110, 100, 7, 3, 48, 3, 0))
    assert (row.expected_speed, row.unexplained, row.not_yet_landed, row.verdict) == (103, 0, 0, "balanced")
    # with duplicates the measures are reported, not judged (the copies' measures are not kept)
    assert row.measures["answered"] == {"speed": 50, "batch": 48, "difference": 2, "compared": False}


def test_a_difference_nothing_explains_is_an_error_beyond_the_tolerance():
    assert _one(SpeedCounts(95), BatchCounts(100, 100, 0, 0)).verdict == "unexplained difference"
    assert _one(SpeedCounts(105), BatchCounts(100, 100, 0, 0)).unexplained == 5
    within = _one(SpeedCounts(99), BatchCounts(100, 100, 0, 0), tolerance=0.01)
    assert (within.verdict, within.failed) == ("within tolerance", False)
    assert _one(SpeedCounts(98), BatchCounts(100, 100, 0, 0), tolerance=0.01).failed


def test_a_stream_that_has_not_closed_the_day_explains_a_shortfall_as_not_yet_landed():
    row = _one(SpeedCounts(60), BatchCounts(100, 100, 0, 0), closed=False)
    assert (row.not_yet_landed, row.unexplained, row.verdict, row.failed) == (40, 0, "incomplete", False)
    # ...but not an excess
    assert _one(SpeedCounts(120), BatchCounts(100, 100, 0, 0), closed=False).failed


def test_measures_are_judged_when_nothing_was_deduplicated():
    same = _one(SpeedCounts(10, 4, 1, 500), BatchCounts(10, 10, 0, 0, 4, 1, 500))
    assert same.verdict == "balanced"
    bytes_off = _one(SpeedCounts(10, 4, 1, 400), BatchCounts(10, 10, 0, 0, 4, 1, 500))
    assert bytes_off.failed and bytes_off.measures["data_bytes"]["difference"] == -100


def test_a_record_type_only_one_layer_counted_is_reported():
    rows = compare(D, {"voice": SpeedCounts(5)}, {"sms": BatchCounts(3, 3, 0, 0)}, True, 0.0)
    assert [(r.record_type, r.speed.records, r.expected_speed, r.verdict) for r in rows] == [
        ("sms", 0, 3, "unexplained difference"), ("voice", 5, 0, "unexplained difference")]


def test_records_the_stream_dropped_as_late_are_explained_and_its_measures_not_judged():
    row = _one(SpeedCounts(90, 40, 1, 400, late=10), BatchCounts(100, 100, 0, 0, 44, 1, 500))
    assert (row.expected_speed, row.unexplained, row.verdict) == (100, 0, "balanced")
    assert not row.measures["data_bytes"]["compared"]
    # a late count that explains more than the shortfall is itself a difference
    assert _one(SpeedCounts(95, late=10), BatchCounts(100, 100, 0, 0)).unexplained == 5
