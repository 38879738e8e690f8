"""The CDR data contract: every record type and field of the platform, declared once.

Each engine gets its schema from here: ``arrow_schema`` (generator, files), ``spark_schema``
(batch layer), ``flink_columns`` (Flink SQL DDL) and ``json_schema`` (Kafka messages,
published in docs/schemas). ``docs/data-contract.md`` is generated from the same
declarations (``cdr contract docs``), so the documentation cannot drift from the code.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

import pyarrow as pa


class FieldType(str, Enum):
    STRING = "string"
    INT32 = "int32"
    INT64 = "int64"
    FLOAT64 = "float64"
    BOOL = "bool"
    DATE = "date"
    TIMESTAMP = "timestamp"  # UTC, microsecond precision


class Identifier(str, Enum):
    """Kinds of personal identifier: raw only in the raw zone, pseudonymised downstream."""

    MSISDN = "msisdn"
    IMSI = "imsi"
    IMEI = "imei"


@dataclass(frozen=True)
class Field:
    name: str
    type: FieldType
    description: str
    required: bool = False
    allowed: tuple[str, ...] | None = None
    ts32298: str | None = None  # equivalent 3GPP TS 32.298 CDR field, where one exists
    identifier: Identifier | None = None
    unit: str | None = None


@dataclass(frozen=True)
class RecordType:
    name: str
    description: str
    fields: tuple[Field, ...]

    @property
    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"{self.name} has no field {name!r}")

    @property
    def identifier_fields(self) -> list[Field]:
        return [f for f in self.fields if f.identifier is not None]


S, I32, I64, F64, B, D, TS = (
    FieldType.STRING,
    FieldType.INT32,
    FieldType.INT64,
    FieldType.FLOAT64,
    FieldType.BOOL,
    FieldType.DATE,
    FieldType.TIMESTAMP,
)

CDR_TYPES: tuple[str, ...] = ("voice", "sms", "data", "voip", "ims")
CALL_RESULTS = ("answered", "busy", "no_answer", "failed", "dropped")
DIRECTIONS = ("MO", "MT")
ACCESS_TECHNOLOGIES = ("2G", "3G", "4G", "5G", "WIFI", "FTTH", "ADSL", "LTE_HOME")
LINE_TYPES = ("mobile", "ftth", "adsl", "lte_home")
MOBILE_LINE_TYPES = ("mobile",)

_COMMON_CDR_FIELDS: tuple[Field, ...] = (
    Field("record_id", S, "Unique identifier of the record, stable across reruns of the generator.",
          required=True, ts32298="recordSequenceNumber (with the node id)"),
    Field("record_type", S, "Kind of CDR.", required=True, allowed=CDR_TYPES, ts32298="recordType"),
    Field("start_time", TS, "Start of the call, message or session, UTC.", required=True,
          ts32298="seizureTime / answerTime / eventTimeStamp"),
    Field("served_msisdn", S, "E.164 number of the served subscriber, digits without '+'.",
          required=True, ts32298="servedMSISDN", identifier=Identifier.MSISDN),
    Field("served_imsi", S, "IMSI of the served SIM (15 digits); null on fixed lines.",
          ts32298="servedIMSI", identifier=Identifier.IMSI),
    Field("served_imei", S, "IMEI of the handset (15 digits, Luhn check digit); null on fixed lines.",
          ts32298="servedIMEI", identifier=Identifier.IMEI),
    Field("cell_id", S, "Serving cell (mobile) or access node (fixed line); a visited network's "
          "cell when roaming.", required=True, ts32298="locationInformation / userLocationInformation"),
    Field("access_technology", S, "Radio or fixed access technology.", required=True,
          allowed=ACCESS_TECHNOLOGIES, ts32298="rATType"),
    Field("roaming", B, "True when the subscriber is served by a visited network abroad.",
          required=True),
    Field("visited_plmn", S, "MCC+MNC of the visited network when roaming, else null.",
          ts32298="servingNodePLMNIdentifier"),
)

_OTHER_PARTY = Field("other_party", S, "E.164 number of the other party, digits without '+'.",
                     required=True, ts32298="callingNumber / calledNumber",
                     identifier=Identifier.MSISDN)
_DIRECTION = Field("direction", S, "MO: originated by the served subscriber; MT: terminated.",
                   required=True, allowed=DIRECTIONS, ts32298="recordType (MOC/MTC)")
_DURATION = Field("duration_s", I32, "Duration in seconds (0 when a call was not answered).",
                  required=True, ts32298="callDuration / duration", unit="s")

VOICE = RecordType("voice", "Circuit-switched or VoLTE voice call leg.", _COMMON_CDR_FIELDS + (
    _OTHER_PARTY, _DIRECTION, _DURATION,
    Field("call_result", S, "Outcome of the call attempt.", required=True, allowed=CALL_RESULTS,
          ts32298="causeForTerm / diagnostics"),
))
SMS = RecordType("sms", "Short message sent or received.", _COMMON_CDR_FIELDS + (
    _OTHER_PARTY, _DIRECTION,
    Field("sms_status", S, "Delivery outcome.", required=True, allowed=("delivered", "failed"),
          ts32298="smsResult"),
    Field("message_length", I32, "Length of the message in characters.", unit="characters"),
))
DATA = RecordType("data", "Packet-data (or fixed broadband) session.", _COMMON_CDR_FIELDS + (
    _DURATION,
    Field("bytes_uplink", I64, "Bytes sent by the subscriber.", required=True,
          ts32298="dataVolumeUplink", unit="bytes"),
    Field("bytes_downlink", I64, "Bytes received by the subscriber.", required=True,
          ts32298="dataVolumeDownlink", unit="bytes"),
    Field("apn", S, "Access point name (mobile) or service (fixed).", ts32298="accessPointNameNI"),
))
VOIP = RecordType("voip", "Over-the-top or operator VoIP call.", _COMMON_CDR_FIELDS + (
    _OTHER_PARTY, _DIRECTION, _DURATION,
    Field("codec", S, "Voice codec.", allowed=("AMR-WB", "EVS", "OPUS", "G.711", "G.729")),
    Field("mos", F64, "Estimated mean opinion score, 1 (bad) to 5 (excellent).", unit="MOS"),
))
IMS = RecordType("ims", "IMS session (VoLTE, VoWiFi, video, RCS messaging).", _COMMON_CDR_FIELDS + (
    _OTHER_PARTY, _DURATION,
    Field("ims_service", S, "IMS service used.", required=True,
          allowed=("volte", "vowifi", "video", "rcs"), ts32298="serviceRequestTimeStamp / IMS-Charging-Identifier"),
    Field("sip_status", I32, "Final SIP response code of the session.", required=True,
          ts32298="sIP-Response-Code (causeForRecordClosing)"),
))

SUBSCRIBERS = RecordType("subscribers", "One row per subscription (mobile or fixed line).", (
    Field("subscriber_id", S, "Stable subscription identifier.", required=True),
    Field("msisdn", S, "E.164 number, digits without '+'.", required=True, identifier=Identifier.MSISDN,
          ts32298="servedMSISDN"),
    Field("imsi", S, "IMSI of the SIM (mobile lines); null on fixed lines.", identifier=Identifier.IMSI,
          ts32298="servedIMSI"),
    Field("imei", S, "IMEI of the current handset (mobile lines); null on fixed lines.",
          identifier=Identifier.IMEI, ts32298="servedIMEI"),
    Field("operator", S, "Operator of the subscription.", required=True),
    Field("line_type", S, "Kind of line.", required=True, allowed=LINE_TYPES),
    Field("plan", S, "Tariff plan code (see the operator profile).", required=True),
    Field("segment", S, "Customer segment.", required=True, allowed=("consumer", "youth", "business", "enterprise")),
    Field("payment", S, "Prepaid or postpaid.", required=True, allowed=("prepaid", "postpaid")),
    Field("region", S, "Home region (wilaya) name.", required=True),
    Field("region_code", I32, "Home region code (wilaya number).", required=True),
    Field("home_cell_id", S, "Cell or access node the subscriber is most often served by.", required=True),
    Field("activation_date", D, "Date the subscription was activated.", required=True),
    Field("status", S, "Subscription status.", required=True, allowed=("active", "suspended", "churned")),
))

CELLS = RecordType("cells", "Radio cells (mobile) and access nodes (fixed lines).", (
    Field("cell_id", S, "Identifier: MCC-MNC-site-sector for radio cells, region-node for access nodes.",
          required=True),
    Field("operator", S, "Operator of the cell or node.", required=True),
    Field("latitude", F64, "WGS84 latitude.", required=True, unit="degrees"),
    Field("longitude", F64, "WGS84 longitude.", required=True, unit="degrees"),
    Field("region", S, "Region (wilaya) name.", required=True),
    Field("region_code", I32, "Region code (wilaya number).", required=True),
    Field("technology", S, "Highest technology of the cell or node.", required=True,
          allowed=ACCESS_TECHNOLOGIES),
))

RECORD_TYPES: dict[str, RecordType] = {rt.name: rt for rt in (VOICE, SMS, DATA, VOIP, IMS)}
REFERENCE_TYPES: dict[str, RecordType] = {rt.name: rt for rt in (SUBSCRIBERS, CELLS)}
ALL_TYPES: dict[str, RecordType] = {**RECORD_TYPES, **REFERENCE_TYPES}

# Anomaly scenarios: the generator injects them, the batch and speed layers detect them under
# the same names, and scoring matches detections to labels by scenario, entity and window.
SCENARIOS: tuple[str, ...] = (
    "sim_box", "cell_outage", "traffic_surge", "data_spike", "imei_cloning", "impossible_travel", "wangiri",
)
SCENARIO_ENTITY: dict[str, str] = {
    "sim_box": "msisdn", "cell_outage": "cell", "traffic_surge": "cell", "data_spike": "msisdn",
    "imei_cloning": "imei", "impossible_travel": "msisdn", "wangiri": "msisdn",
}

# Labels written beside every generated dataset (ground truth for scoring).
DEFECT_LABELS = RecordType("defects", "One row per injected data-quality defect.", (
    Field("record_id", S, "The defective record.", required=True),
    Field("record_type", S, "Its record type.", required=True, allowed=CDR_TYPES),
    Field("defect", S, "Defect code (see docs/data-contract.md#defect-codes).", required=True),
))
SCENARIO_LABELS = RecordType("scenarios", "One row per injected anomaly scenario.", (
    Field("scenario_id", S, "Unique scenario instance id.", required=True),
    Field("scenario", S, "Scenario type.", required=True, allowed=SCENARIOS),
    Field("entity_type", S, "msisdn, imei or cell.", required=True, allowed=("msisdn", "imei", "cell")),
    Field("entity_id", S, "Raw MSISDN, IMEI or cell id of the anomalous entity.", required=True),
    Field("start_time", TS, "Start of the anomaly, UTC.", required=True),
    Field("end_time", TS, "End of the anomaly, UTC.", required=True),
))
LABEL_TYPES: dict[str, RecordType] = {"defects": DEFECT_LABELS, "scenarios": SCENARIO_LABELS}


def record_type(name: str) -> RecordType:
    try:
        return {**ALL_TYPES, **LABEL_TYPES}[name]
    except KeyError:
        raise KeyError(f"unknown record type {name!r}; known: {', '.join(ALL_TYPES)}") from None


# --- engine schemas ---------------------------------------------------------------------------

_ARROW = {
    S: pa.string(), I32: pa.int32(), I64: pa.int64(), F64: pa.float64(), B: pa.bool_(),
    D: pa.date32(), TS: pa.timestamp("us", tz="UTC"),
}
_FLINK = {
    S: "STRING", I32: "INT", I64: "BIGINT", F64: "DOUBLE", B: "BOOLEAN", D: "DATE",
    TS: "TIMESTAMP_LTZ(3)",
}
_JSON = {
    S: {"type": "string"}, I32: {"type": "integer"}, I64: {"type": "integer"},
    F64: {"type": "number"}, B: {"type": "boolean"}, D: {"type": "string", "format": "date"},
    TS: {"type": "string", "format": "date-time"},
}


def arrow_schema(rt: RecordType) -> pa.Schema:
    """All fields nullable: files as operators deliver them may lack anything; validation decides."""
    return pa.schema([pa.field(f.name, _ARROW[f.type]) for f in rt.fields])


def spark_schema(rt: RecordType) -> Any:
    """A pyspark StructType (pyspark imported here so the contract has no hard Spark dependency)."""
    from pyspark.sql import types as T

    spark_types = {
        S: T.StringType(), I32: T.IntegerType(), I64: T.LongType(), F64: T.DoubleType(),
        B: T.BooleanType(), D: T.DateType(), TS: T.TimestampType(),
    }
    return T.StructType([T.StructField(f.name, spark_types[f.type], True) for f in rt.fields])


def flink_columns(rt: RecordType) -> str:
    """Column list for a Flink SQL ``CREATE TABLE`` (all nullable: validation decides, not the parser)."""
    return ",\n".join(f"  `{f.name}` {_FLINK[f.type]}" for f in rt.fields)


def json_schema(rt: RecordType) -> dict[str, Any]:
    props: dict[str, Any] = {}
    for f in rt.fields:
        prop = dict(_JSON[f.type], description=f.description)
        if f.allowed:
            prop["enum"] = list(f.allowed)
        if not f.required:
            prop = {"anyOf": [prop, {"type": "null"}], "description": f.description}
        props[f.name] = prop
    if rt.name in RECORD_TYPES:
        props["record_type"]["const"] = rt.name
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://cdr-platform.example/schemas/{rt.name}.json",
        "title": rt.name,
        "description": rt.description,
        "type": "object",
        "properties": props,
        "required": [f.name for f in rt.fields if f.required],
        "additionalProperties": False,
    }
