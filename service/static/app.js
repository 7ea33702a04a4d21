// geovigie map page: lists the published layers, draws their XYZ tiles and legends.
"use strict";

const map = L.map("map", { zoomControl: true, attributionControl: true }).setView([46.5, 2.5], 5);
const active = new Map();

function legendBlock(layer) {
  const box = document.createElement("div");
  const title = document.createElement("h2");
  title.textContent = layer.title;
  box.appendChild(title);
  for (const entry of layer.legend) {
    const row = document.createElement("div");
    if (entry.colors) {
      const ramp = document.createElement("div");
      ramp.className = "ramp";
      ramp.style.background = `linear-gradient(to right, ${entry.colors.join(", ")})`;
      const labels = document.createElement("div");
      labels.className = "ramp-labels";
      const unit = entry.unit ? ` ${entry.unit === "celsius" ? "°C" : entry.unit}` : "";
      const low = document.createElement("span");
      const high = document.createElement("span");
      low.textContent = entry.min === null || entry.min === undefined ? "" : `${Number(entry.min).toFixed(2)}${unit}`;
      high.textContent = entry.max === null || entry.max === undefined ? "" : `${Number(entry.max).toFixed(2)}${unit}`;
      labels.append(low, high);
      if (entry.property) {
        const what = document.createElement("div");
        what.className = "ramp-property";
        what.textContent = entry.property;
        row.append(what);
      }
      row.append(ramp, labels);
    } else {
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = entry.color;
      row.append(swatch, document.createTextNode(entry.name));
      row.dataset.color = entry.color;
    }
    box.appendChild(row);
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
  const props = feature.properties || {};
  const keys = style && style.popup && style.popup.length ? style.popup : Object.keys(props);
  if (style && style.label && props[style.label] !== undefined) {
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
    row.insertCell().textContent = typeof value === "number" ? Number(value.toFixed(3)).toString() : String(value);
  }
  box.appendChild(table);
  return box;
}

async function vectorLayer(info, base) {
  const response = await fetch(info.features);
  const data = await response.json();
  const style = info.style || {};
  const legend = (info.legend || [])[0];
  let low = legend ? legend.min : null;
  let high = legend ? legend.max : null;
  if (style.color_by && (low === null || high === null)) {
    const values = data.features.map((f) => f.properties[style.color_by]).filter((v) => typeof v === "number");
    low = values.length ? Math.min(...values) : 0;
    high = values.length ? Math.max(...values) : 1;
    if (legend) { legend.min = low; legend.max = high; }
  }
  const colorOf = (feature) => {
    const value = style.color_by ? feature.properties[style.color_by] : null;
    if (style.color_by && typeof value !== "number") return "#cccccc";  // no figure: not observed
    if (typeof value !== "number" || !legend) return style.color || "#d7301f";
    return rampColor(legend.colors, high > low ? (value - low) / (high - low) : 0.5);
  };
  return L.geoJSON(data, {
    pane: base ? "basePane" : "overlayPane",
    interactive: !base,
    style: (feature) => base
      ? { color: "#7a7a7a", weight: 0.8, fill: false }
      : { color: "#333", weight: 1, fillColor: colorOf(feature), fillOpacity: 0.7 },
    pointToLayer: (feature, latlng) => L.circleMarker(latlng, { radius: 5 }),
    onEachFeature: (feature, layer) => { if (!base) layer.bindPopup(() => popupFor(feature, style)); },
    attribution: base ? "IGN Admin Express (Licence Ouverte)" : info.title,
  });
}

async function toggle(info, on, item) {
  if (on && !active.has(info.id)) {
    const tiles = info.kind === "vector" ? await vectorLayer(info, false) : L.tileLayer(info.tiles[0], {
      bounds: boundsOf(info).pad(-0.001), maxZoom: 19, maxNativeZoom: 18, opacity: 0.9,
      attribution: info.title,
    });
    tiles.addTo(map);
    active.set(info.id, { info, tiles });
    item.classList.add("active");
  } else if (!on && active.has(info.id)) {
    map.removeLayer(active.get(info.id).tiles);
    active.delete(info.id);
    item.classList.remove("active");
  }
  refreshLegend();
}

async function main() {
  map.createPane("basePane");
  map.getPane("basePane").style.zIndex = 350;
  L.control.scale({ imperial: false }).addTo(map);
  const response = await fetch("/layers");
  const all = await response.json();
  const isBase = (info) => info.id.startsWith("base-") || (info.style && info.style.base);
  for (const info of all.filter(isBase)) {
    (await vectorLayer(info, true)).addTo(map);
  }
  const layers = all.filter((info) => !isBase(info));
  const list = document.getElementById("layers");
  layers.forEach((info, index) => {
    const item = document.createElement("li");
    item.dataset.layerId = info.id;
    const box = document.createElement("input");
    box.type = "checkbox";
    box.id = `layer-${index}`;
    const label = document.createElement("label");
    label.htmlFor = box.id;
    label.textContent = info.title;
    const zoom = document.createElement("button");
    zoom.textContent = "zoom";
    zoom.title = "Zoom to this layer";
    zoom.addEventListener("click", () => { box.checked = true; toggle(info, true, item); map.fitBounds(boundsOf(info)); });
    if (info.description) item.title = info.description;
    box.addEventListener("change", () => toggle(info, box.checked, item));
    item.append(box, label, zoom);
    list.appendChild(item);
  });
  const first = layers.find((l) => l.kind === "classes") || layers[0];
  if (first) {
    const item = list.querySelector(`[data-layer-id="${first.id}"]`);
    item.querySelector("input").checked = true;
    await toggle(first, true, item);
    map.fitBounds(boundsOf(first));
  }
  document.body.dataset.ready = "true";
}

main().catch((error) => { console.error("could not load layers", error); });
