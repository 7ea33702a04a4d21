"""Dump-site tracking over three passes built by documented edits of a real mask.

Pass 1 is the stand-in layer of `test_dumps` (IGN LiDAR HD height above ground, Montpellier, as a probability;
sites = trees and buildings >= 2 m high). The later passes edit its pixels (0.5 m):
- pass 2: tree R (51 m², centroid 770508.2 6277569.7) removed (set to 0); tree G (77 m², 770517.7 6277562.2)
  grown by a 2-pixel dilation (set to 250); site S (299 m², 770590.9 6277593.5) shrunk by a 2-pixel erosion;
  a new site N: tree G's pixels copied 34 m east and 22 m south, onto bare ground.
- pass 3: G back to its pass-1 pixels (shrunk); S removed; R's pixels back (a new site, new id); N moved 12 m
  east (no overlap: matched by centroid distance, persisting); tree T (31 m², 770502.8 6277593.1) grown by a
  2-pixel dilation.
Every other site is unchanged (persisting).
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from shapely.geometry import Point

from geovigie.cog import write_array_cog
from geovigie.diagnostics._dumps import extract_sites, observed_share
from geovigie.diagnostics._tracking import STATUSES, TRACK_COLUMNS, alerts, track
from geovigie.errors import InvalidInputError
from tests._support.lidar import pixels_of, write_lidar_layers

DATES = (date(2024, 5, 1), date(2024, 6, 1), date(2024, 7, 1))
POINTS = {"R": (770508.3, 6277569.7), "G": (770517.7, 6277562.2), "S": (770590.7, 6277593.5),
          "T": (770502.8, 6277593.1)}
SHIFT_N = (68, 44)  # columns east, rows south: 34 m east, 22 m south
MOVE_N = 24  # pass 3: 12 m east


def dilate(mask: np.ndarray, steps: int) -> np.ndarray:
    out = mask.copy()
    for _ in range(steps):
        grown = out.copy()
        grown[1:] |= out[:-1]
        grown[:-1] |= out[1:]
        grown[:, 1:] |= out[:, :-1]
        grown[:, :-1] |= out[:, 1:]
        out = grown
    return out


def erode(mask: np.ndarray, steps: int) -> np.ndarray:
    return ~dilate(~mask, steps)


def shifted(array: np.ndarray, cols: int, rows: int) -> np.ndarray:
    return np.roll(np.roll(array, rows, axis=0), cols, axis=1)


def site_at(sites: gpd.GeoDataFrame, x: float, y: float) -> gpd.GeoSeries:
    hit = sites[sites.contains(Point(x, y))]
    assert len(hit) == 1, (x, y)
    return hit.iloc[0]


def extract(path: Path, when: date) -> gpd.GeoDataFrame:
    return extract_sites(path, threshold=0.2, pass_date=when, candidate=True)


@pytest.fixture(scope="module")
def passes(tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("passes")
    layer = write_lidar_layers(folder)["probability"]
    with rasterio.open(layer) as src:
        p1, transform = src.read(1), src.transform
    profile = {"driver": "GTiff", "crs": "EPSG:2154", "transform": transform, "nodata": 255}
    s1 = extract(layer, DATES[0])
    first = {key: site_at(s1, *xy) for key, xy in POINTS.items()}
    masks = {key: pixels_of(site.geometry, p1.shape, transform) for key, site in first.items()}
    p2 = p1.copy()
    p2[masks["R"]] = 0
    ring_g = dilate(masks["G"], 2) & ~masks["G"]
    p2[ring_g] = 250
    p2[masks["S"] & ~erode(masks["S"], 2)] = 0
    mask_n = shifted(masks["G"], *SHIFT_N)
    p2[mask_n] = shifted(np.where(masks["G"], p1, 0), *SHIFT_N)[mask_n]
    p3 = p2.copy()
    p3[ring_g] = p1[ring_g]
    p3[erode(masks["S"], 2)] = 0
    p3[masks["R"]] = p1[masks["R"]]
    p3[dilate(masks["T"], 2) & ~masks["T"]] = 250
    moved_n = shifted(mask_n, MOVE_N, 0)
    p3[mask_n] = p1[mask_n]
    p3[moved_n] = shifted(np.where(mask_n, p2, 0), MOVE_N, 0)[moved_n]
    paths = [folder / "pass2.tif", folder / "pass3.tif"]
    for path, array in zip(paths, (p2, p3), strict=True):
        write_array_cog(path, array[None], profile=profile)
    s2, s3 = extract(paths[0], DATES[1]), extract(paths[1], DATES[2])
    t1, h1 = track(None, s1)
    t2, h2 = track(t1, s2)
    t3, h3 = track(t2, s3)
    ids = {key: site["detection_id"] for key, site in first.items()}
    ids["N"] = site_at(s2, *(c + d for c, d in zip(POINTS["G"], (34.0, -22.0), strict=True)))["detection_id"]
    return {"sites": (s1, s2, s3), "tracked": (t1, t2, t3), "history": (h1, h2, h3), "ids": ids,
            "first": first, "layer": layer, "p1": p1, "masks": masks, "profile": profile, "folder": folder}


def statuses(tracked: gpd.GeoDataFrame) -> dict[str, str]:
    return dict(zip(tracked["site_id"], tracked["status"], strict=True))


def test_first_pass_is_all_new(passes: dict) -> None:
    s1, t1, h1 = passes["sites"][0], passes["tracked"][0], passes["history"][0]
    assert (t1["status"] == "new").all() and set(t1["site_id"]) == set(s1["detection_id"])
    assert (t1["first_seen"] == "2024-05-01").all() and len(h1) == len(s1)
    assert set(TRACK_COLUMNS) <= set(t1.columns) and str(t1.crs) == "EPSG:2154"


def test_second_pass_statuses(passes: dict) -> None:
    ids, (s1, _, _), (_, t2, _) = passes["ids"], passes["sites"], passes["tracked"]
    got = statuses(t2)
    expected = {site_id: "persisting" for site_id in s1["detection_id"]}
    expected.update({ids["R"]: "removed", ids["G"]: "grown", ids["S"]: "shrunk", ids["N"]: "new"})
    assert got == expected
    assert set(t2["status"]) == set(STATUSES) - {"not_observed"}  # every pixel observed
    rows = t2.set_index("site_id")
    area_g = rows.at[ids["G"], "area_m2"]
    assert area_g >= dilate(passes["masks"]["G"], 2).sum() * 0.25  # the dilated pixels, at least
    assert rows.at[ids["G"], "area_ratio"] == pytest.approx(area_g / passes["first"]["G"]["area_m2"])
    assert rows.at[ids["G"], "area_ratio"] >= 1.2 and rows.at[ids["S"], "area_ratio"] <= 0.8
    assert rows.at[ids["R"], "area_m2"] == 0 and rows.at[ids["R"], "previous_area_m2"] == pytest.approx(51.25)
    assert rows.at[ids["R"], "geometry"].equals(passes["first"]["R"].geometry)  # last footprint kept
    assert rows.at[ids["R"], "last_seen"] == "2024-05-01" and rows.at[ids["G"], "last_seen"] == "2024-06-01"
    assert rows.at[ids["N"], "first_seen"] == "2024-06-01" and ids["N"].startswith("20240601-")
    unchanged = rows[rows["status"] == "persisting"]
    assert (unchanged["area_ratio"] == 1).all() and (unchanged["match"] == "overlap").all()


def test_third_pass_statuses_and_ids(passes: dict) -> None:
    ids, (_, _, s3), (_, t2, t3) = passes["ids"], passes["sites"], passes["tracked"]
    got = statuses(t3)
    back_r = site_at(s3, *POINTS["R"])["detection_id"]
    expected = {site_id: "persisting" for site_id in t2.loc[t2["status"] != "removed", "site_id"]}
    expected.update({ids["G"]: "shrunk", ids["S"]: "removed", ids["T"]: "grown", back_r: "new"})
    assert got == expected and set(t3["status"]) == set(STATUSES) - {"not_observed"}
    assert ids["R"] not in got and back_r != ids["R"]  # removed earlier: not carried on; back = a new site
    rows = t3.set_index("site_id")
    assert rows.at[ids["N"], "match"] == "distance" and rows.at[ids["N"], "first_seen"] == "2024-06-01"
    assert rows.at[ids["G"], "area_m2"] == pytest.approx(passes["first"]["G"]["area_m2"])
    assert json.loads(rows.at[ids["G"], "status_history"]) == {"2024-05-01": "new", "2024-06-01": "grown",
                                                              "2024-07-01": "shrunk"}
    assert set(rows["first_seen"]) == {"2024-05-01", "2024-06-01", "2024-07-01"}


def test_moved_site_matched_by_distance_only(passes: dict) -> None:
    ids, (_, t2, t3) = passes["ids"], passes["tracked"]
    before = t2.set_index("site_id").at[ids["N"], "geometry"]
    after = t3.set_index("site_id").at[ids["N"], "geometry"]
    assert before.intersection(after).area == 0
    assert before.centroid.distance(after.centroid) == pytest.approx(12.0)
    t3_strict, _ = track(t2, passes["sites"][2], max_distance_m=10.0)
    assert statuses(t3_strict)[ids["N"]] == "removed"
    assert (t3_strict["status"] == "new").sum() == 2  # R back, and N now counted as new


def test_history_and_alerts(passes: dict) -> None:
    ids, (t1, t2, t3), (_, h2, h3) = passes["ids"], passes["tracked"], passes["history"]
    per_site = h3.groupby("site_id").size().to_dict()
    assert per_site[ids["G"]] == 3 and per_site[ids["S"]] == 3 and per_site[ids["N"]] == 2
    assert len(h3) == sum(len(json.loads(h)) for h in t3["area_history"])
    g = h3[h3["site_id"] == ids["G"]].sort_values("pass_date")
    assert g["status"].tolist() == ["new", "grown", "shrunk"]
    assert g["area_m2"].iloc[1] == pytest.approx(t2.set_index("site_id").at[ids["G"], "area_m2"])
    assert h3.loc[(h3["site_id"] == ids["S"]) & (h3["pass_date"] == "2024-07-01"), "area_m2"].item() == 0
    assert set(alerts(t2)["site_id"]) == {ids["G"], ids["N"]}
    third = alerts(t3)
    assert third["status"].tolist() == ["new", "grown"] and third["site_id"].iloc[1] == ids["T"]
    assert third["alert"].iloc[1].startswith("grown from 31 to")
    assert alerts(t1)["status"].eq("new").all() and len(alerts(t1)) == len(t1)
    assert len(h2) == len(t2) + (t2["status"] != "new").sum()  # 1 row per new site, 2 per older one


def test_merge_into_a_neighbour_is_noted(passes: dict) -> None:
    """Tree at 770592.2 6277574.0 (71 m²) dilated by 2 px joins the large site next to it."""
    p1, profile, (t1, _, _) = passes["p1"], passes["profile"], passes["tracked"]
    s1 = passes["sites"][0]
    tree = site_at(s1, 770592.2, 6277574.0)
    mask = pixels_of(tree.geometry, p1.shape, profile["transform"])
    edited = p1.copy()
    edited[dilate(mask, 2) & ~mask] = 250
    path = write_array_cog(passes["folder"] / "merge.tif", edited[None], profile=profile)
    tracked, _ = track(t1, extract(path, DATES[1]))
    row = tracked.set_index("site_id").loc[tree["detection_id"]]
    assert row["status"] == "removed" and row["track_note"].startswith("merged into 2024")
    into = row["track_note"].removeprefix("merged into ")
    assert tracked.set_index("site_id").at[into, "status"] in ("persisting", "grown")


def test_empty_pass_removes_everything(passes: dict) -> None:
    p1, profile, (_, t2, _) = passes["p1"], passes["profile"], passes["tracked"]
    blank = np.where(p1 == 255, 255, 0).astype(np.uint8)
    path = write_array_cog(passes["folder"] / "blank.tif", blank[None], profile=profile)
    empty = extract(path, DATES[2])
    assert empty.empty
    tracked, history = track(t2, empty)
    assert (tracked["status"] == "removed").all()
    assert set(tracked["site_id"]) == set(t2.loc[t2["status"] != "removed", "site_id"])
    assert (history.loc[history["pass_date"] == "2024-07-01", "status"] == "removed").all()


def test_bad_tracking_input(passes: dict) -> None:
    (s1, s2, _), (t1, t2, _) = passes["sites"], passes["tracked"]
    with pytest.raises(InvalidInputError, match="grow_ratio"):
        track(t1, s2, grow_ratio=1.0)
    with pytest.raises(InvalidInputError, match="shrink_ratio"):
        track(t1, s2, shrink_ratio=1.5)
    with pytest.raises(InvalidInputError, match="not after"):
        track(t2, s1)
    with pytest.raises(InvalidInputError, match="site_id"):
        track(s1, s2)  # an untracked frame given as the previous pass
    with pytest.raises(InvalidInputError, match="area_m2"):
        track(None, s1.drop(columns="area_m2"))
    with pytest.raises(InvalidInputError, match="status"):
        alerts(s1)


# Partly observed passes: nodata (255) written over part of the real pass-2 layer, as clouds or a swath edge do.
WEST_COLS = 50  # pass 2 with columns 0-49 (x < 770525) unobserved: R, G, T and the tree at 770510.6 6277598.5
CLEARED = (770565.0, 6277593.75)  # a 24 m² tree in the observed part, cleared in the partial pass (set to 0)


def share_observed(geom, array: np.ndarray, transform) -> float:  # noqa: ANN001 - a shapely geometry, an Affine
    """What the field would count: the site's pixels (centre inside) that hold data in the pass."""
    inside = pixels_of(geom, array.shape, transform)
    return float((inside & (array != 255)).sum() / inside.sum())


