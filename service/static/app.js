// geovigie map page (MapLibre GL JS, vendored): published layers grouped by diagnostic, territory and pass, over an
// offline base (IGN boundaries, LiDAR hillshade) or, when reachable, IGN's base maps; a panel per commune / zone with
// its figures and a chart, a panel per dump site with its history and a feedback form, a jobs panel.
// Tile and feature URLs are always read from `/layers`; write endpoints are found in `/openapi.json` (absent: the
// form is hidden and says « indisponible »). Data from the server is only ever written with textContent.
"use strict";

import * as maplibregl from "./vendor/maplibre/maplibre-gl.mjs";
import { barChart } from "./chart.js";
import { mountMosaics } from "./mosaics.js";
import {
  HIDDEN_FIELDS, className, fieldLabel, formatDate, formatField, formatNumber, getLang, setLang, statusLabel, t,
  withUnit,
} from "./i18n.js";

const IGN_WMTS = "https://data.geopf.fr/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0&STYLE=normal"
  + "&TILEMATRIXSET=PM&TILEMATRIX={z}&TILEROW={y}&TILECOL={x}";
const IGN_BASES = {
  plan: { layer: "GEOGRAPHICALGRIDSYSTEMS.PLANIGNV2", format: "image/png", label: "Plan IGN" },
  ortho: { layer: "ORTHOIMAGERY.ORTHOPHOTOS", format: "image/jpeg", label: "Orthophotos IGN" },
};
const FRANCE = [[-5.2, 41.3], [9.6, 51.1]];
const SLOTS = ["slot-ign", "slot-context", "slot-raster", "slot-base", "slot-zones", "slot-sites"];
const GROUPS = [
  ["dumps", /^(dumps?|sites?)-/], ["zan", /^zan-/], ["vegetation", /^(ndvi|vegetation)-/],
  ["heat", /^(lst|uhi|heat)-/], ["landcover", /^(landcover|lc)-/], ["imagery", /./],
];
const DIAGNOSTICS = { "dump-sites": "dumps", zan: "zan", vegetation: "vegetation", "heat-island": "heat" };
const SERIES_NAMES = [
  [/^dumps?-/, (info) => (/candidate/i.test(info.title) ? "series_dumps_candidate" : "series_dumps")],
  [/^zan-zones-/, () => "series_zan_zones"], [/^zan-/, () => "series_zan"], [/^ndvi-/, () => "series_ndvi"],
  [/^vegetation-zones-/, () => "series_vegetation_zones"], [/^lst-/, () => "series_lst"],
  [/^uhi-zones-/, () => "series_uhi_zones"], [/^uhi-hotspots-/, () => "series_uhi_hotspots"],
  [/^uhi-/, () => "series_uhi"], [/^landcover-/, () => "series_landcover"],
];
const PREFIX = /^(dumps?|sites?|zan-zones|zan|ndvi|vegetation-zones|lst|uhi-zones|uhi-hotspots|uhi|heat|landcover|lc)-/;
const TERRITORIES = { gers: "Gers", muenster: "Münster", montpellier: "Montpellier", slovenia: "Slovénie" };
const STATUS_COLORS = { new: "#e31a1c", grown: "#8e0152", persisting: "#ff7f00", shrunk: "#fdbf6f",
  not_observed: "#6baed6", removed: "#8c8c8c" };
const FEEDBACK_COLORS = { confirmed: "#67000d", false_alarm: "#2c7fb8", cleaned: "#1a9850" };
const TASKS = ["landcover", "vegetation", "zan", "dumps", "heat"];
const KEY_STORE = "geovigie.apiKey";

const state = { layers: [], series: new Map(), data: new Map(), capabilities: {}, markers: new Map(), base: "offline",
  selection: null };
const $ = (id) => document.getElementById(id);

function element(tag, attrs = {}, text) {
  const made = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") made.className = value;
    else if (key in made && typeof value !== "string") made[key] = value;
    else made.setAttribute(key, value);
  }
  if (text !== undefined) made.textContent = text;
  return made;
}

function notice(text) {
  $("notice").appendChild(element("p", {}, text));
}

async function getJson(url, options) {
  const response = await fetch(url, options);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response.json();
}

const apiKey = () => localStorage.getItem(KEY_STORE) || "";

// ---------------------------------------------------------------- layers: group, territory, series (passes)

function groupOf(info) {
  const declared = info.diagnostic || (info.properties || {})["geovigie:diagnostic"];
  if (declared && DIAGNOSTICS[declared]) return DIAGNOSTICS[declared];
  return GROUPS.find(([, pattern]) => pattern.test(info.id))[0];
}

function territoryOf(info) {
  const rest = info.id.replace(PREFIX, "");
  return rest.split("-")[0] || rest;
}

const seriesKey = (info) => info.id.replace(/-\d{8}$/, "");

function seriesName(info) {
  const known = SERIES_NAMES.find(([pattern]) => pattern.test(info.id));
  const name = known ? t(known[1](info)) : info.title.replace(/\s\d{4}-\d{2}-\d{2}$/, "");
  // several series of one kind over one territory (three land-cover scenes): name what tells them apart
  const rest = seriesKey(info).replace(PREFIX, "").split("-").slice(1).join(" ");
  const twins = [...state.series.values()].filter((e) => e.territory === territoryOf(info)
    && e.group === groupOf(info) && e.key !== seriesKey(info) && SERIES_NAMES.find(([pattern]) => pattern.test(e.key)) === known);
  return known && twins.length && rest ? `${name} (${rest})` : name;
}

const isBase = (info) => info.id.startsWith("base-") || Boolean(info.style && info.style.base);
const isSites = (info) => groupOf(info) === "dumps" && info.kind === "vector";

function buildSeries(layers) {
  const series = new Map();
  for (const info of layers) {
    const key = seriesKey(info);
    if (!series.has(key)) {
      series.set(key, { key, group: groupOf(info), territory: territoryOf(info), passes: [], index: 0,
        active: false, opacity: info.kind === "vector" ? 0.75 : 0.85, shown: null, dates: [], dateIndex: -1 });
    }
    series.get(key).passes.push(info);
  }
  for (const entry of series.values()) {
    entry.passes.sort((a, b) => String(a.datetime).localeCompare(String(b.datetime)));
    entry.index = entry.passes.length - 1;  // the latest pass first
  }
  return series;
}

// ---------------------------------------------------------------- map

