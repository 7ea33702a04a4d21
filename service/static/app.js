// geovigie map page: lists the published layers, draws raster tiles and vector features with their legends,
// over an offline base (administrative boundaries published as `base-` layers) or, when reachable, IGN's base maps.
// Data from the server is only ever written with textContent: never innerHTML.
"use strict";

const IGN_WMTS = "https://data.geopf.fr/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0&STYLE=normal"
  + "&TILEMATRIXSET=PM&TILEMATRIX={z}&TILEROW={y}&TILECOL={x}";
const IGN_ATTRIBUTION = '© <a href="https://www.ign.fr/">IGN</a> – Géoplateforme';
const BASE_STYLE = { color: "#8c8c8c", weight: 0.8, opacity: 0.9, fill: false };
const NO_VALUE_COLOR = "#cccccc";

const map = L.map("map", { zoomControl: true, attributionControl: true }).setView([46.5, 2.5], 5);
const active = new Map();

function notice(text) {
  const box = document.getElementById("notice");
  const line = document.createElement("p");
  line.textContent = text;
  box.appendChild(line);
}

function unitLabel(unit) {
  if (!unit) return "";
  return ` ${unit === "celsius" ? "°C" : unit}`;
}

function formatValue(value) {
  return Number(value).toLocaleString("fr-FR", { maximumFractionDigits: 2 });
}

function rampRow(entry) {
  const row = document.createElement("div");
  if (entry.property) {
    const what = document.createElement("div");
    what.className = "ramp-property";
    what.textContent = entry.property;
    row.append(what);
  }
  const ramp = document.createElement("div");
  ramp.className = "ramp";
  ramp.style.background = `linear-gradient(to right, ${entry.colors.join(", ")})`;
  const labels = document.createElement("div");
  labels.className = "ramp-labels";
  const [low, high] = [document.createElement("span"), document.createElement("span")];
  const known = (v) => v !== null && v !== undefined;
  low.textContent = known(entry.min) ? `${formatValue(entry.min)}${unitLabel(entry.unit)}` : "";
  high.textContent = known(entry.max) ? `${formatValue(entry.max)}${unitLabel(entry.unit)}` : "";
  labels.append(low, high);
  row.append(ramp, labels);
  return row;
}

function swatchRow(color, name, className) {
  const row = document.createElement("div");
  const swatch = document.createElement("span");
  swatch.className = className;
  swatch.style.background = color;
  row.append(swatch, document.createTextNode(name));
  return row;
}

function legendBlock(layer) {
  const box = document.createElement("div");
  const title = document.createElement("h2");
  title.textContent = layer.title;
  box.appendChild(title);
  for (const entry of layer.legend) {
    if (entry.colors) {
      box.appendChild(rampRow(entry));
    } else {
      const row = swatchRow(entry.color, entry.name, "swatch");
      row.dataset.color = entry.color;
      box.appendChild(row);
    }
  }
  if (layer.kind === "vector" && !layer.legend.length) {
    box.appendChild(swatchRow((layer.style && layer.style.color) || "#d7301f", layer.title, "swatch vector"));
  }
  return box;
}

function refreshLegend() {
  const legend = document.getElementById("legend");
  legend.replaceChildren(...[...active.values()].map((a) => legendBlock(a.info)));
}

function boundsOf(info) {
  const [w, s, e, n] = info.bounds;
  return L.latLngBounds([s, w], [n, e]);
}

