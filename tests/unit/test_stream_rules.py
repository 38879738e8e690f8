"""The detection rules and KPIs (streaming.flink.rules) on in-memory events, in Flink batch mode.

PyFlink lives in the Flink venv, so the pure functions run there in a subprocess that prints
its result as JSON; the assertions are here. Each rule gets one entity that crosses its
threshold and one that stays just below it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from cdr.settings import REPO_ROOT, get_settings

FLINK_PYTHON = get_settings().flink.venv_dir / "bin" / "python"

SCRIPT = r'''
import datetime as dt, json
from pyflink.table import EnvironmentSettings, TableEnvironment
from streaming.flink.rules import alerts, detect, kpis_per_cell, kpis_per_service
from streaming.flink.schema import EVENT_ROW, EVENT_NAMES

env = TableEnvironment.create(EnvironmentSettings.in_batch_mode())
env.get_config().set("table.local-time-zone", "UTC")
env.get_config().set("parallelism.default", "1")
T0 = dt.datetime(2025, 12, 28, 10, 0)
BASE = dict(record_type="voice", msisdn="m", imei=None, other_party=None, other_foreign=False, direction="MO",
            duration_s=10, call_result="answered", answered=True, failed=False, total_bytes=None, cell_id="C0",
            mobile=True, latitude=None, longitude=None, reach_km=None)
rows = []
def add(minute, **kw):
    e = {**BASE, **kw}
    rows.append((T0 + dt.timedelta(minutes=minute), *[e[n] for n in EVENT_NAMES]))

for i in range(30):   # sim box: 30 MO calls to 30 numbers; the near miss calls 24 numbers
    add(i, msisdn="box", other_party=f"n{i}")
    add(i, msisdn="busy", other_party=f"n{i % 24}")
for i in range(10):   # outage: 10 attempts, 6 failed on C1; C2 has 5 of 10
    add(i, cell_id="C1", call_result="failed", answered=False, failed=i < 6, msisdn=f"u{i}", direction="MT")
    add(i, cell_id="C2", call_result="failed", answered=False, failed=i < 5, msisdn=f"u{i}", direction="MT")
for i in range(250):  # surge: 250 records on C3 in an hour (sms); C4 has 249
    add(i % 60, record_type="sms", cell_id="C3", msisdn=f"s{i}", direction="MT", answered=False)
    if i < 249:
        add(i % 60, record_type="sms", cell_id="C4", msisdn=f"s{i}", direction="MT", answered=False)
for i in range(3):    # data spike: 3 sessions of 2 GB in two hours; the near miss has 2
    add(i * 30, record_type="data", msisdn="hog", total_bytes=2_000_000_000, direction=None,
            call_result=None, answered=False)
    if i < 2:
        add(i * 30, record_type="data", msisdn="fan", total_bytes=2_000_000_000, direction=None,
            call_result=None, answered=False)
add(1, msisdn="owner", imei="I1", record_type="data", direction=None)   # cloning: two SIMs, one IMEI
add(2, msisdn="clone", imei="I1", record_type="data", direction=None)
add(3, msisdn="owner", imei="I2", record_type="data", direction=None)
add(4, msisdn="owner", imei="I2", record_type="data", direction=None)
# travel: Algiers and Oran (~350 km) within the hour; a Saharan line moves as far among neighbours
add(5, msisdn="jumper", latitude=36.75, longitude=3.06, reach_km=10.0, record_type="sms")
add(20, msisdn="jumper", latitude=35.70, longitude=-0.63, reach_km=12.0, record_type="sms")
add(5, msisdn="nomad", latitude=27.87, longitude=-0.29, reach_km=400.0, record_type="sms")
add(20, msisdn="nomad", latitude=24.55, longitude=1.35, reach_km=420.0, record_type="sms")
for i in range(15):   # wangiri: one foreign number rings 15 lines; another rings 14
    add(i, msisdn=f"v{i}", other_party="premium", other_foreign=True, direction="MT", call_result="no_answer",
        answered=False)
    if i < 14:
        add(i, msisdn=f"v{i}", other_party="premium2", other_foreign=True, direction="MT",
            call_result="no_answer", answered=False)

events = env.from_elements(rows, EVENT_ROW)
alerts = [dict(zip(r._fields, r)) if hasattr(r, "_fields") else r for r in alerts(env, detect(env, events)).execute().collect()]
out = {"alerts": [[a[1], a[2], a[3], str(a[4]), str(a[5]), a[6], json.loads(a[7]), len(a[0])] for a in alerts]}
out["cells"] = sorted([str(x) for x in r] for r in kpis_per_cell(env, events).execute().collect()
                      if r[0] in ("C1", "C3") and r[1] == T0)
out["services"] = sorted([str(x) for x in r] for r in kpis_per_service(env, events).execute().collect() if r[1] == T0)
print("RESULT " + json.dumps(out))
'''


@pytest.fixture(scope="module")
def result() -> dict:
    if not FLINK_PYTHON.exists():
        pytest.fail(f"the Flink venv is missing ({FLINK_PYTHON}): run `make setup`")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.run([str(FLINK_PYTHON), "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    return json.loads(lines[-1].removeprefix("RESULT "))


def test_each_rule_fires_on_its_entity_only(result):
    found = sorted((a[0], a[1], a[2], a[3], a[4]) for a in result["alerts"])
    assert found == sorted([
        ("sim_box", "msisdn", "box", "2025-12-28 10:00:00", "2025-12-28 11:00:00"),
        ("cell_outage", "cell", "C1", "2025-12-28 10:00:00", "2025-12-28 10:15:00"),
        ("traffic_surge", "cell", "C3", "2025-12-28 10:00:00", "2025-12-28 11:00:00"),
        ("data_spike", "msisdn", "hog", "2025-12-28 10:00:00", "2025-12-28 12:00:00"),
        ("imei_cloning", "imei", "I1", "2025-12-28 10:00:00", "2025-12-28 11:00:00"),
        ("impossible_travel", "msisdn", "jumper", "2025-12-28 10:00:00", "2025-12-28 11:00:00"),
        ("wangiri", "msisdn", "premium", "2025-12-28 10:00:00", "2025-12-28 11:00:00"),
    ])


def test_alerts_carry_severity_metrics_and_a_sha256_id(result):
    by_rule = {a[0]: a for a in result["alerts"]}
    assert by_rule["sim_box"][6] == {"mo_calls": 30, "mt_calls": 0, "distinct_called": 30}
    assert by_rule["cell_outage"][6] == {"attempts": 10, "failed_calls": 6}
    assert by_rule["cell_outage"][5] == "critical"
    assert all(a[7] == 64 for a in result["alerts"])


def test_kpis_count_per_minute_per_cell_and_service(result):
    # minute 10:00 on C1: one failed voice attempt; on C3: 5 SMS (250 spread over 60 minutes, i % 60)
    assert result["cells"] == [["C1", "2025-12-28 10:00:00", "1", "0", "1", "0", "0"],
                               ["C3", "2025-12-28 10:00:00", "0", "0", "0", "5", "0"]]
    services = {s[0]: s for s in result["services"]}
    assert set(services) == {"voice", "sms", "data"}
    assert services["data"][2:] == ["2", "0", "0", str(4_000_000_000)]  # hog and fan at minute 0


if __name__ == "__main__":
    sys.exit(pytest.main([__file__]))