const map = new maplibregl.Map({
  container: "map",
  bounds: FRANCE,
  maxZoom: 20,
  attributionControl: { compact: false, customAttribution: "IGN Admin Express, LiDAR HD (Licence Ouverte Etalab)" },
  style: {
    version: 8, sources: {},
    layers: [{ id: "background", type: "background", paint: { "background-color": "#eef0ea" } },
      ...SLOTS.map((id) => ({ id, type: "background", layout: { visibility: "none" } }))],
  },
});
map.addControl(new maplibregl.NavigationControl({ showCompass: false }), "top-right");
map.addControl(new maplibregl.ScaleControl({ unit: "metric" }), "bottom-right");

function hatchImage() {
  // diagonal grey hatching: zones without data are hatched, never coloured as a value
  const size = 8;
  const canvas = document.createElement("canvas");
  canvas.width = canvas.height = size;
  const ctx = canvas.getContext("2d");
  ctx.strokeStyle = "#666666";
  ctx.lineWidth = 2;
  ctx.beginPath();
  ctx.moveTo(0, size);
  ctx.lineTo(size, 0);
  ctx.moveTo(-2, 2);
  ctx.lineTo(2, -2);
  ctx.moveTo(size - 2, size + 2);
  ctx.lineTo(size + 2, size - 2);
  ctx.stroke();
  return ctx.getImageData(0, 0, size, size);
}

function hexToRgb(hex) {
  return [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
}

function rampColor(colors, fraction) {
  const x = Math.min(1, Math.max(0, fraction)) * (colors.length - 1);
  const i = Math.min(colors.length - 2, Math.floor(x));
  const [a, b] = [hexToRgb(colors[i]), hexToRgb(colors[i + 1])];
  const mix = a.map((v, k) => Math.round(v + (b[k] - v) * (x - i)));
  return `#${mix.map((v) => v.toString(16).padStart(2, "0")).join("")}`;
}

function niceCeil(value) {
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  return [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10].map((m) => m * power).find((v) => v >= value - 1e-12);
}

// a zone without a figure: not covered, partly covered, or no value (never drawn as a value)
function zoneHasNoData(props, property) {
  if (props.status === "not_covered" || props.status === "partial") return true;
  if (props.covered_fraction === 0) return true;
  return Boolean(property) && !Number.isFinite(props[property]);
}

function siteStatusAt(props, date) {
  if (!date) return props.status;
  const history = props.status_history && typeof props.status_history === "object" ? props.status_history : {};
  if (!Object.keys(history).length) return props.status;
  if (history[date]) return history[date];
  const seen = Object.keys(history).sort();
  if (!seen.length || date < seen[0]) return null;  // not yet found
  return "removed";
}

function siteColor(props, status) {
  const feedback = props._feedback || props.feedback_status || props.feedback;
  if (feedback && FEEDBACK_COLORS[feedback]) return FEEDBACK_COLORS[feedback];
  return STATUS_COLORS[status] || "#e31a1c";
}

// colours computed here (not in the style): the legend, the panel and the map read the same numbers
function prepareVector(entry, info, data) {
  const style = info.style || {};
  const legend = (info.legend || [])[0];
  const property = style.color_by;
  const scale = { colors: null, min: null, max: null, unit: null, property, noData: 0 };
  if (isSites(info)) {
    const date = entry.dates.length ? entry.dates[entry.dateIndex] : null;
    data.features.forEach((feature, i) => {
      const props = feature.properties || (feature.properties = {});
      const status = siteStatusAt(props, date);
      props._fid = i;
      props._hidden = status === null;
      props._status = status || "";
      props._color = siteColor(props, status);
    });
    return scale;
  }
  if (property && legend && legend.colors) {
    const values = data.features.map((f) => f.properties || {})
      .filter((p) => !zoneHasNoData(p, property)).map((p) => p[property]);
    const dataMin = values.length ? Math.min(...values) : 0;
    const dataMax = values.length ? Math.max(...values) : 1;
    // ramps start at a meaningful value: 0 ha, share 0, NDVI 0, 0 °C above the rural reference
    // below 0 (a cell cooler than the rural reference) takes the first colour, and the legend says « ≤ 0 »
    scale.min = Number.isFinite(legend.min) ? legend.min : 0;
    scale.max = Number.isFinite(legend.max) ? legend.max : niceCeil(Math.max(dataMax, scale.min + 1e-9));
    scale.below = values.length > 0 && dataMin < scale.min;
    scale.above = values.length > 0 && dataMax > scale.max;
    scale.colors = legend.colors;
    scale.unit = legend.unit || style.unit;
  }
  data.features.forEach((feature, i) => {
    const props = feature.properties || (feature.properties = {});
    props._fid = i;
    props._nodata = zoneHasNoData(props, scale.colors ? property : null);
    if (props._nodata) scale.noData += 1;
    props._color = scale.colors && !props._nodata
      ? rampColor(scale.colors, (props[property] - scale.min) / (scale.max - scale.min || 1))
      : style.color || "#d7301f";
  });
  return scale;
}

function centroidOf(geometry) {
  // the centre of the bounding box of the largest ring: good enough for a label or a point at low zoom
  const rings = geometry.type === "Polygon" ? [geometry.coordinates[0]]
    : geometry.type === "MultiPolygon" ? geometry.coordinates.map((p) => p[0]) : null;
  if (!rings) return geometry.type === "Point" ? geometry.coordinates : null;
  let best = null;
  let bestArea = -1;
  for (const ring of rings) {
    const xs = ring.map((c) => c[0]);
    const ys = ring.map((c) => c[1]);
    const box = [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)];
    const area = (box[2] - box[0]) * (box[3] - box[1]);
    if (area > bestArea) [best, bestArea] = [[(box[0] + box[2]) / 2, (box[1] + box[3]) / 2], area];
  }
  return best;
}

async function allFeatures(url) {
  // a GeoJSON file, or OGC API Features pages followed through their `next` links (bounded)
  const first = await getJson(url);
  let page = first;
  for (let i = 0; i < 50; i += 1) {
    const next = (page.links || []).find((link) => link.rel === "next");
    if (!next) break;
    page = await getJson(new URL(next.href, url).href);
    first.features.push(...(page.features || []));
  }
  return first;
}

async function featuresOf(info) {
  if (!state.data.has(info.id)) {
    state.data.set(info.id, allFeatures(new URL(info.features, window.location.href).href).catch((error) => {
      state.data.delete(info.id);
      throw error;
    }));
  }
  return state.data.get(info.id);
}

const layerIds = (info) => [`${info.id}-fill`, `${info.id}-hatch`, `${info.id}-line`, `${info.id}-points`,
  `${info.id}-raster`].filter((id) => map.getLayer(id));

function pointsOf(data) {
  return { type: "FeatureCollection", features: data.features.filter((f) => f.geometry).map((f) => ({
    type: "Feature", properties: f.properties, geometry: { type: "Point", coordinates: centroidOf(f.geometry) },
  })).filter((f) => f.geometry.coordinates) };
}

