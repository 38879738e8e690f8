"""One definition of each detection scenario (cdr.detection), read by both layers.

The batch detectors (batch/anomalies.py) and the stream rules (streaming/flink/rules.py) must take
every threshold and window from ``cdr.detection``: these tests fail if either file holds a number
of its own, if a layer ignores a value it is said to use (changing it must change that layer's
query plan or SQL), or if a scenario has no definition.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import re

import pytest

from batch.testing import spark  # noqa: F401  (spark: session-scoped fixture)
from cdr import detection
from cdr.contract import SCENARIOS
from cdr.detection import DEFINITIONS, Definitions, layer_of
from cdr.settings import REPO_ROOT
from streaming.flink import rules
from tests.unit.test_batch_anomalies import CELLS, USAGE

LAYER_FILES = {"batch": REPO_ROOT / "batch" / "anomalies.py", "stream": REPO_ROOT / "streaming" / "flink" / "rules.py"}

# Numbers a layer may write itself: none of them is a threshold or a window.
ANYWHERE = {0, 1, 2}  # comparisons with zero, counts of one, halves and squares (haversine)
IN_ARITHMETIC = {60, 1e9, 1.4826}  # seconds a minute and minutes an hour; bytes a GB; MAD to a standard deviation
POSITIONAL = {"percentile_approx": 0.5, "round": None}  # the median; decimal places (any)
# In SQL and Spark expression strings: type precisions (TIMESTAMP(3), MINUTE(4)) are not values.
PRECISION = re.compile(r"\b(TIMESTAMP|MINUTE)\(\d\)")
NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?:[eE][+-]?\d+)?(?![\w.])")


def own_numbers(source: str) -> list[str]:
    """The numbers a module writes that are not from cdr.detection (line: what), by the rules above."""
    tree = ast.parse(source)
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef)) and ast.get_docstring(node)}
    found = []
    for node in tree.body:  # module-level numeric constants, whatever their value
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None and any(
                isinstance(c, ast.Constant) and _is_number(c.value) for c in ast.walk(node.value)):
            found.append(f"{node.lineno}: module constant {ast.unparse(node)}")
    for node in ast.walk(tree):
        if not isinstance(node, ast.Constant) or id(node) in docstrings:
            continue
        parent = parents.get(node)
        if _is_number(node.value):
            if node.value in ANYWHERE:
                continue
            if node.value in IN_ARITHMETIC and isinstance(parent, ast.BinOp):
                continue
            if isinstance(parent, ast.Call) and parent.args[1:2] == [node]:
                callee = getattr(parent.func, "attr", getattr(parent.func, "id", None))
                if callee in POSITIONAL and POSITIONAL[callee] in (None, node.value):
                    continue
            found.append(f"{node.lineno}: {node.value!r} in {ast.unparse(parent)}")
        elif isinstance(node.value, str):
            for number in NUMBER.findall(PRECISION.sub("", node.value)):
                if float(number) not in ANYWHERE:
                    found.append(f"{node.lineno}: {number} in the string {node.value!r}")
    return found


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def perturbed(scenario: str, name: str) -> Definitions:
    """The definitions with one value changed to one no layer would use of its own."""
    definition = DEFINITIONS.of(scenario)
    value = getattr(definition, name)
    new = value * 3 + 7 if isinstance(value, int) else value * 1.5 + 0.25
    return dataclasses.replace(DEFINITIONS, **{scenario: dataclasses.replace(definition, **{name: new})})


FIELDS = [(s, f.name) for s in SCENARIOS for f in dataclasses.fields(DEFINITIONS.of(s))]


# --- the definitions --------------------------------------------------------------------------


def test_every_scenario_has_one_definition_and_every_value_says_why():
    assert [f.name for f in dataclasses.fields(Definitions)] == list(SCENARIOS)
    for scenario in SCENARIOS:
        definition = DEFINITIONS.of(scenario)
        assert dataclasses.fields(definition), scenario
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(definition, dataclasses.fields(definition)[0].name, 0)
        for f in dataclasses.fields(definition):
            assert _is_number(getattr(definition, f.name)), (scenario, f.name)
            assert len(f.metadata.get("why", "")) > 20, f"{scenario}.{f.name} does not say why"
            assert "|" not in f.metadata["why"], "the why is a cell of a Markdown table"
    with pytest.raises(KeyError):
        DEFINITIONS.of("roaming_fraud")


def test_the_values_both_layers_measure_are_one():
    """What both layers measure has one value (no prefix); the rest is named after its layer."""
    shared = {(s, n) for s, n in FIELDS if layer_of(n) == "both"}
    assert {("sim_box", "window_min"), ("sim_box", "min_mo_calls"), ("sim_box", "min_distinct_callees"),
            ("wangiri", "window_min"), ("wangiri", "min_victims"), ("data_spike", "min_session_bytes"),
            ("imei_cloning", "min_sims"), ("impossible_travel", "window_min"),
            ("impossible_travel", "min_distance_km")} == shared


# --- neither layer has numbers of its own -----------------------------------------------------


@pytest.mark.parametrize("layer", sorted(LAYER_FILES))
def test_no_layer_has_a_threshold_or_window_of_its_own(layer):
    assert own_numbers(LAYER_FILES[layer].read_text()) == []


def test_the_check_finds_numbers_of_a_layers_own():
    """What the layers held before their values moved to cdr.detection."""
    samples = {  # source: what the finding names (None: nothing to find)
        "WANGIRI_VICTIMS_PER_HOUR = 25": "module constant",
        "RATIO = 2": "module constant",
        "q = _rule('sim_box', 'msisdn', 'msisdn', 'high', 60, a, w, h, m, e)": "module constant",
        "class T:\n    travel_km: float = 300.0": "300.0",
        "def f():\n    return hourly.filter(F.col('callees') >= 0.8 * F.col('calls'))": "0.8",
        "def f():\n    return _robust_z(F.col('events'), F.col('median'), F.col('mad'), 1.0)": None,  # 1.0 == 1
        "def f():\n    return _rule('sim_box', 'msisdn', 'msisdn', 'high', 60, a, w, h, m, e)": "60",
        "def f():\n    return 'CAST(ROUND(2 * 6371.0 * ASIN(x), 1) AS DOUBLE)'": "6371.0",
        "def f():\n    return f\"victims >= {th.wangiri} AND x > {y} * 1.2\"": "1.2",
        "def f():\n    return F.percentile_approx('ratio', 0.75)": "0.75",
        "def f():\n    return F.percentile_approx('ratio', 0.5), F.round('score', 3)": None,
        "def f():\n    return F.round(F.col('score') * 3, 1)": "3",
        "def f():\n    return F.col('km') / 60 > 1.5 * F.col('m')": "1.5",
        "def f():\n    return F.col('km') > 60": "60",
    }
    for source, expected in samples.items():
        found = own_numbers(source)
        if expected is None:
            assert found == [], source
        else:
            assert any(expected in f for f in found), (source, found)


# --- each layer reads the values it is said to use, and no other ------------------------------


def _stream_sql(defs: Definitions | None = None) -> dict[str, str]:
    return rules.rule_queries("events", defs)


@pytest.mark.parametrize(("scenario", "name"), FIELDS)
def test_the_stream_rules_use_exactly_their_values(scenario, name):
    changed = _stream_sql(perturbed(scenario, name))
    baseline = _stream_sql()
    others = {s: q for s, q in changed.items() if s != scenario}
    assert others == {s: q for s, q in baseline.items() if s != scenario}
    assert (changed[scenario] != baseline[scenario]) == (layer_of(name) in ("both", "stream")), \
        f"{scenario}.{name} ({layer_of(name)})"


@pytest.fixture(scope="module")
def batch_plan(spark):
    """The batch detector of a scenario, on empty frames, as a plan (attribute ids removed)."""
    from batch import anomalies, features

    usage = spark.createDataFrame([], USAGE)
    cells = spark.createDataFrame([], CELLS)
    cell_hours = features.cell_hourly(usage.withColumn("date", usage["start_time"].cast("date")))
    detectors = {
        "sim_box": lambda d: anomalies.sim_box(usage, d), "wangiri": lambda d: anomalies.wangiri(usage, d),
        "data_spike": lambda d: anomalies.data_spike(usage, d),
        "imei_cloning": lambda d: anomalies.imei_cloning(usage, cells, d),
        "impossible_travel": lambda d: anomalies.impossible_travel(usage, cells, d),
        "cell_outage": lambda d: anomalies.cell_outage(cell_hours, d),
        "traffic_surge": lambda d: anomalies.traffic_surge(cell_hours, d),
    }
    assert set(detectors) == set(SCENARIOS)

    @functools.cache
    def plan(scenario: str, defs: Definitions = DEFINITIONS) -> str:
        df = detectors[scenario](defs.of(scenario))
        return re.sub(r"#\d+L?", "", df._jdf.queryExecution().logical().toString())

    return plan


@pytest.mark.spark
@pytest.mark.parametrize(("scenario", "name"), FIELDS)
def test_the_batch_detectors_use_exactly_their_values(batch_plan, scenario, name):
    changed = batch_plan(scenario, perturbed(scenario, name)) != batch_plan(scenario)
    assert changed == (layer_of(name) in ("both", "batch")), f"{scenario}.{name} ({layer_of(name)})"


# --- changing a definition changes what both layers compute -----------------------------------


@pytest.mark.spark
def test_a_changed_definition_changes_both_layers(spark, monkeypatch):
    """One foreign number rings 20 subscribers in an hour, unanswered: Wangiri at the shared
    threshold; not when cdr.detection says 21 (both layers read it when they detect)."""
    import datetime as dt

    from batch import anomalies

    hour = dt.datetime(2026, 1, 5, 12, tzinfo=dt.timezone.utc)
    rings = [(f"R{i}", hour + dt.timedelta(minutes=i), "voice", f"v{i}", None, None, "c1", "4G", False, "w1", True,
              "MT", "no_answer", 0, None) for i in range(20)]
    usage = spark.createDataFrame(rings, USAGE)
    assert DEFINITIONS.wangiri.min_victims <= 20
    assert [r["entity_id"] for r in anomalies.wangiri(usage).collect()] == ["w1"]
    assert f"victims >= {DEFINITIONS.wangiri.min_victims}" in _stream_sql()["wangiri"]

    stricter = dataclasses.replace(DEFINITIONS, wangiri=dataclasses.replace(DEFINITIONS.wangiri, min_victims=21))
    monkeypatch.setattr(detection, "DEFINITIONS", stricter)
    assert anomalies.wangiri(usage).collect() == []
    assert "victims >= 21" in _stream_sql()["wangiri"]