@pytest.fixture(scope="module")
def partial(passes: dict) -> dict:
    p1, profile, folder = passes["p1"], passes["profile"], passes["folder"]
    with rasterio.open(folder / "pass2.tif") as src:
        p2 = src.read(1)
    cleared = site_at(passes["sites"][0], *CLEARED)
    edited = p2.copy()
    edited[pixels_of(cleared.geometry, p1.shape, profile["transform"])] = 0
    edited[:, :WEST_COLS] = 255
    path = write_array_cog(folder / "pass2-partial.tif", edited[None], profile=profile)
    tracked, history = track(passes["tracked"][0], extract(path, DATES[1]),
                             observed=lambda footprints: observed_share(path, footprints))
    return {"array": edited, "path": path, "tracked": tracked, "history": history, "cleared": cleared["detection_id"]}


def test_partial_pass_sites_under_nodata_are_not_observed(passes: dict, partial: dict) -> None:
    ids, (t1, t2, _) = passes["ids"], passes["tracked"]
    tracked, transform = partial["tracked"], passes["profile"]["transform"]
    shares = {i: share_observed(g, partial["array"], transform) for i, g in zip(t1["site_id"], t1.geometry,
                                                                                 strict=True)}
    got, full = statuses(tracked), statuses(t2)
    unseen = {i for i, s in shares.items() if s == 0}
    assert unseen == {ids["R"], ids["G"], ids["T"], site_at(t1, 770510.6, 6277598.5)["site_id"]}
    assert {i for i, s in got.items() if s == "not_observed"} == unseen  # R was "removed" before this fix
    assert [i for i, s in got.items() if s == "removed"] == [partial["cleared"]]  # observed and gone
    partly = {i for i, s in shares.items() if 0 < s < 0.99}  # not the two with 1 px of LiDAR gap
    assert len(partly) == 2  # the 1613 m² building (28 % observed) and the 1343 m² one (96 %)
    for site_id, share in shares.items():
        if share > 0 and site_id != partial["cleared"]:  # observed, even in part: as in the full pass
            assert got[site_id] == full[site_id], site_id
    for site_id in partly:  # compared on the part observed, not called "shrunk" for the part under nodata
        assert tracked.set_index("site_id").at[site_id, "track_note"].startswith(
            f"partly observed: {shares[site_id]:.0%} of its last footprint valid in this pass;")
    assert got[ids["N"]] == "new" and not alerts(tracked)["site_id"].isin(unseen).any()
    rows = tracked.set_index("site_id")
    r = rows.loc[ids["R"]]
    assert np.isnan(r["area_m2"]) and r["previous_area_m2"] == pytest.approx(passes["first"]["R"]["area_m2"])
    assert r["geometry"].equals(passes["first"]["R"].geometry) and r["last_seen"] == "2024-05-01"
    assert r["track_note"] == "not observed: 0% of its footprint valid in this pass; last seen 2024-05-01"
    assert json.loads(r["status_history"]) == {"2024-05-01": "new", "2024-06-01": "not_observed"}
    history = partial["history"].set_index(["site_id", "pass_date"])
    assert np.isnan(history.at[(ids["R"], "2024-06-01"), "area_m2"])
    assert list(dict.fromkeys(tracked["status"])) == [s for s in STATUSES if s in set(got.values())]