async function addToMap(entry) {
  const info = entry.passes[entry.index];
  const opacity = entry.opacity;
  if (info.kind !== "vector") {
    // bounds drawn in by 0.1 %: no tile is asked for that only touches the layer's edge (the tiler answers 404)
    const [w, s, e, n] = info.bounds;
    const [dx, dy] = [(e - w) * 0.001, (n - s) * 0.001];
    map.addSource(info.id, { type: "raster", tiles: info.tiles, tileSize: 256, maxzoom: 19,
      bounds: [w + dx, s + dy, e - dx, n - dy] });
    map.addLayer({ id: `${info.id}-raster`, type: "raster", source: info.id,
      paint: { "raster-opacity": opacity, "raster-fade-duration": 0 } }, "slot-raster");
    return info;
  }
  const data = await featuresOf(info);
  if (!entry.active || entry.passes[entry.index] !== info) return null;  // switched off or moved while loading
  if (isSites(info)) {
    entry.dates = [...new Set(data.features.flatMap((f) => Object.keys((f.properties || {}).status_history || {})))]
      .sort();
    if (entry.dateIndex < 0 || entry.dateIndex >= entry.dates.length) {
      entry.dateIndex = Math.max(0, entry.dates.length - 1);  // the latest pass first
    }
  }
  entry.scale = prepareVector(entry, info, data);
  map.addSource(info.id, { type: "geojson", data });
  if (isSites(info)) {
    map.addSource(`${info.id}-centres`, { type: "geojson", data: pointsOf(data) });
    const visible = ["!", ["get", "_hidden"]];
    map.addLayer({ id: `${info.id}-fill`, type: "fill", source: info.id, filter: visible,
      paint: { "fill-color": ["get", "_color"], "fill-opacity": opacity } }, "slot-sites");
    map.addLayer({ id: `${info.id}-line`, type: "line", source: info.id, filter: visible,
      paint: { "line-color": ["get", "_color"], "line-width": 2.5,
        "line-dasharray": ["case", ["any", ["==", ["get", "_status"], "removed"], ["==", ["get", "_status"], "not_observed"]],
          ["literal", [2, 1]], ["literal", [1, 0]]] },
    }, "slot-sites");
    map.addLayer({ id: `${info.id}-points`, type: "circle", source: `${info.id}-centres`, maxzoom: 16,
      filter: visible, paint: { "circle-color": ["get", "_color"], "circle-radius": 7, "circle-stroke-width": 1.5,
        "circle-stroke-color": "#ffffff", "circle-opacity": Math.max(opacity, 0.6) } }, "slot-sites");
    return info;
  }
  const kind = (data.features.find((f) => f.geometry) || { geometry: { type: "" } }).geometry.type;
  if (kind.includes("LineString")) {
    map.addLayer({ id: `${info.id}-line`, type: "line", source: info.id,
      paint: { "line-color": ["get", "_color"], "line-width": 2.5, "line-opacity": opacity } }, "slot-zones");
    return info;
  }
  if (kind.includes("Point")) {
    map.addLayer({ id: `${info.id}-points`, type: "circle", source: info.id,
      paint: { "circle-color": ["get", "_color"], "circle-radius": 6, "circle-opacity": opacity } }, "slot-zones");
    return info;
  }
  map.addLayer({ id: `${info.id}-fill`, type: "fill", source: info.id, filter: ["!", ["get", "_nodata"]],
    paint: { "fill-color": ["get", "_color"], "fill-opacity": opacity } }, "slot-zones");
  map.addLayer({ id: `${info.id}-hatch`, type: "fill", source: info.id, filter: ["get", "_nodata"],
    paint: { "fill-pattern": "hatch", "fill-opacity": 0.85 } }, "slot-zones");
  map.addLayer({ id: `${info.id}-line`, type: "line", source: info.id,
    paint: { "line-color": "#333333", "line-width": 0.7, "line-opacity": 0.8 } }, "slot-zones");
  noDataLabels(info, data);
  return info;
}

function noDataLabels(info, data) {
  // « pas de données » written on the zones without a figure, where there are few enough to read them
  const empty = data.features.filter((f) => f.properties._nodata && f.geometry);
  if (!empty.length || empty.length > 40) return;
  const markers = empty.map((f) => new maplibregl.Marker({
    element: element("span", { class: "no-data-label" }, t("no_data")),
  }).setLngLat(centroidOf(f.geometry)).addTo(map));
  state.markers.set(info.id, markers);
  declutterLabels();
}

function declutterLabels() {
  // a « pas de données » label is shown only where it does not cover another one
  const kept = [];
  const frame = map.getContainer().getBoundingClientRect();
  for (const marker of [...state.markers.values()].flat()) {
    const label = marker.getElement();
    label.style.visibility = "visible";
    const box = label.getBoundingClientRect();
    const cut = box.left < frame.left || box.right > frame.right || box.top < frame.top || box.bottom > frame.bottom;
    const clash = cut || kept.some((o) => box.left < o.right && o.left < box.right && box.top < o.bottom && o.top < box.bottom);
    if (clash) label.style.visibility = "hidden";
    else kept.push(box);
  }
}

function removeFromMap(info) {
  for (const id of layerIds(info)) map.removeLayer(id);
  for (const id of [info.id, `${info.id}-centres`]) if (map.getSource(id)) map.removeSource(id);
  for (const marker of state.markers.get(info.id) || []) marker.remove();
  state.markers.delete(info.id);
}

async function refresh(entry, relist = true) {
  // draw `entry` as it should be now (on or off, at its pass); one layer of the series on the map at a time
  if (entry.shown) {
    removeFromMap(entry.shown);
    entry.shown = null;
  }
  if (entry.active) {
    try {
      entry.shown = await addToMap(entry);
    } catch (error) {
      entry.active = false;
      notice(t("layer_unavailable", seriesName(entry.passes[entry.index]), error.message));
    }
  }
  renderLegend();
  if (relist) renderLayerList();  // not while a pass slider is being dragged
}

function setOpacity(entry, value) {
  entry.opacity = value;
  if (!entry.shown) return;
  const paint = { raster: "raster-opacity", fill: "fill-opacity", line: "line-opacity", circle: "circle-opacity" };
  for (const id of layerIds(entry.shown)) {
    const layer = map.getLayer(id);
    if (id.endsWith("-hatch")) continue;
    if (layer.type === "line" && isSites(entry.shown)) continue;
    map.setPaintProperty(id, paint[layer.type], value);
  }
}

function recolourSites(entry) {
  const info = entry.shown;
  if (!info) return;
  state.data.get(info.id).then((data) => {
    prepareVector(entry, info, data);
    map.getSource(info.id).setData(data);
    map.getSource(`${info.id}-centres`).setData(pointsOf(data));
  });
}

