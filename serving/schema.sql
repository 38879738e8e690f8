-- The serving layer (docs/serving.md): schema `serving` of the serving database, beside the speed
-- layer's tables (streaming/serving.sql, applied first). Idempotent: applied by `cdr serving`,
-- `cdr stream start` and the batch's publish step. Times are UTC, without time zone, like the
-- speed layer's.
CREATE SCHEMA IF NOT EXISTS serving;

-- Which days the batch has published, and when. Batch rows exist only for the days listed here,
-- written in the same transaction (serving.store.swap_day): the merged views switch a day from
-- the speed layer to the batch atomically.
CREATE TABLE IF NOT EXISTS serving.published_day (
    day          DATE PRIMARY KEY,
    published_at TIMESTAMP NOT NULL,
    batch_rows   JSONB NOT NULL            -- rows per batch view of the day
);

-- Batch views: one day's rows, replaced as a whole. `day` is the day the records were landed for.
CREATE TABLE IF NOT EXISTS serving.batch_cell_hour (
    day               DATE NOT NULL,
    hour_start        TIMESTAMP NOT NULL,
    cell_id           TEXT NOT NULL,
    call_attempts     BIGINT NOT NULL,
    answered          BIGINT NOT NULL,
    dropped_or_failed BIGINT NOT NULL,
    sms               BIGINT NOT NULL,
    data_bytes        BIGINT NOT NULL,
    PRIMARY KEY (day, hour_start, cell_id)
);
CREATE INDEX IF NOT EXISTS batch_cell_hour_hour ON serving.batch_cell_hour (hour_start);
CREATE INDEX IF NOT EXISTS batch_cell_hour_cell ON serving.batch_cell_hour (cell_id, hour_start);

CREATE TABLE IF NOT EXISTS serving.batch_service_hour (
    day               DATE NOT NULL,
    hour_start        TIMESTAMP NOT NULL,
    service           TEXT NOT NULL,
    records           BIGINT NOT NULL,
    answered          BIGINT NOT NULL,
    dropped_or_failed BIGINT NOT NULL,
    data_bytes        BIGINT NOT NULL,
    duration_s        BIGINT NOT NULL,
    rated_charge_dzd  NUMERIC(16, 2) NOT NULL,
    PRIMARY KEY (day, hour_start, service)
);
CREATE INDEX IF NOT EXISTS batch_service_hour_hour ON serving.batch_service_hour (hour_start);

CREATE TABLE IF NOT EXISTS serving.batch_subscriber_day (
    day              DATE NOT NULL,
    subscriber_key   TEXT NOT NULL,          -- the shared keyed pseudonym of the MSISDN
    plan             TEXT,
    calls_out        BIGINT NOT NULL,
    calls_in         BIGINT NOT NULL,
    call_seconds     BIGINT NOT NULL,
    sms_out          BIGINT NOT NULL,
    data_sessions    BIGINT NOT NULL,
    data_bytes       BIGINT NOT NULL,
    roaming_events   BIGINT NOT NULL,
    rated_charge_dzd NUMERIC(16, 2) NOT NULL,
    PRIMARY KEY (day, subscriber_key)
);

CREATE TABLE IF NOT EXISTS serving.batch_revenue_day (
    day              DATE NOT NULL,
    service          TEXT NOT NULL,
    billing_category TEXT NOT NULL,
    plan             TEXT NOT NULL,          -- 'unknown' when the subscriber has no plan that day
                                             -- billing_category 'unrated': a service the tariffs do not price
    events           BIGINT NOT NULL,
    units            DOUBLE PRECISION NOT NULL,
    rated_charge_dzd NUMERIC(16, 2) NOT NULL,
    PRIMARY KEY (day, service, billing_category, plan)
);

CREATE TABLE IF NOT EXISTS serving.batch_anomalies (
    day          DATE NOT NULL,
    scenario     TEXT NOT NULL,
    entity_type  TEXT NOT NULL,
    entity_id    TEXT NOT NULL,
    window_start TIMESTAMP NOT NULL,
    window_end   TIMESTAMP NOT NULL,
    score        DOUBLE PRECISION NOT NULL,
    method       TEXT NOT NULL,
    PRIMARY KEY (day, scenario, entity_id)
);
CREATE INDEX IF NOT EXISTS batch_anomalies_entity ON serving.batch_anomalies (scenario, entity_id);

