"""Spark's HMAC equals the shared Python pseudonym, and the key never shows in a plan."""

from __future__ import annotations

import pytest

from batch.pseudonymise import pads_frame, pseudonymise_columns
from batch.testing import assert_frames_equal, spark  # noqa: F401  (spark: session-scoped fixture)
from cdr.pseudonym import DEVELOPMENT_KEY, hmac_pads, pseudonymise

pytestmark = pytest.mark.spark
KEY = b"k" * 40


def test_spark_pseudonyms_equal_the_shared_function(spark):
    values = [("213661234567", "603011234567890", "a"), ("+213771234567", None, "b"), (" 490154203237518 ", "x", "c")]
    df = spark.createDataFrame(values, "msisdn string, imsi string, other string")
    out = pseudonymise_columns(df, ["msisdn", "imsi"], pads_frame(spark, KEY))
    expected = spark.createDataFrame(
        [(pseudonymise(m, KEY), pseudonymise(i, KEY), o) for m, i, o in values],
        "msisdn string, imsi string, other string")
    assert_frames_equal(out, expected)
    assert out.first()["msisdn"] != pseudonymise("213661234567", DEVELOPMENT_KEY)


def test_the_key_is_not_in_the_query_plan(spark):
    df = spark.createDataFrame([("213661234567",)], "msisdn string")
    out = pseudonymise_columns(df, ["msisdn"], pads_frame(spark, KEY))
    plan = out._jdf.queryExecution().toString().upper().replace(",", "").replace(" ", "")
    ipad, opad = hmac_pads(KEY)
    for secret in (KEY, ipad, opad):
        assert secret.hex().upper() not in plan  # neither as hex nor as Spark's [5D,5D,...] binary rendering