// ---------------------------------------------------------------- base maps

function ignBase(name) {
  for (const key of Object.keys(IGN_BASES)) {
    if (map.getLayer(`ign-${key}`)) map.removeLayer(`ign-${key}`);
    if (map.getSource(`ign-${key}`)) map.removeSource(`ign-${key}`);
  }
  state.base = name;
  if (!IGN_BASES[name]) return;
  const base = IGN_BASES[name];
  map.addSource(`ign-${name}`, { type: "raster", tileSize: 256, maxzoom: 19,
    tiles: [`${IGN_WMTS}&LAYER=${base.layer}&FORMAT=${base.format}`],
    attribution: "© IGN – Géoplateforme" });
  map.addLayer({ id: `ign-${name}`, type: "raster", source: `ign-${name}` }, "slot-ign");
  state.ignLoaded = false;
}

function onMapError(event) {
  // an optional remote base map: when it cannot be reached, back to the offline base, once, quietly
  const source = event.sourceId || "";
  if (source.startsWith("ign-")) {
    if (state.ignLoaded || state.base !== source.slice(4)) return;
    ignBase("offline");
    $("base-offline").checked = true;
    notice(t("unreachable", IGN_BASES[source.slice(4)].label));
    return;
  }
  // a raster tile outside the layer's footprint (but inside its bounding box): the tiler answers 404, nothing to draw
  if (event.tile && event.error && event.error.status === 404) return;
  console.error(event.error || event);
}

async function drawBase(layers) {
  const basemap = await getJson("/static/basemap/basemap.json").catch(() => ({ images: [] }));
  for (const image of basemap.images) {
    map.addSource(image.id, { type: "image", url: image.url, coordinates: image.coordinates });
    map.addLayer({ id: image.id, type: "raster", source: image.id, paint: { "raster-opacity": 0.9 } },
      "slot-context");
  }
  for (const info of layers.filter(isBase)) {
    try {
      const data = await featuresOf(info);
      map.addSource(info.id, { type: "geojson", data });
      // a transparent fill: a click on a commune finds it; the line is the visible boundary
      map.addLayer({ id: `${info.id}-fill`, type: "fill", source: info.id,
        paint: { "fill-color": "#000000", "fill-opacity": 0 } }, "slot-base");
      map.addLayer({ id: `${info.id}-line`, type: "line", source: info.id,
        paint: { "line-color": "#6b6b6b", "line-width": info.id.includes("commune") ? 0.8 : 1.4,
          "line-opacity": 0.9 } }, "slot-base");
    } catch (error) {
      notice(t("layer_unavailable", info.title, error.message));
    }
  }
}

// ---------------------------------------------------------------- panel: layers and legend

function passLabel(info) {
  return info.datetime ? formatDate(info.datetime) : "";
}

function seriesItem(entry) {
  const info = entry.passes[entry.index];
  const item = element("li", { class: entry.active ? "active" : "" });
  item.dataset.series = entry.key;
  item.dataset.layerId = info.id;
  item.dataset.kind = info.kind;
  const id = `series-${entry.key}`;
  const box = element("input", { type: "checkbox", id, checked: entry.active });
  box.addEventListener("change", () => {
    entry.active = box.checked;
    refresh(entry);
  });
  const label = element("label", { for: id, title: info.title }, seriesName(info));
  const zoom = element("button", { type: "button", title: t("zoom_to"), class: "zoom" }, t("zoom"));
  zoom.addEventListener("click", () => {
    map.fitBounds([[info.bounds[0], info.bounds[1]], [info.bounds[2], info.bounds[3]]], { padding: 30, duration: 0 });
    if (!entry.active) {
      entry.active = true;
      refresh(entry);
    }
  });
  const head = element("div", { class: "row" });
  head.append(box, label, zoom);
  item.appendChild(head);
  const dates = isSites(info) && entry.dates.length > 1 ? entry.dates : null;
  const count = dates ? dates.length : entry.passes.length;
  const current = dates ? entry.dateIndex : entry.index;
  const when = element("span", { class: "pass" }, dates ? formatDate(dates[current]) : passLabel(info));
  if (count > 1) {
    const slider = element("input", { type: "range", min: "0", max: String(count - 1), step: "1",
      value: String(current), class: "time", "aria-label": `${t("pass")} — ${seriesName(info)}` });
    slider.addEventListener("input", () => {
      if (dates) {
        entry.dateIndex = Number(slider.value);
        when.textContent = formatDate(dates[entry.dateIndex]);
        recolourSites(entry);
        return;
      }
      entry.index = Number(slider.value);
      when.textContent = passLabel(entry.passes[entry.index]);
      item.dataset.layerId = entry.passes[entry.index].id;
      refresh(entry, false);
    });
    const time = element("div", { class: "row time-row" });
    time.append(element("span", { class: "what" }, t("pass")), slider, when);
    item.appendChild(time);
  } else if (when.textContent) {
    item.appendChild(when);
  }
  if (entry.active) {
    const opacity = element("input", { type: "range", min: "0", max: "1", step: "0.05", value: String(entry.opacity),
      class: "opacity", "aria-label": `${t("opacity")} — ${seriesName(info)}` });
    opacity.addEventListener("input", () => setOpacity(entry, Number(opacity.value)));
    const row = element("div", { class: "row" });
    row.append(element("span", { class: "what" }, t("opacity")), opacity);
    item.appendChild(row);
  }
  return item;
}

function renderLayerList() {
  const groups = new Map();
  for (const entry of state.series.values()) {
    if (!groups.has(entry.group)) groups.set(entry.group, new Map());
    const territories = groups.get(entry.group);
    if (!territories.has(entry.territory)) territories.set(entry.territory, []);
    territories.get(entry.territory).push(entry);
  }
  const open = new Set([...document.querySelectorAll("#layers details[open]")].map((d) => d.dataset.group));
  const blocks = [];
  for (const [group] of GROUPS) {
    if (!groups.has(group)) continue;
    const details = element("details", { class: "group" });
    details.dataset.group = group;
    if (open.has(group) || [...groups.get(group).values()].flat().some((e) => e.active)) details.open = true;
    details.appendChild(element("summary", {}, t(`group_${group}`)));
    for (const [territory, entries] of groups.get(group)) {
      const block = element("div", { class: "territory" });
      block.dataset.territory = territory;
      block.appendChild(element("h3", {}, TERRITORIES[territory] || territory));
      const list = element("ul", {});
      list.append(...entries.map(seriesItem));
      block.appendChild(list);
      details.appendChild(block);
    }
    blocks.push(details);
  }
  $("layers").replaceChildren(...blocks);
}