def test_not_observed_site_seen_again_keeps_its_id(passes: dict, partial: dict) -> None:
    ids, first = passes["ids"], passes["first"]
    pass3 = passes["folder"] / "pass3.tif"
    third, _ = track(partial["tracked"], extract(pass3, DATES[2]),
                     observed=lambda footprints: observed_share(pass3, footprints))
    got, rows = statuses(third), third.set_index("site_id")
    assert got[ids["R"]] == "persisting" and rows.at[ids["R"], "first_seen"] == "2024-05-01"  # not a new site
    assert rows.at[ids["R"], "previous_area_m2"] == pytest.approx(first["R"]["area_m2"])
    assert got[ids["G"]] == "persisting"  # pass 3 gives G its pass-1 pixels: compared with its last measured area
    assert got[ids["T"]] == "grown" and rows.at[ids["T"], "area_ratio"] >= 1.2
    assert "not_observed" not in got.values()
    assert json.loads(rows.at[ids["R"], "status_history"]) == {
        "2024-05-01": "new", "2024-06-01": "not_observed", "2024-07-01": "persisting"}


def test_not_observed_site_later_observed_and_absent_is_removed(passes: dict, partial: dict) -> None:
    ids, masks, profile = passes["ids"], passes["masks"], passes["profile"]
    with rasterio.open(passes["folder"] / "pass3.tif") as src:
        p3 = src.read(1)
    p3[dilate(masks["T"], 2)] = 0  # tree T cut down before pass 3 (documented edit)
    path = write_array_cog(passes["folder"] / "pass3-without-t.tif", p3[None], profile=profile)
    third, history = track(partial["tracked"], extract(path, DATES[2]),
                           observed=lambda footprints: observed_share(path, footprints))
    row = third.set_index("site_id").loc[ids["T"]]
    assert row["status"] == "removed" and row["area_m2"] == 0
    assert row["previous_area_m2"] == pytest.approx(passes["first"]["T"]["area_m2"])  # its last measured area
    t_rows = history[history["site_id"] == ids["T"]].sort_values("pass_date")
    assert t_rows["status"].tolist() == ["new", "not_observed", "removed"]
    assert t_rows["area_m2"].isna().tolist() == [False, True, False]


