"""Scoring detections (batch anomalies, streaming alerts) against the generator's scenario labels.

Both layers are scored with this one function so their figures mean the same thing:

- a detection is a row (scenario, entity_id, window_start, window_end); a label is a row of
  ``labels/scenarios`` whose raw entity is pseudonymised with the same key first (cells are not
  personal and stay as they are);
- a detection is a true positive when a label of the same scenario and entity overlaps its
  window, widened by ``tolerance`` on each side (detectors work in whole windows, so a detection
  may start a little before the injected anomaly);
- precision = true-positive detections / detections; recall = labels with at least one matching
  detection / labels, per scenario.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from cdr.contract import SCENARIOS


@dataclass(frozen=True)
class Detection:
    scenario: str
    entity_id: str
    window_start: dt.datetime
    window_end: dt.datetime


@dataclass(frozen=True)
class Score:
    scenario: str
    labels: int
    detections: int
    true_positives: int
    labels_found: int

    @property
    def precision(self) -> float:
        return self.true_positives / self.detections if self.detections else (1.0 if not self.labels else 0.0)

    @property
    def recall(self) -> float:
        return self.labels_found / self.labels if self.labels else 1.0


def score(
    detections: Iterable[Detection],
    labels: Iterable[dict],
    pseudonymise: Callable[[str], str],
    tolerance: dt.timedelta = dt.timedelta(hours=1),
) -> list[Score]:
    """Precision and recall per scenario; ``labels`` are rows of labels/scenarios."""
    by_key: dict[tuple[str, str], list[dict]] = {}
    for label in labels:
        entity = label["entity_id"] if label["entity_type"] == "cell" else pseudonymise(label["entity_id"])
        by_key.setdefault((label["scenario"], entity), []).append(label)
    all_labels = [lab for labs in by_key.values() for lab in labs]
    found: set[str] = set()
    counts = {s: [0, 0] for s in SCENARIOS}  # detections, true positives
    for d in detections:
        counts.setdefault(d.scenario, [0, 0])[0] += 1
        hits = [lab for lab in by_key.get((d.scenario, d.entity_id), [])
                if d.window_start < lab["end_time"] + tolerance and lab["start_time"] - tolerance < d.window_end]
        if hits:
            counts[d.scenario][1] += 1
            found.update(lab["scenario_id"] for lab in hits)
    out = []
    for scenario, (n_det, tp) in counts.items():
        labs = [lab for lab in all_labels if lab["scenario"] == scenario]
        out.append(Score(scenario, len(labs), n_det, tp, sum(lab["scenario_id"] in found for lab in labs)))
    return out


def format_scores(scores: list[Score]) -> str:
    lines = [f"{'scenario':<18} {'labels':>6} {'detections':>10} {'precision':>9} {'recall':>7}"]
    for s in scores:
        lines.append(f"{s.scenario:<18} {s.labels:>6} {s.detections:>10} {s.precision:>9.3f} {s.recall:>7.3f}")
    return "\n".join(lines)


def require_min_score(scores: list[Score], min_score: float | None) -> None:
    """The quality gate of `cdr batch score` and `cdr stream score --min-score`: BelowThreshold
    (exit 5) naming every labelled scenario whose precision or recall is under ``min_score``."""
    from cdr.errors import BelowThreshold

    low = [s for s in scores if min_score is not None and s.labels
           and (s.precision < min_score or s.recall < min_score)]
    if low:
        raise BelowThreshold(f"{len(low)} scenario(s) under --min-score {min_score}: " + ", ".join(
            f"{s.scenario} (precision {s.precision:.3f}, recall {s.recall:.3f})" for s in low),
            "the scores are printed above")