function rampBlock(scale) {
  const box = element("div", { class: "ramp-block" });
  if (scale.property) box.appendChild(element("div", { class: "ramp-property" }, fieldLabel(scale.property)));
  const ramp = element("div", { class: "ramp" });
  ramp.style.background = `linear-gradient(to right, ${scale.colors.join(", ")})`;
  const labels = element("div", { class: "ramp-labels" });
  const mid = (scale.min + scale.max) / 2;
  const digits = scale.max - scale.min < 5 ? 2 : 1;
  const marks = [scale.below ? "≤\u00a0" : "", "", scale.above ? "≥\u00a0" : ""];
  [scale.min, mid, scale.max].forEach((value, i) => {
    labels.appendChild(element("span", {}, marks[i] + withUnit(formatNumber(value, digits), scale.unit)));
  });
  box.append(ramp, labels);
  return box;
}

function swatch(color, name, pattern) {
  const row = element("div", { class: "legend-row" });
  const mark = element("span", { class: pattern ? "swatch hatch" : "swatch" });
  if (!pattern) mark.style.background = color;
  row.dataset.color = color || "";
  row.append(mark, document.createTextNode(name));
  return row;
}

function legendBlock(entry) {
  const info = entry.shown;
  const box = element("div", { class: "legend-block" });
  box.dataset.layerId = info.id;
  box.appendChild(element("h3", {}, `${seriesName(info)} — ${TERRITORIES[entry.territory] || entry.territory}`));
  if (info.datetime) box.appendChild(element("div", { class: "legend-date" }, passLabel(info)));
  if (isSites(info)) {
    for (const [status, color] of Object.entries(STATUS_COLORS)) box.appendChild(swatch(color, statusLabel(status)));
    for (const [feedback, color] of Object.entries(FEEDBACK_COLORS)) {
      box.appendChild(swatch(color, `${t("feedback_short")} : ${t(`feedback_${feedback}`)}`));
    }
    return box;
  }
  if (info.kind === "vector") {
    const scale = entry.scale || {};
    if (scale.colors) box.appendChild(rampBlock(scale));
    else box.appendChild(swatch((info.style && info.style.color) || "#d7301f", seriesName(info)));
    if (scale.noData || scale.colors) box.appendChild(swatch(null, t("no_data"), true));
    box.appendChild(zonePicker(info));
    return box;
  }
  for (const item of info.legend || []) {
    if (item.colors) {
      box.appendChild(rampBlock({ colors: item.colors, min: item.min, max: item.max, unit: item.unit || info.unit }));
    } else {
      box.appendChild(swatch(item.color, className(item.name)));
    }
  }
  return box;
}

function zonePicker(info) {
  // the keyboard way to a zone's panel (the map itself needs a pointer): a list of the layer's zones by name
  const picker = element("select", { class: "zone-picker", "aria-label": `${t("zone_pick")} — ${seriesName(info)}` });
  picker.appendChild(element("option", { value: "" }, t("zone_pick")));
  const data = state.data.get(info.id);
  if (data) {
    data.then((loaded) => {
      const zones = loaded.features.map((f) => f.properties || {}).filter((p) => p.zone_id !== undefined)
        .sort((a, b) => String(a.zone_name).localeCompare(String(b.zone_name), getLang()));
      for (const p of zones) picker.appendChild(element("option", { value: String(p.zone_id) }, String(p.zone_name)));
      if (!zones.length) picker.hidden = true;
    });
  }
  picker.addEventListener("change", async () => {
    if (!picker.value) return;
    const loaded = await state.data.get(info.id);
    const feature = loaded.features.find((f) => String((f.properties || {}).zone_id) === picker.value);
    const centre = feature && feature.geometry ? centroidOf(feature.geometry) : null;
    state.clicked = centre ? new maplibregl.LngLat(centre[0], centre[1]) : null;
    await openZone(picker.value);
  });
  return picker;
}

function renderLegend() {
  const shown = [...state.series.values()].filter((e) => e.active && e.shown);
  $("legend").replaceChildren(...shown.map(legendBlock));
}

// ---------------------------------------------------------------- panel: a commune / zone

function figuresTable(props) {
  const table = element("table", { class: "figures" });
  for (const [key, value] of Object.entries(props)) {
    if (key.startsWith("_") || HIDDEN_FIELDS.has(key) || (value !== null && typeof value === "object")) continue;
    const row = table.insertRow();
    row.dataset.field = key;
    row.insertCell().textContent = fieldLabel(key);
    row.insertCell().textContent = formatField(key, value);
  }
  return table;
}

async function zoneLayers() {
  // every published vector layer of figures per zone (not base layers, not sites), its features loaded
  const layers = state.layers.filter((i) => i.kind === "vector" && !isBase(i) && !isSites(i));
  const loaded = await Promise.all(layers.map((info) => featuresOf(info).then((data) => [info, data],
    () => [info, { features: [] }])));
  return loaded;
}

async function openZone(zoneId, fallbackName) {
  const matches = [];
  for (const [info, data] of await zoneLayers()) {
    const feature = data.features.find((f) => String((f.properties || {}).zone_id) === String(zoneId));
    if (feature) matches.push([info, feature.properties]);
  }
  const name = (matches[0] && matches[0][1].zone_name) || fallbackName || zoneId;
  const body = [element("h2", {}, String(name)), element("p", { class: "sub" }, `${fieldLabel("zone_id")} ${zoneId}`)];
  const charts = zoneCharts(matches);
  body.push(...charts);
  if (!matches.length) body.push(element("p", {}, t("no_figures")));
  for (const [info, props] of matches) {
    const section = element("section", { class: "zone-layer" });
    section.dataset.layerId = info.id;
    section.appendChild(element("h3", {}, `${seriesName(info)}${info.datetime ? ` — ${passLabel(info)}` : ""}`));
    if (zoneHasNoData(props, (info.style || {}).color_by)) {
      section.appendChild(element("p", { class: "no-data-note" }, t("no_data_long")));
    }
    section.appendChild(figuresTable(props));
    body.push(section);
  }
  showDetails("zone", zoneId, body);
}