@pytest.mark.parametrize(("nodata_px", "min_observed", "expected"), [
    (87, 0.5, "removed"),  # 87 of 174 px observed: exactly 50 %, counts as observed
    (88, 0.5, "not_observed"),  # 86 of 174: under half
    (87, float(np.nextafter(0.5, 1)), "not_observed"),  # the same site, just under a stricter share
    (0, 1.0, "removed"),  # every pixel observed meets a share of 1
])
def test_observed_share_threshold_boundary(passes: dict, nodata_px: int, min_observed: float, expected: str) -> None:
    """Tree at 770558.9 6277561.0 (174 px): cleared, with `nodata_px` of its pixels (raster order) as nodata."""
    p1, profile, (t1, _, _) = passes["p1"], passes["profile"], passes["tracked"]
    tree = site_at(passes["sites"][0], 770558.9, 6277561.0)
    inside = pixels_of(tree.geometry, p1.shape, profile["transform"])
    assert inside.sum() == 174
    edited = p1.copy()
    edited[inside] = 0
    rows, cols = np.nonzero(inside)
    edited[rows[:nodata_px], cols[:nodata_px]] = 255
    path = write_array_cog(passes["folder"] / f"boundary-{nodata_px}.tif", edited[None], profile=profile)
    share = observed_share(path, t1.set_index("site_id").loc[[tree["detection_id"]]].geometry)
    assert share[0] == (174 - nodata_px) / 174
    tracked, _ = track(t1, extract(path, DATES[1]), observed=lambda footprints: observed_share(path, footprints),
                       min_observed=min_observed)
    assert statuses(tracked)[tree["detection_id"]] == expected