-- The batch's own accounting of the day (cdr_ops.reconciliation): what the layer reconciliation
-- explains differences with.
CREATE TABLE IF NOT EXISTS serving.batch_records_day (
    day            DATE NOT NULL,
    record_type    TEXT NOT NULL,
    records_in     BIGINT NOT NULL,
    clean          BIGINT NOT NULL,
    quarantined    BIGINT NOT NULL,
    duplicates     BIGINT NOT NULL,
    files_rejected BIGINT NOT NULL,
    PRIMARY KEY (day, record_type)
);

-- Rollups of a published day, for questions that sum every cell of a range (the 20 worst cells of
-- a week, the network per hour): computed from the day's batch_cell_hour in the transaction that
-- publishes it (serving.roll_up_batch_day), so they switch with the day. Their grain is the hour's
-- day, like the speed side's: a landed day's few records of the day before get a row of their own.
CREATE TABLE IF NOT EXISTS serving.batch_cell_day (
    day               DATE NOT NULL,         -- landed (the publication's day)
    traffic_day       DATE NOT NULL,         -- the day of the records' hours
    cell_id           TEXT NOT NULL,
    call_attempts     BIGINT NOT NULL,
    answered          BIGINT NOT NULL,
    dropped_or_failed BIGINT NOT NULL,
    sms               BIGINT NOT NULL,
    data_bytes        BIGINT NOT NULL,
    PRIMARY KEY (day, traffic_day, cell_id)
);

CREATE TABLE IF NOT EXISTS serving.batch_network_hour (
    day               DATE NOT NULL,
    hour_start        TIMESTAMP NOT NULL,
    call_attempts     BIGINT NOT NULL,
    answered          BIGINT NOT NULL,
    dropped_or_failed BIGINT NOT NULL,
    sms               BIGINT NOT NULL,
    data_bytes        BIGINT NOT NULL,
    PRIMARY KEY (day, hour_start)
);

CREATE OR REPLACE FUNCTION serving.roll_up_batch_day(d DATE) RETURNS VOID LANGUAGE sql AS $$
    DELETE FROM serving.batch_cell_day WHERE day = d;
    INSERT INTO serving.batch_cell_day
    SELECT day, hour_start::DATE, cell_id, sum(call_attempts), sum(answered), sum(dropped_or_failed), sum(sms),
           sum(data_bytes)
      FROM serving.batch_cell_hour WHERE day = d GROUP BY day, hour_start::DATE, cell_id;
    DELETE FROM serving.batch_network_hour WHERE day = d;
    INSERT INTO serving.batch_network_hour
    SELECT day, hour_start, sum(call_attempts), sum(answered), sum(dropped_or_failed), sum(sms), sum(data_bytes)
      FROM serving.batch_cell_hour WHERE day = d GROUP BY day, hour_start;
$$;

-- Days published before the rollups existed get theirs once.
SELECT serving.roll_up_batch_day(p.day) FROM serving.published_day p
 WHERE NOT EXISTS (SELECT 1 FROM serving.batch_network_hour n WHERE n.day = p.day)
   AND EXISTS (SELECT 1 FROM serving.batch_cell_hour b WHERE b.day = p.day);

-- Speed views at the batch's grain, kept by triggers on the speed layer's per-minute tables: each
-- upsert of a minute adds its difference to its hour, so the merged views read hours, not minutes.
CREATE TABLE IF NOT EXISTS serving.speed_cell_hour (
    hour_start        TIMESTAMP NOT NULL,
    cell_id           TEXT NOT NULL,
    call_attempts     BIGINT NOT NULL,
    answered          BIGINT NOT NULL,
    dropped_or_failed BIGINT NOT NULL,
    sms               BIGINT NOT NULL,
    data_bytes        BIGINT NOT NULL,
    minutes           INT NOT NULL,          -- minutes of the hour the stream has closed
    updated_at        TIMESTAMP NOT NULL,
    PRIMARY KEY (hour_start, cell_id)
);
CREATE INDEX IF NOT EXISTS speed_cell_hour_cell ON serving.speed_cell_hour (cell_id, hour_start);

-- The speed layer's cell days, kept by the same trigger as its cell hours. No network-hour table on
-- this side: every cell's minutes would update one row per hour from concurrent sink transactions
-- (lock waits, deadlocks); the speed layer holds a day or two, summed when read.
CREATE TABLE IF NOT EXISTS serving.speed_cell_day (
    day               DATE NOT NULL,
    cell_id           TEXT NOT NULL,
    call_attempts     BIGINT NOT NULL,
    answered          BIGINT NOT NULL,
    dropped_or_failed BIGINT NOT NULL,
    sms               BIGINT NOT NULL,
    data_bytes        BIGINT NOT NULL,
    minutes           INT NOT NULL,          -- minutes of the day the stream has closed for the cell
    updated_at        TIMESTAMP NOT NULL,
    PRIMARY KEY (day, cell_id)
);

CREATE TABLE IF NOT EXISTS serving.speed_service_hour (
    hour_start        TIMESTAMP NOT NULL,
    service           TEXT NOT NULL,
    records           BIGINT NOT NULL,
    answered          BIGINT NOT NULL,
    dropped_or_failed BIGINT NOT NULL,
    data_bytes        BIGINT NOT NULL,
    minutes           INT NOT NULL,
    updated_at        TIMESTAMP NOT NULL,
    PRIMARY KEY (hour_start, service)
);

CREATE OR REPLACE FUNCTION serving.roll_cell_minute() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    sign INT := CASE WHEN TG_OP = 'DELETE' THEN -1 ELSE 1 END;
    r    kpi_cell_minute := CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
BEGIN
    IF TG_OP = 'UPDATE' THEN   -- the new minute minus the old one
        r.call_attempts := NEW.call_attempts - OLD.call_attempts;
        r.answered := NEW.answered - OLD.answered;
        r.dropped_or_failed := NEW.dropped_or_failed - OLD.dropped_or_failed;
        r.sms := NEW.sms - OLD.sms;
        r.data_bytes := NEW.data_bytes - OLD.data_bytes;
    END IF;
    INSERT INTO serving.speed_cell_hour AS h VALUES (
        date_trunc('hour', r.minute_start), r.cell_id, sign * r.call_attempts, sign * r.answered,
        sign * r.dropped_or_failed, sign * r.sms, sign * r.data_bytes,
        CASE TG_OP WHEN 'INSERT' THEN 1 WHEN 'DELETE' THEN -1 ELSE 0 END, localtimestamp)
    ON CONFLICT (hour_start, cell_id) DO UPDATE SET
        call_attempts = h.call_attempts + EXCLUDED.call_attempts, answered = h.answered + EXCLUDED.answered,
        dropped_or_failed = h.dropped_or_failed + EXCLUDED.dropped_or_failed, sms = h.sms + EXCLUDED.sms,
        data_bytes = h.data_bytes + EXCLUDED.data_bytes, minutes = h.minutes + EXCLUDED.minutes,
        updated_at = EXCLUDED.updated_at;
    INSERT INTO serving.speed_cell_day AS d VALUES (
        r.minute_start::DATE, r.cell_id, sign * r.call_attempts, sign * r.answered,
        sign * r.dropped_or_failed, sign * r.sms, sign * r.data_bytes,
        CASE TG_OP WHEN 'INSERT' THEN 1 WHEN 'DELETE' THEN -1 ELSE 0 END, localtimestamp)
    ON CONFLICT (day, cell_id) DO UPDATE SET
        call_attempts = d.call_attempts + EXCLUDED.call_attempts, answered = d.answered + EXCLUDED.answered,
        dropped_or_failed = d.dropped_or_failed + EXCLUDED.dropped_or_failed, sms = d.sms + EXCLUDED.sms,
        data_bytes = d.data_bytes + EXCLUDED.data_bytes, minutes = d.minutes + EXCLUDED.minutes,
        updated_at = EXCLUDED.updated_at;
    IF TG_OP = 'DELETE' THEN   -- the hour's (the day's) last minute gone: so is the hour (the day)
        DELETE FROM serving.speed_cell_hour
         WHERE hour_start = date_trunc('hour', r.minute_start) AND cell_id = r.cell_id AND minutes <= 0;
        DELETE FROM serving.speed_cell_day
         WHERE day = r.minute_start::DATE AND cell_id = r.cell_id AND minutes <= 0;
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION serving.roll_service_minute() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    sign INT := CASE WHEN TG_OP = 'DELETE' THEN -1 ELSE 1 END;
    r    kpi_service_minute := CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
