"""Choosing the bundle among candidates: on the most held-out set only (held-out dates or areas), never on
validation blocks that neighbour the training blocks."""

from __future__ import annotations

from typing import Any

from geovigie.training._config import Candidate, ExperimentConfig

PRIMARY_SETS = ("folds_heldout_test_blocks", "folds_heldout_space", "heldout_test_blocks", "heldout_space", "heldout",
                "test_blocks", "validation")
"""The set a bundle is judged on: the most held-out one the split has (`folds_*`: mean over leave-one-out folds;
`*_space`: held-out polygons of spatial folds, one date: nothing held out in time)."""
HELD_OUT_SETS = PRIMARY_SETS[:5]
MAJORITY = "majority_class"


def candidates_of(config: ExperimentConfig) -> list[Candidate]:
    """The config's candidates; without any, the network with a per-pixel random forest on the raw bands beside it
    (the baseline every run reports)."""
    if config.candidates:
        return list(config.candidates)
    opt = config.train
    return [Candidate(name="network", kind="network"),
            Candidate(name="random_forest", kind="random-forest", trees=opt.random_forest_trees,
                      max_pixels=opt.random_forest_max_pixels)]


def primary_set(metrics: dict[str, Any]) -> str:
    """The most held-out set present in `metrics`."""
    return next(s for s in PRIMARY_SETS if s in metrics)


def _key(row: dict[str, Any], metric: str) -> tuple[float, float]:
    other = "overall_accuracy" if metric == "miou" else "miou"
    return (row.get(metric) or 0.0, row.get(other) or 0.0)


def eligible(config: ExperimentConfig) -> list[str]:
    """The candidates that may win: those of `selection.kinds` (every one by default), in config order."""
    kinds = config.selection.kinds
    return [c.name for c in config.candidates if kinds is None or c.kind in kinds]


def select(metrics: dict[str, Any], names: list[str], metric: str, tolerance: float = 0.0,
           references: list[str] | None = None) -> tuple[str, dict[str, Any]]:
    """The winner among `names` on the primary set and the table it was chosen from (every candidate, the
    `references` that may not win, and the majority class): the best by `metric`, then the other one; with
    `tolerance`, the first listed of the candidates whose `metric` is within `tolerance` of the best (a cheaper model
    listed first wins a near tie).

    Raises:
        ValueError: no held-out set (dates or areas) in `metrics`.
    """
    where = primary_set(metrics)
    if where not in HELD_OUT_SETS:
        raise ValueError(f"candidates are chosen on held-out dates or areas (or spatial folds); the metrics only have "
                         f"{where}")
    rows = metrics[where]
    folds = max((rows[n].get("folds_scored", 0) for n in [*names, *(references or [])] if n in rows), default=0)
    # a candidate scored on fewer held-out dates (a multi-date model has no previous pass for the first date) is
    # reported, not chosen: its mean is over other dates
    complete = [n for n in names if rows[n].get("overall_accuracy") is not None
                and rows[n].get("folds_scored", folds) == folds] or names
    best = max(complete, key=lambda n: (_key(rows[n], metric), -complete.index(n)))
    if tolerance:
        winner = next(n for n in complete if _key(rows[n], metric)[0] >= _key(rows[best], metric)[0] - tolerance)
    else:
        winner = best
    shown = list(dict.fromkeys([*(references or []), *names]))
    table = {n: {k: rows[n].get(k) for k in ("overall_accuracy", "miou", "pixels", "folds_scored") if k in rows[n]}
             for n in [*shown, MAJORITY] if n in rows}
    out: dict[str, Any] = {"set": where, "metric": metric, "winner": winner, "table": table}
    if len(complete) < len(names):
        out["not_eligible"] = {n: f"scored on {rows[n].get('folds_scored', 0)} of {folds} held-out folds"
                               for n in names if n not in complete}
    if tolerance:
        out |= {"tolerance": tolerance, "best": best}
    return winner, out


def select_for(config: ExperimentConfig, metrics: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """`select` as the config says: among `selection.kinds` (the other candidates as references in the table; the
    overall winner of the same rule, `overall`, recorded beside it), else among every candidate."""
    every = [c.name for c in config.candidates if c.name in metrics[primary_set(metrics)]]
    names = [n for n in eligible(config) if n in every]
    rule = config.selection
    winner, out = select(metrics, names, rule.metric, rule.tolerance, references=every)
    if rule.kinds is not None:
        overall, _ = select(metrics, every, rule.metric, rule.tolerance)
        out["scope"] = {"kinds": list(rule.kinds), "overall_winner": overall,
                        "overall_winner_bundle": rule.winner_bundle or None}
    return winner, out


def verdict(metrics: dict[str, Any], shipped: str) -> str:
    """Sentences saying where the shipped model does not beat another candidate or the majority class on the
    primary set ('' when it beats them all)."""
    where = primary_set(metrics)
    rows = metrics[where]
    own = rows[shipped]
    label = f"{where} (mean of {len(own['per_fold'])} leave-one-out folds)" if "per_fold" in own else where
    sentences = []
    for name, row in rows.items():
        if name in (shipped, MAJORITY) or row.get("overall_accuracy") is None \
                or row.get("folds_scored", 0) < own.get("folds_scored", 0):  # its mean is over other folds
            continue
        if any((own[k] or 0) < (row[k] or 0) for k in ("overall_accuracy", "miou")):
            what = "per-pixel random forest" if name == "random_forest" else f"candidate {name}"
            sentences.append(f"On {label} the {shipped} does not beat the {what} "
                             f"(overall accuracy {own['overall_accuracy']:.3f} vs {row['overall_accuracy']:.3f}, "
                             f"mIoU {own['miou']:.3f} vs {row['miou']:.3f}).")
    majority = rows.get(MAJORITY, {})
    if (own["overall_accuracy"] or 0) < (majority.get("overall_accuracy") or 0):
        sentences.append(f"Its overall accuracy there is below always answering the majority class "
                         f"({own['overall_accuracy']:.3f} vs {majority['overall_accuracy']:.3f}).")
    return " ".join(sentences)