function zoneCharts(matches) {
  const charts = [];
  const by = (group) => matches.filter(([info]) => groupOf(info) === group)
    .sort(([a], [b]) => String(a.datetime).localeCompare(String(b.datetime)));
  const noData = (info, props) => zoneHasNoData(props, (info.style || {}).color_by);
  const vegetation = by("vegetation");
  if (vegetation.length) {
    const rows = vegetation.flatMap(([info, p]) => {
      const when = vegetation.length > 1 ? ` ${passLabel(info)}` : "";
      const value = (v) => (noData(info, p) || !Number.isFinite(v) ? null : v * 100);
      return [{ label: `${t("dense")}${when}`, value: value(p.dense_vegetation_share), color: "#1a9850" },
        { label: `${t("sparse")}${when}`, value: value(p.sparse_vegetation_share), color: "#a6d96a" }];
    });
    charts.push(barChart(t("chart_veg"), rows, "%", 1));
  }
  const zan = by("zan");
  if (zan.length) {
    const rows = zan.flatMap(([info, p]) => {
      const value = (v) => (noData(info, p) || !Number.isFinite(v) ? null : v);
      return [{ label: t("measured"), value: value(p.artificialised_ha_per_year), color: "#cb181d" },
        { label: t("reference"), value: Number.isFinite(p.reference_ha_per_year_2011_2021)
          ? p.reference_ha_per_year_2011_2021 : null, color: "#969696" },
        { label: t("target"), value: Number.isFinite(p.target_ha_per_year_2021_2031)
          ? p.target_ha_per_year_2021_2031 : null, color: "#4a7ab5" }];
    });
    charts.push(barChart(t("chart_zan"), rows, "ha/an", 3));
  }
  const heat = by("heat");
  if (heat.length) {
    const rows = heat.map(([info, p]) => ({ label: passLabel(info),
      value: noData(info, p) || !Number.isFinite(p.mean) ? null : p.mean, color: "#e6550d" }));
    charts.push(barChart(t("chart_heat"), rows, "°C", 1));
  }
  return charts;
}

// ---------------------------------------------------------------- panel: a dump site

function siteEndpoint(entry, siteId, suffix = "") {
  // the watch is the dump layer's name after `dumps-`: it tells the site apart when an id is in several watches
  const watch = entry.shown ? entry.shown.id.replace(/^dumps?-/, "") : "";
  return `/sites/${encodeURIComponent(siteId)}${suffix}${watch ? `?watch=${encodeURIComponent(watch)}` : ""}`;
}

const authHeaders = () => (apiKey() ? { Authorization: `Bearer ${apiKey()}` } : {});

function historyList(props, remote) {
  const list = element("ol", { class: "history" });
  if (remote && Array.isArray(remote.history)) {
    for (const entry of remote.history) {
      const when = entry.time || entry.created_at || entry.date || entry.pass_date || entry.at || "";
      const what = entry.kind === "feedback" || FEEDBACK_COLORS[entry.status]
        ? `${t("feedback_short")} : ${t(`feedback_${entry.status}`)}` : statusLabel(entry.status || entry.kind || "");
      const who = entry.author ? ` (${entry.author})` : "";
      const comment = entry.comment ? ` — ${entry.comment}` : "";
      list.appendChild(element("li", {}, `${when ? formatDate(when) : ""} : ${what}${who}${comment}`));
    }
    return list;
  }
  const areas = props.area_history || {};
  for (const [date, status] of Object.entries(props.status_history || {}).sort()) {
    const area = Number.isFinite(areas[date]) ? ` — ${formatField("area_m2", areas[date])}` : "";
    list.appendChild(element("li", {}, `${formatDate(date)} : ${statusLabel(status)}${area}`));
  }
  return list;
}

function volumeText(props) {
  if (!Number.isFinite(props.volume_m3)) return formatField("volume_m3", null);
  const volume = formatField("volume_m3", props.volume_m3);
  const uncertainty = props.volume_uncertainty_m3 ?? props.volume_m3_uncertainty ?? props.volume_sd_m3;
  return Number.isFinite(uncertainty) ? t("volume_pm", volume, formatField("volume_m3", uncertainty))
    : t("volume_unknown_unc", volume);
}

function feedbackForm(entry, feature, after) {
  const box = element("section", { class: "feedback" });
  box.appendChild(element("h3", {}, t("feedback")));
  if (!state.capabilities.feedback) {
    box.appendChild(element("p", { class: "unavailable" }, t("feedback_unavailable")));
    return box;
  }
  if (!apiKey()) {
    box.appendChild(element("p", { class: "unavailable" }, t("feedback_needs_key")));
    return box;
  }
  const form = element("form", { id: "feedback-form" });
  const choices = element("fieldset", {});
  for (const value of Object.keys(FEEDBACK_COLORS)) {
    const id = `feedback-${value}`;
    const label = element("label", { for: id });
    label.append(element("input", { type: "radio", name: "status", value, id, required: true }),
      document.createTextNode(` ${t(`feedback_${value}`)}`));
    choices.appendChild(label);
  }
  const comment = element("textarea", { name: "comment", rows: "2", maxlength: "2000", "aria-label": t("comment"),
    placeholder: t("comment") });
  const result = element("p", { class: "result", role: "status" });
  form.append(choices, comment, element("button", { type: "submit" }, t("send")), result);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const status = form.querySelector("input[name=status]:checked").value;
    const response = await fetch(siteEndpoint(entry, feature.properties.site_id, "/feedback"), {
      method: "POST", headers: { "Content-Type": "application/json", ...authHeaders() },
      body: JSON.stringify({ status, comment: comment.value }),
    }).catch((error) => ({ ok: false, status: 0, statusText: error.message }));
    if (!response.ok) {
      result.textContent = response.status === 404 ? t("feedback_unavailable")
        : t("refused", `HTTP ${response.status}`);
      return;
    }
    feature.properties._feedback = status;
    recolourSites(entry);
    await after();
    $("details").querySelector(".feedback .result").textContent = t("sent");
  });
  box.appendChild(form);
  return box;
}

async function openSite(entry, feature) {
  const props = feature.properties;
  let remote = null;
  if (state.capabilities.site) {
    remote = await getJson(siteEndpoint(entry, props.site_id), { headers: authHeaders() }).catch(() => null);
    const stored = remote && remote.properties && remote.properties.feedback_status;
    if (stored && stored !== props._feedback) {
      props._feedback = stored;  // the feedback others gave: the site takes its colour
      recolourSites(entry);
    }
  }
  const status = props._status || props.status;
  const badge = element("span", { class: "badge" }, statusLabel(status));
  badge.style.background = siteColor(props, status);
  const title = element("h2", {}, `${t("site")} `);
  title.appendChild(badge);
  const facts = element("table", { class: "figures" });
  const add = (label, text, field) => {
    const row = facts.insertRow();
    row.dataset.field = field;
    row.insertCell().textContent = label;
    row.insertCell().textContent = text;
  };
  add(fieldLabel("volume_m3"), volumeText(props), "volume_m3");
  for (const [key, value] of Object.entries(props)) {
    if (key.startsWith("_") || HIDDEN_FIELDS.has(key) || key === "volume_m3" || key === "status") continue;
    if (value !== null && typeof value === "object") continue;
    add(fieldLabel(key), formatField(key, value), key);
  }
  const distances = Object.keys(props).filter((k) => /^dist_.+_m$/.test(k));
  const body = [title, element("p", { class: "sub" }, String(props.site_id))];
  if (!distances.length) {
    body.push(element("p", { class: "note" }, getLang() === "fr"
      ? "Distance aux zones sensibles : non calculée (aucune couche Natura 2000 / ZNIEFF / cours d'eau fournie)."
      : "Distance to sensitive zones: not computed (no Natura 2000 / ZNIEFF / water layer given)."));
  }
  body.push(facts, element("h3", {}, t("history")));
  if (!remote) body.push(element("p", { class: "note" }, t("history_unavailable")));
  body.push(historyList(props, remote));
  body.push(feedbackForm(entry, feature, () => openSite(entry, feature)));
  showDetails("site", props.site_id, body);
}

