-- Tables the speed layer writes in PostgreSQL (database cdr_serving). The Flink JDBC sink
-- upserts by primary key; it does not create tables, so `cdr stream start` applies this file.
-- Times are UTC, without time zone (the JDBC connector has no TIMESTAMP_LTZ for PostgreSQL).
CREATE TABLE IF NOT EXISTS alerts (
    alert_id     TEXT PRIMARY KEY,          -- SHA-256 of rule|entity|window start: replays upsert
    scenario     TEXT NOT NULL,             -- the generator's scenario name
    entity_type  TEXT NOT NULL,             -- msisdn | imei | cell
    entity_id    TEXT NOT NULL,             -- HMAC pseudonym (msisdn, imei) or raw cell id
    window_start TIMESTAMP NOT NULL,
    window_end   TIMESTAMP NOT NULL,
    severity     TEXT NOT NULL,
    metrics      JSONB NOT NULL,
    detected_at  TIMESTAMP NOT NULL         -- processing time, UTC
);
CREATE INDEX IF NOT EXISTS alerts_scenario_window ON alerts (scenario, window_start);

CREATE TABLE IF NOT EXISTS kpi_cell_minute (
    cell_id           TEXT NOT NULL,
    minute_start      TIMESTAMP NOT NULL,
    call_attempts     BIGINT NOT NULL,
    answered          BIGINT NOT NULL,
    dropped_or_failed BIGINT NOT NULL,
    sms               BIGINT NOT NULL,
    data_bytes        BIGINT NOT NULL,
    PRIMARY KEY (cell_id, minute_start)
);

CREATE TABLE IF NOT EXISTS kpi_service_minute (
    service           TEXT NOT NULL,
    minute_start      TIMESTAMP NOT NULL,
    records           BIGINT NOT NULL,
    answered          BIGINT NOT NULL,
    dropped_or_failed BIGINT NOT NULL,
    data_bytes        BIGINT NOT NULL,
    PRIMARY KEY (service, minute_start)
);

-- Valid records the detection job's per-minute windows dropped as late (their minute had closed:
-- the watermark was past it), counted every 10 s of processing time per event day and record type.
-- Appended, at least once: the reconciliation sums them (serving/reconcile.py).
CREATE TABLE IF NOT EXISTS late_records (
    counted_at  TIMESTAMP NOT NULL,         -- end of the 10 s in which they arrived (processing time, UTC)
    day         DATE NOT NULL,              -- the records' event day
    record_type TEXT NOT NULL,
    records     BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS late_records_day ON late_records (day, record_type);

-- The cell reference the detection job looks cells up in (`cdr stream start` loads it): position,
-- and reach_km, how far subscribers of the cell normally move (streaming.jobs.write_cells).
CREATE TABLE IF NOT EXISTS cell_reference (
    cell_id   TEXT PRIMARY KEY,
    latitude  DOUBLE PRECISION NOT NULL,
    longitude DOUBLE PRECISION NOT NULL,
    reach_km  DOUBLE PRECISION NOT NULL
);
