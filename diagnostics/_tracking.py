"""Dump-site tracking across passes: match, keep persistent ids, label new / persisting / grown / shrunk /
not observed / removed.

`track` takes the tracked frame of the previous pass (or None for the first pass) and the sites of the new pass
(`extract_sites` output) and returns the tracked frame of the new pass plus a history table. The tracked frame
carries each site's whole area and status history (JSON text columns), so feeding it back to the next call is
all the state there is.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from shapely.ops import unary_union

from geovigie.errors import InvalidInputError
from geovigie.types import LAMBERT93

STATUSES = ("new", "grown", "shrunk", "persisting", "not_observed", "removed")
STATUS_LABELS_FR = {"new": "nouveau", "grown": "agrandi", "shrunk": "réduit", "persisting": "persistant",
                    "not_observed": "non observé", "removed": "disparu"}
"""French label of each status (outputs keep the raw value)."""
MIN_OBSERVED_SHARE = 0.5
"""An unmatched earlier site counts as observed (so "removed") when at least this share of its footprint's pixels
is valid in the new pass; below, it is "not_observed" and carried on."""
PARTLY_OBSERVED_BELOW = 0.99
"""A matched site with less than this share of its last footprint observed is compared on the observed part (a
pixel or two of nodata, as LiDAR gaps leave, changes no status)."""
ALERT_STATUSES = ("new", "grown")
TRACK_COLUMNS = ["site_id", "status", "first_seen", "last_seen", "previous_area_m2", "area_ratio", "match",
                 "track_note", "observed_share", "area_history", "status_history"]
_CURRENT_NEEDS = ("detection_id", "area_m2", "pass_date")
_PREVIOUS_NEEDS = ("site_id", "status", "pass_date", "area_m2", "first_seen", "last_seen", "area_history",
                   "status_history")


def _check_ratios(grow_ratio: float, shrink_ratio: float, max_distance_m: float, min_observed: float) -> None:
    if not grow_ratio > 1:
        raise InvalidInputError(f"grow_ratio {grow_ratio}: must be > 1")
    if not 0 < shrink_ratio < 1:
        raise InvalidInputError(f"shrink_ratio {shrink_ratio}: must be in (0, 1)")
    if not max_distance_m >= 0:
        raise InvalidInputError(f"max_distance_m {max_distance_m}: must be >= 0")
    check_min_observed(min_observed)


def check_min_observed(min_observed: float, name: str = "min_observed") -> None:
    """The observed share that makes an unseen earlier site "removed": a number in (0, 1] (`name`: how the caller
    calls it, e.g. the CLI option)."""
    if isinstance(min_observed, bool) or not isinstance(min_observed, int | float) or not 0 < min_observed <= 1:
        raise InvalidInputError(f"{name} {min_observed!r}: give the share of a site's footprint a pass must observe "
                                f"to call it removed, in (0, 1] (default {MIN_OBSERVED_SHARE})")


def _check_frame(frame: gpd.GeoDataFrame, needs: tuple[str, ...], what: str) -> gpd.GeoDataFrame:
    if not isinstance(frame, gpd.GeoDataFrame):
        raise InvalidInputError(f"{what}: expected a GeoDataFrame, got {type(frame).__name__}")
    missing = [c for c in needs if c not in frame.columns]
    if missing:
        raise InvalidInputError(f"{what}: columns {missing} missing (has {list(frame.columns)})")
    if frame.crs is None:
        raise InvalidInputError(f"{what}: no CRS")
    return frame.to_crs(LAMBERT93).reset_index(drop=True)


def _pass_date(current: gpd.GeoDataFrame) -> str:
    dates = current["pass_date"].dropna().unique()
    if len(dates) > 1:
        raise InvalidInputError(f"current sites: several pass dates {sorted(map(str, dates))}; track one pass")
    if len(dates) == 1:
        return str(dates[0])
    if current.attrs.get("pass_date"):
        return str(current.attrs["pass_date"])
    raise InvalidInputError("current sites: empty and without attrs['pass_date']; cannot date the pass")


def _timestamp(text: str, what: str) -> pd.Timestamp:
    try:
        stamp = pd.Timestamp(text)
    except ValueError as exc:
        raise InvalidInputError(f"{what}: pass date {text!r} is not ISO 8601") from exc
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _greedy(pairs: pd.DataFrame, key: str, ascending: bool) -> dict[int, int]:
    """One-to-one matches (current row -> previous row), best `key` first; ties broken by row numbers."""
    matched: dict[int, int] = {}
    used: set[int] = set()
    ordered = pairs.sort_values([key, "cur", "prev"], ascending=[ascending, True, True])
    for cur, prev in zip(ordered["cur"], ordered["prev"], strict=True):
        if cur not in matched and prev not in used:
            matched[int(cur)] = int(prev)
            used.add(int(prev))
    return matched


def _overlap_pairs(current: gpd.GeoDataFrame, active: gpd.GeoDataFrame) -> pd.DataFrame:
    left = gpd.GeoDataFrame({"cur": np.arange(len(current))}, geometry=current.geometry.to_numpy(), crs=LAMBERT93)
    right = gpd.GeoDataFrame({"prev": active.index.to_numpy()}, geometry=active.geometry.to_numpy(), crs=LAMBERT93)
    joined = gpd.sjoin(left, right, predicate="intersects", how="inner")
    if joined.empty:
        return pd.DataFrame({"cur": [], "prev": [], "overlap": []})
    prev_geoms = right.geometry.to_numpy()[joined["index_right"].to_numpy()]
    overlap = joined.geometry.intersection(gpd.GeoSeries(prev_geoms, index=joined.index, crs=LAMBERT93)).area
    pairs = pd.DataFrame({"cur": joined["cur"].to_numpy(), "prev": joined["prev"].to_numpy(),
                          "overlap": overlap.to_numpy()})
    return pairs[pairs["overlap"] > 0]


def _distance_pairs(current: gpd.GeoDataFrame, active: gpd.GeoDataFrame, cur_rows: list[int],
                    prev_rows: list[int], max_distance_m: float) -> pd.DataFrame:
    if not cur_rows or not prev_rows:
        return pd.DataFrame({"cur": [], "prev": [], "distance": []})
    cur_pts = current.geometry.iloc[cur_rows].centroid
    prev_pts = active.geometry.loc[prev_rows].centroid
    dx = cur_pts.x.to_numpy()[:, None] - prev_pts.x.to_numpy()[None, :]
    dy = cur_pts.y.to_numpy()[:, None] - prev_pts.y.to_numpy()[None, :]
    dist = np.hypot(dx, dy)
    ci, pi = np.nonzero(dist <= max_distance_m)
    return pd.DataFrame({"cur": np.asarray(cur_rows)[ci], "prev": np.asarray(prev_rows)[pi], "distance": dist[ci, pi]})


def _match(current: gpd.GeoDataFrame, active: gpd.GeoDataFrame,
           max_distance_m: float) -> tuple[dict[int, tuple[int, str]], dict[int, int], dict[int, str]]:
    """Matches current row -> (previous row, how), split-off current row -> the previous row it was split from,
    and notes on merged previous rows."""
    overlaps = _overlap_pairs(current, active)
    by_overlap = _greedy(overlaps, "overlap", ascending=False)
    matched = {cur: (prev, "overlap") for cur, prev in by_overlap.items()}
    taken = {prev for prev, _ in matched.values()}
    split: dict[Any, Any] = {}
    merged: dict[Any, Any] = {}
    for cur, prev in zip(overlaps["cur"], overlaps["prev"], strict=True):
        if cur not in matched and prev in taken:
            split.setdefault(int(cur), int(prev))
        if prev not in taken and cur in matched:
            merged.setdefault(int(prev), f"merged into {active.at[matched[cur][0], 'site_id']}")
    free_cur = [i for i in range(len(current)) if i not in matched and i not in split]
    free_prev = [i for i in active.index if i not in taken and i not in merged]
    by_distance = _greedy(_distance_pairs(current, active, free_cur, free_prev, max_distance_m), "distance", True)
    matched.update({cur: (prev, "distance") for cur, prev in by_distance.items()})
    return matched, split, merged


def _status(ratio: float, grow_ratio: float, shrink_ratio: float) -> str:
    if ratio >= grow_ratio:
        return "grown"
    if ratio <= shrink_ratio:
        return "shrunk"
    return "persisting"


def _last_area(row: pd.Series) -> float:
    """The site's last wholly measured area: its area, or the one before when its pass did not observe it, or
    observed only part of it."""
    area, share = row["area_m2"], row.get("observed_share", np.nan)
    partly = pd.notna(share) and share < PARTLY_OBSERVED_BELOW
    return float(row["previous_area_m2"]) if (pd.isna(area) or partly) and "previous_area_m2" in row else float(area)


def _with_history(history: str | None, pass_iso: str, value: float | str | None) -> str:
    entries = json.loads(history) if history else {}
    entries[pass_iso] = value
    return json.dumps(entries, ensure_ascii=False)


def _current_rows(current: gpd.GeoDataFrame, active: gpd.GeoDataFrame | None, pass_iso: str,
                  matches: dict[int, tuple[int, str]], split: dict[int, int], shares: dict[int, float],
                  ratios: tuple[float, float]) -> gpd.GeoDataFrame:
    rows = current.copy()
    areas = rows["area_m2"].to_numpy(dtype=float)
    values: dict[str, list] = {name: [] for name in TRACK_COLUMNS}
    for i, area in enumerate(areas):
        if i in matches and active is not None:
            prev = active.loc[matches[i][0]]
            before, share, note = _last_area(prev), shares.get(matches[i][0], 1.0), None
            if 0 < share < PARTLY_OBSERVED_BELOW:  # compare what was seen (split-off pieces too) with that part
                seen = area + sum(areas[j] for j, p in split.items() if p == matches[i][0])
                note = (f"partly observed: {share:.0%} of its last footprint valid in this pass; {seen:.0f} m² seen "
                        f"against {before * share:.0f} of {before:.0f} m²")
                area, before = seen, before * share
            ratio = area / before if before > 0 else float("inf")
            status = _status(ratio, *ratios)
            entry = [prev["site_id"], status, prev["first_seen"], pass_iso, _last_area(prev), ratio,
                     matches[i][1], note, shares.get(matches[i][0], np.nan),
                     _with_history(prev["area_history"], pass_iso, areas[i]),
                     _with_history(prev["status_history"], pass_iso, status)]
        else:
            note = f"split from {active.at[split[i], 'site_id']}" if i in split and active is not None else None
            entry = [rows.at[i, "detection_id"], "new", pass_iso, pass_iso, np.nan, np.nan, None, note, np.nan,
                     _with_history(None, pass_iso, area), _with_history(None, pass_iso, "new")]
        for name, value in zip(TRACK_COLUMNS, entry, strict=True):
            values[name].append(value)
    for name in TRACK_COLUMNS:
        rows[name] = values[name]
    return rows


def _removed_rows(active: gpd.GeoDataFrame, gone: list[int], merged: dict[int, str], shares: dict[int, float],
                  pass_iso: str) -> gpd.GeoDataFrame:
    rows = active.loc[gone].copy()
    rows["previous_area_m2"] = [_last_area(active.loc[i]) for i in gone]
    rows["area_m2"] = 0.0
    if "area_ha" in rows.columns:
        rows["area_ha"] = 0.0
    rows["area_ratio"] = 0.0
    rows["status"] = "removed"
    rows["pass_date"] = pass_iso
    rows["detection_id"] = None
    rows["match"] = None
    rows["track_note"] = [merged.get(i) for i in gone]
    rows["observed_share"] = [shares.get(i, np.nan) for i in gone]
    rows["area_history"] = [_with_history(h, pass_iso, 0.0) for h in rows["area_history"]]
    rows["status_history"] = [_with_history(h, pass_iso, "removed") for h in rows["status_history"]]
    return rows


def _unobserved_rows(active: gpd.GeoDataFrame, unseen: list[int], shares: dict[int, float],
                     pass_iso: str) -> gpd.GeoDataFrame:
    """Earlier sites the new pass did not observe: same id and footprint, area not measured (NaN)."""
    rows = active.loc[unseen].copy()
    rows["previous_area_m2"] = [_last_area(active.loc[i]) for i in unseen]
    rows["area_m2"] = np.nan
    if "area_ha" in rows.columns:
        rows["area_ha"] = np.nan
    rows["area_ratio"] = np.nan
    rows["status"] = "not_observed"
    rows["pass_date"] = pass_iso
    rows["detection_id"] = None
    rows["match"] = None
    rows["track_note"] = [f"not observed: {shares[i]:.0%} of its footprint valid in this pass; last seen "
                          f"{str(active.at[i, 'last_seen'])[:10]}" for i in unseen]
    rows["observed_share"] = [shares[i] for i in unseen]
    rows["area_history"] = [_with_history(h, pass_iso, None) for h in rows["area_history"]]
    rows["status_history"] = [_with_history(h, pass_iso, "not_observed") for h in rows["status_history"]]
    return rows


def _shares(observed: Callable[[gpd.GeoSeries], np.ndarray], footprints: gpd.GeoSeries,
            rows: list[int]) -> dict[int, float]:
    values = np.asarray(observed(footprints), dtype=float).ravel() if rows else np.empty(0)
    if len(values) != len(rows) or not np.all((values >= 0) & (values <= 1)):
        raise InvalidInputError(f"observed: expected {len(rows)} shares in [0, 1], got {values.tolist()[:5]}")
    return dict(zip(rows, values.tolist(), strict=True))


def _order(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    rank = frame["status"].map({s: i for i, s in enumerate(STATUSES)})
    key = pd.DataFrame({"rank": rank, "area": -frame["area_m2"].fillna(0), "prev": -frame["previous_area_m2"].fillna(0),
                        "id": frame["site_id"].astype(str)})
    return frame.loc[key.sort_values(["rank", "area", "prev", "id"]).index].reset_index(drop=True)


def history_table(tracked: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """One row per site per pass (site_id, pass_date, status, area_m2) from the tracked frame's history columns.

    The geometry of every row is the site's latest footprint (earlier footprints are in earlier passes' outputs).
    """
    rows: list[dict] = []
    geoms = []
    for site_id, areas, statuses, geom in zip(tracked["site_id"], tracked["area_history"], tracked["status_history"],
                                              tracked.geometry, strict=True):
        area_by_pass, status_by_pass = json.loads(areas), json.loads(statuses)
        for pass_iso in sorted(area_by_pass, key=lambda t: _timestamp(t, "history")):
            area = area_by_pass[pass_iso]
            rows.append({"site_id": site_id, "pass_date": pass_iso, "status": status_by_pass.get(pass_iso),
                         "area_m2": np.nan if area is None else float(area)})
            geoms.append(geom)
    columns = ["site_id", "pass_date", "status", "area_m2"]
    return gpd.GeoDataFrame(pd.DataFrame(rows, columns=columns), geometry=gpd.GeoSeries(geoms, crs=tracked.crs),
                            crs=tracked.crs)


def track(
    previous: gpd.GeoDataFrame | None,
    current: gpd.GeoDataFrame,
    *,
    grow_ratio: float = 1.2,
    shrink_ratio: float = 0.8,
    max_distance_m: float = 20.0,
    observed: Callable[[gpd.GeoSeries], np.ndarray] | None = None,
    min_observed: float = MIN_OBSERVED_SHARE,
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Match the sites of a new pass to the previous pass's tracked sites and give each a status.

    Matching is one-to-one: first by overlap (largest intersection first), then, for what is left, by nearest
    centroid within `max_distance_m`. A matched site keeps the previous `site_id` (the `detection_id` of the pass
    where it was first seen) and is "grown" when area / previous area >= `grow_ratio`, "shrunk" when
    <= `shrink_ratio`, else "persisting"; a site whose last footprint the pass observed only in part (share in
    (0, 0.99) by `observed`) is compared on that part: area seen (pieces split off it included) against its last
    area × the share, with a `track_note` saying so. An unmatched current site is "new" (a site overlapping an already
    matched one gets the note "split from ..."). An unmatched previous site is returned once more as "removed",
    with its last footprint, area_m2 = 0 and the note "merged into ..." when it overlaps a matched current site,
    unless the new pass did not observe it: an unmatched, unmerged previous site of which less than
    `min_observed` of the footprint was observed (`observed`: the share of valid pixels under each footprint;
    a site exactly at `min_observed` counts as observed) is "not_observed": same id, footprint and attributes,
    area_m2 NaN (not measured), previous_area_m2 its last measured area, carried on to the next pass where it is
    matched (persisting / grown / shrunk, against that area), removed or not observed again.
    Sites removed in an earlier pass are not carried on.

    Args:
        previous: the tracked frame returned for the previous pass, or None for the first pass.
        current: the new pass's sites (`extract_sites`), one pass date.
        grow_ratio: area ratio from which a site counts as grown (> 1).
        shrink_ratio: area ratio up to which a site counts as shrunk (in (0, 1)).
        max_distance_m: largest centroid distance for a match without overlap, metres.
            `observed_share` (a column of the result) is the share of each earlier site's last footprint the new
            pass observed (NaN for new sites, or without `observed`); a partly observed site keeps its last whole
            area as the reference for the next pass.
        observed: share (0-1) of each footprint (EPSG:2154 GeoSeries) observed by the new pass; None: all of it.
        min_observed: smallest observed share for an unmatched site to count as removed, in (0, 1].

    Returns:
        (tracked, history): the current sites plus the removed ones, with `TRACK_COLUMNS` added (`STATUSES` order, then
        largest first), and `history_table(tracked)`.

    Raises:
        InvalidInputError: bad ratios or min_observed, missing columns, no CRS, duplicate ids, several pass dates in
            `current`, a current pass not later than the previous one, or `observed` giving one share per footprint
            out of [0, 1].
    """
    _check_ratios(grow_ratio, shrink_ratio, max_distance_m, min_observed)
    current = _check_frame(current, _CURRENT_NEEDS, "current sites")
    pass_iso = _pass_date(current)
    if current["detection_id"].duplicated().any():
        raise InvalidInputError("current sites: duplicate detection_id values")
    active, gone, unseen = None, [], []
    shares: dict[int, float] = {}
    matches: dict[Any, Any] = {}
    split: dict[Any, Any] = {}
    merged: dict[Any, Any] = {}
    if previous is not None:
        previous = _check_frame(previous, _PREVIOUS_NEEDS, "previous tracked sites")
        if len(previous):
            last = max(previous["pass_date"], key=lambda t: _timestamp(str(t), "previous tracked sites"))
            if _timestamp(pass_iso, "current sites") <= _timestamp(str(last), "previous tracked sites"):
                raise InvalidInputError(f"current pass {pass_iso} is not after the previous pass {last}")
        active = previous[previous["status"] != "removed"]
        if active["site_id"].duplicated().any():
            raise InvalidInputError("previous tracked sites: duplicate site_id values")
        matches, split, merged = _match(current, active, max_distance_m)
        taken = {prev for prev, _ in matches.values()}
        gone = [i for i in active.index if i not in taken]
        if observed is not None and len(active):
            shares = _shares(observed, active.geometry, list(active.index))
            # merged: its material was seen in a current site
            unseen = [i for i in gone if i not in merged and not shares[i] >= min_observed]
            gone = [i for i in gone if i not in unseen]
    rows = _current_rows(current, active, pass_iso, matches, split, shares, (grow_ratio, shrink_ratio))
    parts = [rows]
    if active is not None and unseen:
        parts.append(_unobserved_rows(active, unseen, shares, pass_iso))
    if active is not None and gone:
        parts.append(_removed_rows(active, gone, merged, shares, pass_iso))
    tracked = pd.concat(parts, ignore_index=True) if len(parts) > 1 else rows
    tracked = _order(gpd.GeoDataFrame(tracked, geometry="geometry", crs=LAMBERT93))
    first = ["site_id", "status", "first_seen", "last_seen"]
    middle = [c for c in tracked.columns if c not in TRACK_COLUMNS and c != "geometry"]
    tracked = tracked[first + middle + [c for c in TRACK_COLUMNS if c not in first] + ["geometry"]]
    tracked.attrs["pass_date"] = pass_iso
    return tracked, history_table(tracked)