BEGIN
    IF TG_OP = 'UPDATE' THEN
        r.records := NEW.records - OLD.records;
        r.answered := NEW.answered - OLD.answered;
        r.dropped_or_failed := NEW.dropped_or_failed - OLD.dropped_or_failed;
        r.data_bytes := NEW.data_bytes - OLD.data_bytes;
    END IF;
    INSERT INTO serving.speed_service_hour AS h VALUES (
        date_trunc('hour', r.minute_start), r.service, sign * r.records, sign * r.answered,
        sign * r.dropped_or_failed, sign * r.data_bytes,
        CASE TG_OP WHEN 'INSERT' THEN 1 WHEN 'DELETE' THEN -1 ELSE 0 END, localtimestamp)
    ON CONFLICT (hour_start, service) DO UPDATE SET
        records = h.records + EXCLUDED.records, answered = h.answered + EXCLUDED.answered,
        dropped_or_failed = h.dropped_or_failed + EXCLUDED.dropped_or_failed,
        data_bytes = h.data_bytes + EXCLUDED.data_bytes, minutes = h.minutes + EXCLUDED.minutes,
        updated_at = EXCLUDED.updated_at;
    IF TG_OP = 'DELETE' THEN   -- the hour's last minute gone: so is the hour
        DELETE FROM serving.speed_service_hour
         WHERE hour_start = date_trunc('hour', r.minute_start) AND service = r.service AND minutes <= 0;
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION serving.truncate_speed_hours() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'kpi_cell_minute' THEN
        TRUNCATE serving.speed_cell_hour, serving.speed_cell_day;
    ELSE
        TRUNCATE serving.speed_service_hour;
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER roll_into_speed_cell_hour AFTER INSERT OR UPDATE OR DELETE ON kpi_cell_minute
    FOR EACH ROW EXECUTE FUNCTION serving.roll_cell_minute();