def test_all_nodata_pass_leaves_every_site_not_observed(passes: dict) -> None:
    """At the tracking level (the workflow records no pass at all for such a layer: tests/workflows)."""
    p1, profile, (_, t2, _) = passes["p1"], passes["profile"], passes["tracked"]
    path = write_array_cog(passes["folder"] / "nodata.tif", np.full_like(p1, 255)[None], profile=profile)
    empty = extract(path, DATES[2])
    assert empty.empty and empty.attrs["valid_px"] == 0
    tracked, _ = track(t2, empty, observed=lambda footprints: observed_share(path, footprints))
    assert (tracked["status"] == "not_observed").all()
    assert set(tracked["site_id"]) == set(t2.loc[t2["status"] != "removed", "site_id"])
    outside = gpd.GeoSeries([Point(700000, 6600000).buffer(5)], crs="EPSG:2154")
    assert observed_share(passes["layer"], outside).tolist() == [0.0]  # off the layer: not observed


def test_bad_observed_shares(passes: dict) -> None:
    (_, s2, _), (t1, _, _) = passes["sites"], passes["tracked"]
    with pytest.raises(InvalidInputError, match="min_observed"):
        track(t1, s2, min_observed=0)
    with pytest.raises(InvalidInputError, match="observed: expected"):
        track(t1, s2, observed=lambda footprints: np.full(len(footprints), 1.5))
    with pytest.raises(InvalidInputError, match="observed: expected"):
        track(t1, s2, observed=lambda footprints: np.zeros(len(footprints) + 1))