function hexToRgb(hex) {
  return [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
}

function rampColor(colors, t) {
  const x = Math.min(1, Math.max(0, t)) * (colors.length - 1);
  const i = Math.min(colors.length - 2, Math.floor(x));
  const [a, b] = [hexToRgb(colors[i]), hexToRgb(colors[i + 1])];
  const mix = a.map((v, k) => Math.round(v + (b[k] - v) * (x - i)));
  return `rgb(${mix.join(",")})`;
}

function popupFor(feature, style) {
  const box = document.createElement("div");
  box.className = "feature-popup";
  const props = feature.properties || {};
  const keys = style.popup && style.popup.length ? style.popup : Object.keys(props);
  if (style.label && props[style.label] !== undefined && props[style.label] !== null) {
    const title = document.createElement("strong");
    title.textContent = String(props[style.label]);
    box.appendChild(title);
  }
  const table = document.createElement("table");
  for (const key of keys) {
    if (!(key in props)) continue;
    const row = table.insertRow();
    row.insertCell().textContent = key;
    const value = props[key];
    row.insertCell().textContent = typeof value === "number" ? formatValue(value)
      : value === null ? "—" : typeof value === "object" ? JSON.stringify(value) : String(value);
  }
  box.appendChild(table);
  return box;
}

async function getJson(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response.json();
}

function colorScale(info, data) {
  const style = info.style || {};
  const legend = (info.legend || [])[0];
  if (!style.color_by || !legend) return () => style.color || "#d7301f";
  if (legend.min === null || legend.min === undefined || legend.max === null || legend.max === undefined) {
    const values = data.features.map((f) => (f.properties || {})[style.color_by]).filter(Number.isFinite);
    legend.min = values.length ? Math.min(...values) : 0;
    legend.max = values.length ? Math.max(...values) : 1;
  }
  const [low, high] = [legend.min, legend.max];
  return (feature) => {
    const value = (feature.properties || {})[style.color_by];
    if (!Number.isFinite(value)) return NO_VALUE_COLOR;  // no figure: not observed
    return rampColor(legend.colors, high > low ? (value - low) / (high - low) : 0.5);
  };
}

async function vectorLayer(info, base) {
  const data = await getJson(info.features);
  const style = info.style || {};
  const colorOf = colorScale(info, data);
  const drawn = (feature) => {
    const color = colorOf(feature);
    const kind = feature.geometry ? feature.geometry.type : "";
    if (kind.includes("LineString")) return { color, weight: 2.5, opacity: 0.9 };
    return { color: "#333333", weight: 1, opacity: 0.9, fillColor: color, fillOpacity: 0.7 };
  };
  return L.geoJSON(data, {
    pane: base ? "basePane" : "overlayPane",
    interactive: !base,
    style: (feature) => (base ? BASE_STYLE : drawn(feature)),
    pointToLayer: (feature, latlng) => L.circleMarker(latlng, { radius: 6 }),
    onEachFeature: (feature, layer) => { if (!base) layer.bindPopup(() => popupFor(feature, style)); },
  });
}

function rasterLayer(info) {
  return L.tileLayer(info.tiles[0], {
    bounds: boundsOf(info).pad(-0.001), maxZoom: 20, maxNativeZoom: 18, opacity: 0.9,
  });
}

async function toggle(info, on, item) {
  if (on && !active.has(info.id)) {
    const entry = { info, layer: null };
    active.set(info.id, entry);
    try {
      const layer = info.kind === "vector" ? await vectorLayer(info, false) : rasterLayer(info);
      if (active.get(info.id) !== entry) return;  // unchecked (or re-checked) while its features were loading
      layer.addTo(map);
      entry.layer = layer;
      item.classList.add("active");
    } catch (error) {
      if (active.get(info.id) === entry) active.delete(info.id);
      item.querySelector("input").checked = false;
      notice(`Couche « ${info.title} » indisponible : ${error.message}`);
    }
  } else if (!on && active.has(info.id)) {
    const { layer } = active.get(info.id);
    if (layer) map.removeLayer(layer);
    active.delete(info.id);
    item.classList.remove("active");
  }
  refreshLegend();
}

function ignLayer(name, format, offline, label) {
  const layer = L.tileLayer(`${IGN_WMTS}&LAYER=${name}&FORMAT=${format}`, {
    attribution: IGN_ATTRIBUTION, maxZoom: 20, maxNativeZoom: 19, minZoom: 2, pane: "ignPane",
  });
  let loaded = false;
  layer.on("tileload", () => { loaded = true; });
  layer.on("tileerror", () => {
    // an optional remote base map: when it cannot be reached, fall back to the offline base, once, quietly
    if (loaded || !map.hasLayer(layer)) return;
    map.removeLayer(layer);
    offline.addTo(map);
    notice(`${label} injoignable (hors ligne ?) : fond hors ligne affiché.`);
  });
  return layer;
}

function baseMaps() {
  const offline = L.layerGroup();
  const choices = {
    "Hors ligne (limites IGN Admin Express)": offline,
    "Plan IGN": ignLayer("GEOGRAPHICALGRIDSYSTEMS.PLANIGNV2", "image/png", offline, "Plan IGN"),
    "Photographies aériennes IGN": ignLayer("ORTHOIMAGERY.ORTHOPHOTOS", "image/jpeg", offline, "Orthophotos IGN"),
  };
  offline.addTo(map);  // the default: the page never depends on a remote server
  L.control.layers(choices, {}, { collapsed: true, position: "topright" }).addTo(map);
}

const isBase = (info) => info.id.startsWith("base-")
  || Boolean(info.style && (info.style.base || info.style["geovigie:base"]));

async function drawBaseLayers(all) {
  for (const info of all.filter(isBase)) {
    try {
      (await vectorLayer(info, true)).addTo(map);
    } catch (error) {
      notice(`Fond « ${info.title} » indisponible : ${error.message}`);
    }
  }
}

function listItem(info, index) {
  const item = document.createElement("li");
  item.dataset.layerId = info.id;
  item.dataset.kind = info.kind;
  const box = document.createElement("input");
  box.type = "checkbox";
  box.id = `layer-${index}`;
  const label = document.createElement("label");
  label.htmlFor = box.id;
  label.textContent = info.title;
  const zoom = document.createElement("button");
  zoom.type = "button";
  zoom.textContent = "zoom";
  zoom.title = "Zoom to this layer";
  zoom.addEventListener("click", () => { box.checked = true; toggle(info, true, item); map.fitBounds(boundsOf(info)); });
  if (info.description) item.title = info.description;
  box.addEventListener("change", () => toggle(info, box.checked, item));
  item.append(box, label, zoom);
  return item;
}

async function reportBroken() {
  const ready = await getJson("/readyz");
  const broken = Object.keys(ready.broken || {});
  if (broken.length) notice(`${broken.length} couche(s) illisible(s), ignorée(s) : ${broken.join(", ")}`);
}

async function main() {
  // under everything: IGN base tiles (150), then the boundaries (180), then data tiles (200) and features (400)
  map.createPane("ignPane").style.zIndex = 150;
  map.createPane("basePane").style.zIndex = 180;
  map.getPane("basePane").style.pointerEvents = "none";
  L.control.scale({ imperial: false }).addTo(map);
  baseMaps();
  const all = await getJson("/layers");
  await drawBaseLayers(all);
  const layers = all.filter((info) => !isBase(info));
  const list = document.getElementById("layers");
  list.replaceChildren(...layers.map(listItem));
  await reportBroken().catch(() => {});  // informative only
  const first = layers.find((l) => l.kind === "classes") || layers[0];
  if (first) {
    const item = list.querySelector(`[data-layer-id="${CSS.escape(first.id)}"]`);
    item.querySelector("input").checked = true;
    map.fitBounds(boundsOf(first));  // first: no tile is requested for the initial view of France
    await toggle(first, true, item);
  }
  document.body.dataset.ready = "true";
}

main().catch((error) => {
  notice(`Impossible de charger les couches : ${error.message}`);
  console.error("could not load layers", error);
});