CREATE OR REPLACE TRIGGER roll_into_speed_service_hour AFTER INSERT OR UPDATE OR DELETE ON kpi_service_minute
    FOR EACH ROW EXECUTE FUNCTION serving.roll_service_minute();
CREATE OR REPLACE TRIGGER truncate_speed_cell_hour AFTER TRUNCATE ON kpi_cell_minute
    FOR EACH STATEMENT EXECUTE FUNCTION serving.truncate_speed_hours();
CREATE OR REPLACE TRIGGER truncate_speed_service_hour AFTER TRUNCATE ON kpi_service_minute
    FOR EACH STATEMENT EXECUTE FUNCTION serving.truncate_speed_hours();

-- Merged views: for each day, the batch's rows if the day is published, else the speed layer's.
-- One statement reads one snapshot, so a query running while a day is switched over sees the day
-- from one layer or the other, never both and never neither.
CREATE OR REPLACE VIEW serving.cell_hour AS
SELECT b.hour_start, b.cell_id, b.call_attempts, b.answered, b.dropped_or_failed, b.sms, b.data_bytes,
       'batch'::TEXT AS source, p.published_at AS source_time
  FROM serving.batch_cell_hour b JOIN serving.published_day p ON p.day = b.day
UNION ALL
SELECT s.hour_start, s.cell_id, s.call_attempts, s.answered, s.dropped_or_failed, s.sms, s.data_bytes,
       'speed'::TEXT, s.updated_at
  FROM serving.speed_cell_hour s
 WHERE NOT EXISTS (SELECT 1 FROM serving.published_day p WHERE p.day = s.hour_start::DATE);

CREATE OR REPLACE VIEW serving.service_hour AS
SELECT b.hour_start, b.service, b.records, b.answered, b.dropped_or_failed, b.data_bytes,
       b.duration_s, b.rated_charge_dzd, 'batch'::TEXT AS source, p.published_at AS source_time
  FROM serving.batch_service_hour b JOIN serving.published_day p ON p.day = b.day