function showDetails(kind, id, body) {
  const panel = $("details");
  const close = element("button", { type: "button", class: "close", "aria-label": t("close") }, "×");
  close.addEventListener("click", () => {
    panel.hidden = true;
    state.selection = null;
  });
  panel.replaceChildren(close, ...body);
  panel.dataset.kind = kind;
  panel.dataset.id = String(id);
  const wasHidden = panel.hidden;
  panel.hidden = false;
  state.selection = { kind, id };
  if (wasHidden) {
    // the panel narrows the map: keep the place clicked in view
    map.resize();
    if (state.clicked && !map.getBounds().contains(state.clicked)) map.panTo(state.clicked, { duration: 0 });
  }
}

function onMapClick(event) {
  state.clicked = event.lngLat;
  const active = [...state.series.values()].filter((e) => e.shown);
  const siteLayers = active.filter((e) => isSites(e.shown)).flatMap((e) => layerIds(e.shown));
  const hits = siteLayers.length ? map.queryRenderedFeatures(event.point, { layers: siteLayers }) : [];
  if (hits.length) {
    const entry = active.find((e) => hits[0].layer.id.startsWith(`${e.shown.id}-`));
    state.data.get(entry.shown.id).then((data) => openSite(entry, data.features[hits[0].properties._fid]));
    return;
  }
  const zoneLayerIds = active.filter((e) => e.shown.kind === "vector").flatMap((e) => layerIds(e.shown));
  const baseIds = state.layers.filter(isBase).map((i) => `${i.id}-fill`).filter((id) => map.getLayer(id));
  const zones = map.queryRenderedFeatures(event.point, { layers: [...zoneLayerIds, ...baseIds] });
  const zone = zones.find((f) => f.properties.zone_id !== undefined)
    || zones.find((f) => f.layer.id.includes("commune"));
  if (zone) openZone(zone.properties.zone_id ?? zone.properties.code, zone.properties.zone_name ?? zone.properties.nom);
}

// ---------------------------------------------------------------- key and jobs

function renderKey() {
  const box = $("key");
  const input = element("input", { type: "password", id: "api-key", autocomplete: "off",
    "aria-label": t("key"), placeholder: t("key") });
  const save = element("button", { type: "button", id: "key-save" }, t("key_save"));
  const forget = element("button", { type: "button", id: "key-forget" }, t("key_forget"));
  save.addEventListener("click", () => {
    if (input.value.trim()) localStorage.setItem(KEY_STORE, input.value.trim());
    renderKey();
    renderJobs();
    reopen();
  });
  forget.addEventListener("click", () => {
    localStorage.removeItem(KEY_STORE);
    renderKey();
    renderJobs();
    reopen();
  });
  const row = element("div", { class: "row" });
  row.append(input, save, forget);
  box.replaceChildren(element("h2", {}, t("key")), row,
    element("p", { class: "note", id: "key-state" }, apiKey() ? t("key_set") : t("key_none")));
}

function renderJobs() {
  const box = $("jobs");
  const parts = [element("h2", {}, t("jobs"))];
  if (!state.capabilities.jobs) {
    parts.push(element("p", { class: "unavailable" }, t("jobs_unavailable")));
  } else if (!apiKey()) {
    parts.push(element("p", { class: "unavailable" }, t("jobs_needs_key")));
  } else {
    const form = element("form", { id: "job-form" });
    const territory = element("input", { name: "territory", required: true, value: "insee:32001",
      "aria-label": t("territory") });
    const period = element("input", { name: "period", required: true, value: "2018-01-01/2018-12-31",
      "aria-label": t("period") });
    const collection = element("input", { name: "collection", value: "s2-l2a-theia-gers",
      "aria-label": t("collection") });
    // zan / dumps inputs as the API takes them, e.g. {"dumps": {"height_model": "lidarhd-montpellier-ign"}}
    const inputs = element("textarea", { name: "inputs", rows: "3", "aria-label": t("job_inputs"),
      placeholder: '{"dumps": {"height_model": "lidarhd-montpellier-ign"}}' });
    const tasks = element("fieldset", {});
    tasks.appendChild(element("legend", {}, t("tasks")));
    for (const task of TASKS) {
      const label = element("label", {});
      label.append(element("input", { type: "checkbox", name: "tasks", value: task, checked: task === "vegetation" }),
        document.createTextNode(` ${t(`task_${task}`)}`));
      tasks.appendChild(label);
    }
    form.append(element("label", {}, t("territory")), territory, element("label", {}, t("period")), period,
      element("label", {}, t("collection")), collection, tasks, element("label", {}, t("job_inputs")), inputs,
      element("button", { type: "submit" }, t("submit")), element("div", { id: "job-status", role: "status" }));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const chosen = [...form.querySelectorAll("input[name=tasks]:checked")].map((i) => i.value);
      const body = { territory: territory.value.trim(), period: period.value.trim(), tasks: chosen };
      if (collection.value.trim()) body.collection = collection.value.trim();
      if (inputs.value.trim()) {
        let extra;
        try {
          extra = JSON.parse(inputs.value);
        } catch (error) {
          $("job-status").textContent = t("refused", `${t("job_inputs")}: ${error.message}`);
          return;
        }
        for (const name of ["zan", "dumps"]) if (extra && extra[name] !== undefined) body[name] = extra[name];
      }
      submitJob(body);
    });
    parts.push(form);
  }
  box.replaceChildren(...parts);
}

async function submitJob(body) {
  const status = $("job-status");
  const response = await fetch("/jobs", { method: "POST", body: JSON.stringify(body),
    headers: { "Content-Type": "application/json", ...authHeaders() } })
    .catch((error) => ({ ok: false, status: 0, statusText: error.message }));
  if (!response.ok) {
    // the service says why (422: which field): shown as text
    const detail = response.json ? await response.json().then((b) => JSON.stringify(b.detail), () => "") : "";
    status.textContent = response.status === 404 ? t("jobs_unavailable")
      : t("refused", `HTTP ${response.status} ${detail}`.trim());
    return;
  }
  const job = await response.json();
  pollJob(job.id, status);
}

