"""COCO's six box-AP numbers by name, and how they are shown: no torch, so the summaries and evaluate's
console read them without loading it."""

from __future__ import annotations

from typing import Any

# result keys (logged as test/<key>, in metrics.json and evaluate's result) → the paper's names; in the order
# of COCOeval.stats[:6]
AP_LABELS = {
    "map": "AP",
    "map_50": "AP50",
    "map_75": "AP75",
    "map_small": "APs",
    "map_medium": "APm",
    "map_large": "APl",
}


def ap_table(result: dict[str, Any]) -> dict[str, float]:
    """The six COCO numbers of a computed metric, as plain floats (-1 where COCO has no object of that size)."""
    return {key: float(result[key]) for key in AP_LABELS}


def percent(value: float | None) -> str:
    """An AP or accuracy fraction as the console shows it: a percentage, "–" where COCO has no such object."""
    return "–" if value is None or value < 0 else f"{100 * value:.2f}"


def ap_lines(result: dict[str, Any], prefix: str = "") -> list[str]:
    """The six COCO numbers as two aligned console lines, names over percentages ("–": no such object)."""
    names = "  ".join(f"{name:>6}" for name in AP_LABELS.values())
    values = "  ".join(f"{percent(result.get(prefix + key)):>6}" for key in AP_LABELS)
    return [names, values]
