"""A valid CDR message as an event (streaming.flink.schema.EVENT_ROW), in Flink SQL over the
typed columns of streaming.flink.validation and the cell reference's columns."""

from __future__ import annotations

from cdr.profile import Profile

from streaming.flink.validation import typed_column as t

MOBILE_TECHNOLOGIES = ("2G", "3G", "4G", "5G")


def event_columns(profile: Profile) -> str:
    """SELECT-list of an event (after ``event_time``), from a checked message joined with the
    cell reference (``latitude``, ``longitude``, ``reach_km``; NULL for unknown cells)."""
    roaming = t("roaming")
    result, up, down = t("call_result"), t("bytes_uplink"), t("bytes_downlink")
    mobile = ", ".join(f"'{x}'" for x in MOBILE_TECHNOLOGIES)
    return ",\n  ".join([
        f"{t('record_type')} AS record_type",
        f"{t('served_msisdn')} AS msisdn",
        f"{t('served_imei')} AS imei",
        f"{t('other_party')} AS other_party",
        f"COALESCE(CHAR_LENGTH({t('other_party')}) > 0 AND {t('other_party')} NOT LIKE '{profile.country_code}%', FALSE)"
        " AS other_foreign",
        f"{t('direction')} AS direction",
        f"CAST({t('duration_s')} AS INT) AS duration_s",
        f"{result} AS call_result",
        f"COALESCE({result} = 'answered', FALSE) AS answered",
        f"COALESCE({result} IN ('failed', 'dropped'), FALSE) AS failed",
        f"CASE WHEN {up} IS NULL AND {down} IS NULL THEN CAST(NULL AS BIGINT)"
        f" ELSE COALESCE({up}, 0) + COALESCE({down}, 0) END AS total_bytes",
        f"{t('cell_id')} AS cell_id",
        f"NOT {roaming} AND {t('access_technology')} IN ({mobile}) AS mobile",
        # A roaming record's cell is abroad: no position.
        f"CASE WHEN {roaming} THEN CAST(NULL AS DOUBLE) ELSE latitude END AS latitude",
        f"CASE WHEN {roaming} THEN CAST(NULL AS DOUBLE) ELSE longitude END AS longitude",
        f"CASE WHEN {roaming} THEN CAST(NULL AS DOUBLE) ELSE reach_km END AS reach_km",
    ])