@pytest.mark.parametrize("gap", ["nodata", "observed-zero"])
def test_a_site_cut_by_nodata_is_one_site_and_a_real_cut_a_split(gap: str, passes: dict) -> None:
    """Site S (299 m² in pass 1) crossed by a 2-pixel column through its centroid: nodata (255, a swath edge)
    joins its two pieces into one persisting site; observed zeros (material cleared along a line) keep the split."""
    from geovigie.diagnostics._tracking import join_cut_pieces

    p1, profile, mask = passes["p1"], passes["profile"], passes["masks"]["S"]
    transform = profile["transform"]
    column = int((POINTS["S"][0] - transform.c) / transform.a)
    cut = np.zeros_like(mask)
    cut[:, column - 1: column + 1] = True
    cut &= mask
    p2 = p1.copy()
    p2[cut] = 255 if gap == "nodata" else 0
    path = passes["folder"] / f"cut-{gap}.tif"
    write_array_cog(path, p2[None], profile=profile)
    current = extract(path, DATES[1])
    t1 = passes["tracked"][0]
    s_id = passes["ids"]["S"]
    footprint = t1.set_index("site_id").at[s_id, "geometry"]
    pieces = current[current.intersects(footprint)]
    assert len(pieces) == 2  # the column cuts S in two

    def observed(footprints: gpd.GeoSeries) -> np.ndarray:
        return observed_share(path, footprints)

    joined = join_cut_pieces(current, t1, observed)
    tracked, _ = track(t1, joined, observed=observed)
    rows = tracked.set_index("site_id")
    if gap == "nodata":
        assert len(joined) == len(current) - 1
        one = joined[joined.intersects(footprint)]
        assert len(one) == 1 and one["area_m2"].iloc[0] == pytest.approx(pieces["area_m2"].sum())
        weights = pieces["area_m2"].to_numpy()
        assert one["mean_confidence"].iloc[0] == pytest.approx(np.average(pieces["mean_confidence"], weights=weights))
        assert one["max_confidence"].iloc[0] == pieces["max_confidence"].max()
        assert one.geometry.iloc[0].equals(pieces.union_all())
        assert rows.at[s_id, "status"] == "persisting" and "new" not in set(tracked["status"])
        assert alerts(tracked).empty
    else:  # fully observed: nothing joined, the second piece is a split (new), as on any clear pass
        assert len(joined) == len(current)
        split = tracked[tracked["track_note"].fillna("").str.startswith("split from")]
        assert split["track_note"].tolist() == [f"split from {s_id}"] and (split["status"] == "new").all()


def test_join_cut_pieces_without_a_previous_pass_or_sites(passes: dict) -> None:
    from geovigie.diagnostics._tracking import join_cut_pieces

    s1, t1 = passes["sites"][0], passes["tracked"][0]
    assert join_cut_pieces(s1, None, lambda f: np.ones(len(f))) is s1
    empty = s1.iloc[0:0]
    assert join_cut_pieces(empty, t1, lambda f: np.ones(len(f))) is empty