def alerts(tracked: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Sites new or grown since the last pass, with a one-line `alert` text; new first, then largest first.

    Raises:
        InvalidInputError: `tracked` has no status / area columns (not a `track` output).
    """
    missing = [c for c in ("status", "area_m2", "site_id", "previous_area_m2") if c not in tracked.columns]
    if missing:
        raise InvalidInputError(f"tracked sites: columns {missing} missing; pass the output of track()")
    out = tracked[tracked["status"].isin(ALERT_STATUSES)].copy()
    texts = []
    for status, area, before in zip(out["status"], out["area_m2"], out["previous_area_m2"], strict=True):
        if status == "new":
            texts.append(f"new site, {area:.0f} m²")
        else:
            texts.append(f"grown from {before:.0f} to {area:.0f} m² (+{(area / before - 1) * 100:.0f} %)")
    out["alert"] = texts
    return _order(out) if len(out) else out.reset_index(drop=True)


def join_cut_pieces(current: gpd.GeoDataFrame, previous: gpd.GeoDataFrame | None,
                    observed: Callable[[gpd.GeoSeries], np.ndarray]) -> gpd.GeoDataFrame:
    """Join the pieces of one earlier site that the new pass's nodata cut apart into one site.

    An earlier site the pass observed only in part (share in (0, 0.99)) that two or more new sites overlap, each
    of them overlapping no other earlier site, is one site seen through a gap, not a site plus new ones: its pieces
    become one row (footprint union, areas and nodata pixels summed, confidence weighted by area, its maximum
    kept, centroids again, the largest piece's other attributes). Call it before measuring volumes and distances.
    """
    if previous is None or previous.empty or current.empty:
        return current
    active = previous[previous["status"] != "removed"]
    if active.empty:
        return current
    out = current.reset_index(drop=True)
    pairs = _overlap_pairs(out, active)
    if pairs.empty:
        return current
    per_piece = pairs.groupby("cur")["prev"].nunique()
    single = pairs[pairs["cur"].map(per_piece) == 1]
    groups = {int(p): sorted(int(c) for c in cs) for p, cs in single.groupby("prev")["cur"]}
    groups = {p: cs for p, cs in groups.items() if len(cs) > 1}
    if not groups:
        return current
    shares = _shares(observed, active.geometry.loc[list(groups)], list(groups))
    geoms, drop = out.geometry.to_numpy().copy(), []
    for prev, pieces in groups.items():
        if not 0 < shares[prev] < PARTLY_OBSERVED_BELOW:
            continue
        pieces = sorted(pieces, key=lambda c: (-float(out.at[c, "area_m2"]), c))
        keep, area = pieces[0], out.loc[pieces, "area_m2"].astype(float)
        if "mean_confidence" in out.columns and out.loc[pieces, "mean_confidence"].notna().all():
            out.at[keep, "mean_confidence"] = float(np.average(out.loc[pieces, "mean_confidence"], weights=area))
            out.at[keep, "max_confidence"] = float(out.loc[pieces, "max_confidence"].max())
        if "nodata_px" in out.columns:
            out.at[keep, "nodata_px"] = int(out.loc[pieces, "nodata_px"].sum())
        out.at[keep, "area_m2"] = float(area.sum())
        if "area_ha" in out.columns:
            out.at[keep, "area_ha"] = float(area.sum()) / 10_000
        geoms[keep] = unary_union(list(geoms[pieces]))
        drop.extend(pieces[1:])
    out = out.set_geometry(gpd.GeoSeries(geoms, index=out.index, crs=out.crs)).drop(index=drop)
    if "centroid_x_l93" in out.columns:
        from geovigie.diagnostics._dumps import add_centroids

        out = add_centroids(out)
    ordered = out.sort_values("area_m2", ascending=False, kind="stable").reset_index(drop=True)
    ordered.attrs.update(current.attrs)
    return ordered