UNION ALL
SELECT s.hour_start, s.service, s.records, s.answered, s.dropped_or_failed, s.data_bytes,
       NULL::BIGINT, NULL::NUMERIC, 'speed'::TEXT, s.updated_at   -- the stream has no durations, no prices
  FROM serving.speed_service_hour s
 WHERE NOT EXISTS (SELECT 1 FROM serving.published_day p WHERE p.day = s.hour_start::DATE);

-- Rollups merged the same way: per day and cell, and per hour of the whole network. Each equals the
-- sum of serving.cell_hour at its grain (`day` is the day of the hours), read from far fewer rows.
CREATE OR REPLACE VIEW serving.cell_day AS
SELECT b.traffic_day AS day, b.cell_id, b.call_attempts, b.answered, b.dropped_or_failed, b.sms, b.data_bytes,
       'batch'::TEXT AS source, p.published_at AS source_time
  FROM serving.batch_cell_day b JOIN serving.published_day p ON p.day = b.day
UNION ALL
SELECT s.day, s.cell_id, s.call_attempts, s.answered, s.dropped_or_failed, s.sms, s.data_bytes,
       'speed'::TEXT, s.updated_at
  FROM serving.speed_cell_day s
 WHERE NOT EXISTS (SELECT 1 FROM serving.published_day p WHERE p.day = s.day);

CREATE OR REPLACE VIEW serving.network_hour AS
SELECT b.hour_start, sum(b.call_attempts)::BIGINT AS call_attempts, sum(b.answered)::BIGINT AS answered,
       sum(b.dropped_or_failed)::BIGINT AS dropped_or_failed, sum(b.sms)::BIGINT AS sms,
       sum(b.data_bytes)::BIGINT AS data_bytes, 'batch'::TEXT AS source, max(p.published_at) AS source_time
  FROM serving.batch_network_hour b JOIN serving.published_day p ON p.day = b.day
 GROUP BY b.hour_start   -- an hour's records landed on two days (a few late ones): one row
UNION ALL
SELECT s.hour_start, sum(s.call_attempts)::BIGINT, sum(s.answered)::BIGINT,
       sum(s.dropped_or_failed)::BIGINT, sum(s.sms)::BIGINT, sum(s.data_bytes)::BIGINT, 'speed'::TEXT,
       max(s.updated_at)
  FROM serving.speed_cell_hour s
 WHERE NOT EXISTS (SELECT 1 FROM serving.published_day p WHERE p.day = s.hour_start::DATE)
 GROUP BY s.hour_start;

