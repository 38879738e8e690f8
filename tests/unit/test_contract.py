"""One contract, every engine: the same fields everywhere, and the docs generated from it."""

from __future__ import annotations

import json
import re

import pytest

from cdr.contract import ALL_TYPES, RECORD_TYPES, arrow_schema, flink_columns, json_schema, spark_schema
from cdr.contract_cli import DOC, SCHEMAS, render_markdown

REQUIRED_BY_PLATFORM = {
    "*": {"record_id", "record_type", "start_time", "served_msisdn", "served_imsi", "served_imei", "cell_id",
          "access_technology"},
    "voice": {"other_party", "duration_s", "call_result"},
    "sms": {"other_party"},
    "data": {"duration_s", "bytes_uplink", "bytes_downlink"},
    "voip": {"other_party", "duration_s"},
    "ims": {"other_party", "duration_s"},
    "subscribers": {"subscriber_id", "msisdn", "imsi", "imei", "plan", "line_type", "region", "segment",
                    "activation_date", "status"},
    "cells": {"cell_id", "latitude", "longitude", "region", "technology"},
}


@pytest.mark.parametrize("name", list(ALL_TYPES))
def test_every_engine_schema_has_the_same_fields_in_the_same_order(name):
    rt = ALL_TYPES[name]
    expected = rt.field_names
    assert arrow_schema(rt).names == expected
    assert [f.name for f in spark_schema(rt).fields] == expected
    assert re.findall(r"`(\w+)`", flink_columns(rt)) == expected
    assert list(json_schema(rt)["properties"]) == expected


@pytest.mark.parametrize("name", list(ALL_TYPES))
def test_columns_other_layers_rely_on_exist(name):
    wanted = REQUIRED_BY_PLATFORM[name] | (REQUIRED_BY_PLATFORM["*"] if name in RECORD_TYPES else set())
    assert wanted <= set(ALL_TYPES[name].field_names)


def test_call_results_are_the_five_the_platform_names():
    assert set(RECORD_TYPES["voice"].field("call_result").allowed) == {"answered", "busy", "no_answer", "failed", "dropped"}


def test_json_schema_pins_the_record_type_and_requires_mandatory_fields():
    schema = json_schema(RECORD_TYPES["data"])
    assert schema["properties"]["record_type"]["const"] == "data"
    assert {"record_id", "start_time", "bytes_uplink", "bytes_downlink"} <= set(schema["required"])
    assert "served_imsi" not in schema["required"]  # null on fixed lines


def test_generated_docs_are_up_to_date():
    assert DOC.read_text() == render_markdown(), "run `make docs`"
    for name, rt in ALL_TYPES.items():
        assert json.loads((SCHEMAS / f"{name}.json").read_text()) == json_schema(rt), "run `make docs`"