async function pollJob(id, box) {
  const job = await getJson(`/jobs/${encodeURIComponent(id)}`, { headers: authHeaders() }).catch(() => null);
  if (!job) return;
  const progress = job.progress || {};
  const bar = element("progress", { max: String(progress.total || 1), value: String(progress.done || 0) });
  const line = element("p", { class: "job-line" }, `${t("job_state", id, job.state)} — ${formatNumber(
    progress.done || 0, 0)} / ${formatNumber(progress.total || 0, 0)} ${progress.unit || ""}`);
  const parts = [line, bar];
  const tiles = progress.tiles;
  if (tiles && Number.isFinite(tiles.total)) {  // the running inference, tile by tile
    parts.push(element("p", { class: "job-tiles" }, t("job_tiles", formatNumber(tiles.done || 0, 0),
      formatNumber(tiles.total, 0), String(tiles.item || ""))),
    element("progress", { class: "job-tiles", max: String(tiles.total || 1), value: String(tiles.done || 0) }));
  }
  const lines = Array.isArray(job.log) ? job.log.map(String) : String(job.log || "").split("\n");
  const log = element("pre", { class: "job-log" }, [...lines.slice(-5), job.error ? String(job.error) : ""]
    .filter(Boolean).join("\n"));
  const links = element("ul", { class: "job-links" });
  for (const link of Array.isArray(job.links) ? job.links : []) {
    const href = String(link.href || "");
    if (!/^(https?:\/\/|\/)/.test(href)) continue;
    links.appendChild(element("li", {})).appendChild(element("a", { href }, String(link.title || link.rel || href)));
  }
  box.replaceChildren(...parts, log, links);
  box.dataset.state = job.state;
  if (["queued", "running", "pending", "accepted"].includes(job.state)) {
    setTimeout(() => pollJob(id, box), 1000);
  } else {
    reloadLayers();
  }
}

// ---------------------------------------------------------------- start

async function capabilities() {
  // the write endpoints the service offers today (others may land later): read from its OpenAPI description
  const api = await getJson("/openapi.json").catch(() => ({ paths: {} }));
  const paths = api.paths || {};
  return {
    feedback: Boolean(paths["/sites/{site_id}/feedback"] && paths["/sites/{site_id}/feedback"].post),
    site: Boolean(paths["/sites/{site_id}"] && paths["/sites/{site_id}"].get),
    jobs: Boolean(paths["/jobs"] && paths["/jobs"].post),
    mosaics: Boolean(paths["/mosaics"] && paths["/mosaics"].get),
  };
}

async function reloadLayers() {
  const all = await getJson("/layers");
  const fresh = all.filter((info) => !isBase(info));
  const series = buildSeries(fresh);
  for (const [key, entry] of series) {
    const old = state.series.get(key);
    if (old) Object.assign(entry, { active: old.active, opacity: old.opacity, shown: old.shown, scale: old.scale });
  }
  state.layers = all;
  state.series = series;
  renderLayerList();
}

function reopen() {
  const selection = state.selection;
  if (!selection) return;
  if (selection.kind === "zone") openZone(selection.id);
  else if (selection.kind === "site") {
    for (const entry of state.series.values()) {
      if (!entry.shown || !isSites(entry.shown)) continue;
      state.data.get(entry.shown.id).then((data) => {
        const feature = data.features.find((f) => f.properties.site_id === selection.id);
        if (feature) openSite(entry, feature);
      });
    }
  }
}

function translatePage() {
  document.querySelectorAll("[data-i18n]").forEach((node) => { node.textContent = t(node.dataset.i18n); });
  $("lang").textContent = t("lang_switch");
  renderLayerList();
  renderLegend();
  renderKey();
  renderJobs();
  reopen();
}

async function reportBroken() {
  const ready = await getJson("/readyz");
  const broken = Object.keys(ready.broken || {});
  if (broken.length) notice(t("broken", broken.length, broken.join(", ")));
}

async function main() {
  setLang(getLang());
  $("lang").addEventListener("click", () => {
    setLang(getLang() === "fr" ? "en" : "fr");
    translatePage();
  });
  for (const name of ["offline", "plan", "ortho"]) {
    $(`base-${name}`).addEventListener("change", () => ignBase(name));
  }
  await new Promise((resolve) => (map.loaded() ? resolve() : map.once("load", resolve)));
  map.addImage("hatch", hatchImage(), { pixelRatio: 1 });
  state.capabilities = await capabilities();
  const all = await getJson("/layers");
  state.layers = all;
  state.series = buildSeries(all.filter((info) => !isBase(info)));
  translatePage();
  await drawBase(all);
  if (state.capabilities.mosaics) {  // the STAC API's database only (absent with the static catalog)
    const renderMosaics = await mountMosaics(map, $("mosaics")).catch((error) => {
      notice(t("layer_unavailable", "mosaics", error.message));
      return () => {};
    });
    $("lang").addEventListener("click", renderMosaics);
  }
  await reportBroken().catch(() => {});  // informative only
  map.on("click", onMapClick);
  map.on("error", onMapError);
  map.on("moveend", declutterLabels);
  map.on("resize", declutterLabels);
  map.on("sourcedata", (event) => {
    if (String(event.sourceId).startsWith("ign-") && event.tile) state.ignLoaded = true;
  });
  map.on("mousemove", (event) => {
    const ids = [...state.series.values()].filter((e) => e.shown && e.shown.kind === "vector")
      .flatMap((e) => layerIds(e.shown));
    map.getCanvas().style.cursor = ids.length && map.queryRenderedFeatures(event.point, { layers: ids }).length
      ? "pointer" : "";
  });
  // first view: the Gers communes (or the first territory published), with its vegetation per commune
  const home = all.find((i) => i.id === "base-communes-gers") || all.find((i) => !isBase(i));
  const first = [...state.series.values()].find((e) => e.group === "vegetation" && e.passes[0].kind === "vector")
    || [...state.series.values()][0];
  if (home) map.fitBounds([[home.bounds[0], home.bounds[1]], [home.bounds[2], home.bounds[3]]], { padding: 20,
    duration: 0 });
  if (first) {
    first.active = true;
    await refresh(first);
  }
  map.once("idle", () => { document.body.dataset.ready = "true"; });
  map.triggerRepaint();
}

window.geovigie = { map, state };  // for the browser tests and the curious
main().catch((error) => {
  notice(t("load_failed", error.message));
  console.error("could not load layers", error);
});