-- The latest hour the merged views hold (the max of serving.cell_hour's hours), from an index and
-- the rollup instead of a scan of every cell-hour: dashboards anchor their seven days on it.
CREATE OR REPLACE VIEW serving.latest_hour AS
SELECT GREATEST(
    (SELECT max(b.hour_start) FROM serving.batch_network_hour b JOIN serving.published_day p ON p.day = b.day),
    (SELECT max(s.hour_start) FROM serving.speed_cell_hour s
      WHERE NOT EXISTS (SELECT 1 FROM serving.published_day p WHERE p.day = s.hour_start::DATE))) AS hour_start;

-- Subscriber days and revenue come from the batch only (the stream keeps no per-subscriber state
-- and rates nothing): the views say so in `source`.
CREATE OR REPLACE VIEW serving.subscriber_day AS
SELECT b.*, 'batch'::TEXT AS source, p.published_at AS source_time
  FROM serving.batch_subscriber_day b JOIN serving.published_day p ON p.day = b.day;

CREATE OR REPLACE VIEW serving.revenue_day AS
SELECT b.*, 'batch'::TEXT AS source, p.published_at AS source_time
  FROM serving.batch_revenue_day b JOIN serving.published_day p ON p.day = b.day;

-- Where each layer stands: the days published, the batch complete through (the last day of the
-- first unbroken run of published days ending at the latest), and how far the stream has closed.
CREATE OR REPLACE VIEW serving.layer_status AS
WITH days AS (SELECT day, day - (ROW_NUMBER() OVER (ORDER BY day))::INT AS run FROM serving.published_day)
SELECT (SELECT min(day) FROM serving.published_day) AS batch_first_day,
       (SELECT max(day) FROM days WHERE run = (SELECT run FROM days ORDER BY day DESC LIMIT 1))
           AS batch_complete_through,
       (SELECT count(*) FROM serving.published_day) AS days_published,
       (SELECT max(published_at) FROM serving.published_day) AS last_published_at,
       (SELECT max(minute_start) + INTERVAL '1 minute' FROM kpi_service_minute) AS speed_closed_through;

-- Incidents: every stream alert and every batch anomaly, one row per scenario, entity and day;
-- a stream group and a batch anomaly with overlapping windows are one incident.
CREATE OR REPLACE VIEW serving.incidents AS
WITH stream AS (
    SELECT scenario, entity_type, entity_id, window_start::DATE AS day, min(window_start) AS window_start,
           max(window_end) AS window_end, count(*) AS alerts, min(detected_at) AS detected_at,
           -- the alert's time after its window's end, for a live stream; a replay of past days (event
           -- time a day or more from the wall clock) has none that means anything
           min(CASE WHEN abs(EXTRACT(EPOCH FROM detected_at - window_end)) < 86400
                    THEN detected_at - window_end END) AS detection_delay,
           max(severity) AS severity
      FROM alerts GROUP BY scenario, entity_type, entity_id, window_start::DATE
), matched AS (
    SELECT s.*, b.window_start AS batch_window_start, b.window_end AS batch_window_end, b.score AS batch_score,
           b.method AS batch_method, p.published_at
      FROM stream s
      LEFT JOIN serving.batch_anomalies b
        ON b.scenario = s.scenario AND b.entity_id = s.entity_id
       AND b.window_start <= s.window_end AND s.window_start <= b.window_end
      LEFT JOIN serving.published_day p ON p.day = s.day
)
SELECT scenario, entity_type, entity_id, day, LEAST(window_start, batch_window_start) AS window_start,
       GREATEST(window_end, batch_window_end) AS window_end, TRUE AS seen_by_stream,
       batch_score IS NOT NULL AS confirmed_by_batch,
       CASE WHEN batch_score IS NOT NULL THEN 'confirmed'
            WHEN published_at IS NOT NULL THEN 'unconfirmed'
            ELSE 'awaiting batch' END AS status,
       alerts AS stream_alerts, severity, detected_at, detection_delay, batch_score, batch_method
  FROM matched
UNION ALL
SELECT b.scenario, b.entity_type, b.entity_id, b.day, b.window_start, b.window_end, FALSE, TRUE, 'batch only',
       0, NULL, NULL, NULL, b.score, b.method
  FROM serving.batch_anomalies b JOIN serving.published_day p ON p.day = b.day
 WHERE NOT EXISTS (SELECT 1 FROM alerts a
                    WHERE a.scenario = b.scenario AND a.entity_id = b.entity_id
                      AND a.window_start <= b.window_end AND b.window_start <= a.window_end);
CREATE INDEX IF NOT EXISTS alerts_scenario_entity ON alerts (scenario, entity_id, window_start);

-- The layer reconciliation of each day checked (`cdr serving reconcile`), one row per record type.
CREATE TABLE IF NOT EXISTS serving.layer_reconciliation (
    day                  DATE NOT NULL,
    record_type          TEXT NOT NULL,
    checked_at           TIMESTAMP NOT NULL,
    speed_records        BIGINT NOT NULL,
    batch_records_in     BIGINT NOT NULL,
    batch_clean          BIGINT NOT NULL,
    batch_quarantined    BIGINT NOT NULL,
    batch_duplicates     BIGINT NOT NULL,
    expected_speed       BIGINT NOT NULL,    -- clean + duplicates: the stream validates alike, keeps copies
    not_yet_landed       BIGINT NOT NULL,    -- explained while the stream has not closed the day
    unexplained          BIGINT NOT NULL,
    measures             JSONB NOT NULL,     -- answered, dropped_or_failed, data_bytes: speed vs batch
    verdict              TEXT NOT NULL,      -- balanced | within tolerance | incomplete | unexplained difference
    PRIMARY KEY (day, record_type)
);
-- Records the stream's windows dropped as late (late_records): explained, not unexplained.
ALTER TABLE serving.layer_reconciliation ADD COLUMN IF NOT EXISTS late_dropped BIGINT NOT NULL DEFAULT 0;
