"""Write the user notebooks from the cells below (stored without outputs; CI executes them).

Usage: python notebooks/build_notebooks.py   (rewrites notebooks/*.ipynb)
Editing the .ipynb files directly works too; this script keeps them reviewable as plain Python.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent

SETUP = '''import tempfile
from pathlib import Path

from geovigie.settings import Settings

DATA = Settings().sample_data_path()          # the data/ folder of the checkout
WORK = Path(tempfile.mkdtemp(prefix="geovigie-notebook-"))
settings = Settings(data_dir=WORK / "geovigie-data")
print("sample data:", DATA, "| outputs:", settings.data_dir)'''

NOTEBOOKS: dict[str, list[tuple[str, str]]] = {
    "01_environmental_service_dump_sites.ipynb": [
        ("markdown", "# Dump sites of a pass, their history and the export for field teams\n\n"
                     "For an environmental service: every new pass gives the dump sites as polygons with area, "
                     "volume (from a surface and a terrain model), commune, and a status against the previous "
                     "pass (new / persisting / grown / shrunk / removed; « not observed » when the pass has no "
                     "data over the site: clouds, a swath edge).\n\n"
                     "**No labelled dump imagery ships with geovigie, so no dump detector is validated here.** "
                     "This notebook runs the pipeline on a *stand-in* layer (height above ground from IGN LiDAR "
                     "HD, Montpellier: buildings and trees, not dumps) to show the mechanics; every output says "
                     "`candidate`. With a bundle trained on your own field records, pass its probability COG "
                     "instead and `candidate=False`."),
        ("code", SETUP),
        ("code", "from datetime import date\n\nfrom geovigie import workflows\n\n"
                 "dsm, dtm, standin = workflows.lidar_models(DATA, WORK / 'inputs')\n"
                 "first = workflows.dump_sites(standin, settings, watch='montpellier', pass_date=date(2024, 5, 1),\n"
                 "                             candidate=True, threshold=0.2, dsm=dsm, dtm=dtm)\n"
                 "first.sites[['site_id', 'status', 'area_m2', 'volume_m3', 'height_max_m', 'volume_note']]"
                 ".head(10)"),
        ("markdown", "## A second pass\n\nThe second pass is the same layer with the largest site cleared, as a "
                     "clean-up would do: that site is reported `removed`, the others `persisting`."),
        ("code", "import rasterio\nfrom rasterio.features import geometry_mask\n\n"
                 "largest = first.sites.sort_values('area_m2').iloc[-1]\n"
                 "with rasterio.open(standin) as src:\n"
                 "    data, profile = src.read(), src.profile\n"
                 "    inside = ~geometry_mask([largest.geometry.buffer(1.0)], out_shape=data.shape[1:], "
                 "transform=src.transform)\n"
                 "data[0][inside & (data[0] != 255)] = 0\n"
                 "profile.update(driver='GTiff')\n"
                 "with rasterio.open(WORK / 'pass2.tif', 'w', **profile) as dst:\n"
                 "    dst.write(data)\n\n"
                 "second = workflows.dump_sites(WORK / 'pass2.tif', settings, watch='montpellier',\n"
                 "                              pass_date=date(2024, 6, 1), candidate=True, threshold=0.2,\n"
                 "                              dsm=dsm, dtm=dtm)\n"
                 "assert (second.sites.loc[second.sites.site_id == largest.site_id, 'status'] == 'removed').all()\n"
                 "second.sites['status'].value_counts()"),
        ("markdown", "## What the field team gets\n\nGeoJSON (WGS84), GeoPackage (Lambert-93) and a CSV with "
                     "centroids, plus the alert list (new or grown since the last pass) and the history."),
        ("code", "import pandas as pd\n\nfor name, path in second.files.items():\n"
                 "    print(f'{name:12s} {path.name}')\n"
                 "pd.read_csv(second.files['csv'])[['site_id', 'status', 'area_m2', 'volume_m3', "
                 "'centroid_lat', 'centroid_lon']].head()"),
        ("code", "ax = second.sites.plot(column='status', legend=True, figsize=(6, 5), edgecolor='black')\n"
                 "ax.set_title('Candidate sites, pass 2024-06-01 (stand-in layer)');"),
    ],
    "02_planner_zan.ipynb": [
        ("markdown", "# ZAN: hectares artificialised and renaturalised, with and without minimum mapping units\n\n"
                     "For a planner: two class maps (here IGN's real 2016 and 2019 land-cover labels of two 256 m "
                     "patches in the Gers, 0.25 m) and a declared mapping of classes to artificial / not "
                     "artificial (`odeon-naf`, OCS GE style) give the land take per zone. MMUs (200 m² buildings, "
                     "500 m² other features) are applied to change patches; both results are shown. The reference "
                     "consumption table used here is **illustrative** (no official table ships)."),
        ("code", SETUP),
        ("code", "from datetime import date\n\nimport geopandas as gpd\n\nfrom geovigie import workflows\n"
                 "from geovigie.diagnostics import load_mapping\n\n"
                 "mapping = load_mapping('odeon-naf')\n"
                 "print('building:', sorted(mapping.building), 'other artificial:', sorted(mapping.artificial))\n"
                 "before, after, patches = workflows.odeon_mosaics(DATA, WORK / 'inputs')\n"
                 "result = workflows.zan(before, after, settings, place='gers-odeon', zones=gpd.read_file(patches),\n"
                 "                       start=date(2016, 7, 1), end=date(2019, 7, 1), mapping='odeon-naf',\n"
                 "                       reference=DATA / 'odeon-change-labels-2016-2019' / "
                 "'reference_consumption_ILLUSTRATIVE.csv')\n"
                 "result.table[['zone_name', 'artificialised_m2', 'artificialised_m2_no_mmu', 'renaturalised_m2',\n"
                 "              'net_ha_per_year', 'target_ha_per_year_2021_2031', 'measured_vs_target', "
                 "'illustrative']]"),
        ("markdown", "## The change map\n\nRed: artificialised (here stabilised permeable surfaces along a track), "
                     "green: renaturalised; MMUs applied."),
        ("code", "from IPython.display import Image\n\nfrom geovigie.diagnostics import CHANGE_CLASSES, "
                 "raster_map_png\n\n"
                 "Image(raster_map_png(result.mmu.path, title='ZAN change 2016-2019 (MMU applied)',\n"
                 "                     zones=gpd.read_file(patches),\n"
                 "                     legend=[(c.value, c.name, c.color) for c in CHANGE_CLASSES]))"),
    ],
    "03_climate_officer_heat_islands.ipynb": [
        ("markdown", "# Urban heat islands of Münster, per 1 km cell\n\n"
                     "For a climate officer: Landsat land surface temperature (°C) minus a rural reference (median "
                     "LST of forest and meadow pixels, from the author's land-use map, in a 1–5 km ring around the "
                     "built-up core) gives the heat-island intensity; hot-spot classes and per-zone figures follow."),
        ("code", SETUP),
        ("code", "import geopandas as gpd\n\nfrom geovigie import workflows\n"
                 "from geovigie.catalog.samples import MUENSTER, build_sample_catalog\n"
                 "from geovigie.catalog.stac import CatalogClient\n\n"
                 "build_sample_catalog(DATA, settings.catalog_dir)\n"
                 "summer = next(i for i in CatalogClient.open(settings.catalog_dir).search(collections=[MUENSTER])"
                 " if '20240813' in i.id)\n"
                 "extra = DATA / 'landsat-lst-muenster-extra'\n"
                 "result = workflows.heat_islands(summer, settings, "
                 "urban=gpd.read_file(extra / 'muenster_urban_core.geojson'),\n"
                 "                                place='muenster', rural_mask=extra / "
                 "'classification_rf_derived.tif', rural_classes=[3, 4])\n"
                 "print(result.summary.method)\n"
                 "result.summary.table()"),
        ("code", "result.zone_table.sort_values('mean', ascending=False).head(10)[['zone_id', 'mean', 'p90', "
                 "'valid_fraction']]"),
        ("code", "ax = result.zones.plot(column='mean', cmap='YlOrRd', legend=True, figsize=(7, 6),\n"
                 "                        legend_kwds={'label': 'intensity, °C above the rural reference'})\n"
                 "ax.set_title('Heat-island intensity per 1 km cell, 2024-08-13');"),
    ],
}


def build() -> list[Path]:
    """Write every notebook; return their paths."""
    written = []
    for name, cells in NOTEBOOKS.items():
        book = nbformat.v4.new_notebook()
        book.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        book.cells = [nbformat.v4.new_markdown_cell(text) if kind == "markdown" else nbformat.v4.new_code_cell(text)
                      for kind, text in cells]
        path = HERE / name
        nbformat.write(book, path)
        written.append(path)
    return written


if __name__ == "__main__":
    for path in build():
        print(path)
