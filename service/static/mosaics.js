// Mosaics panel of the map page: each mosaic of `/mosaics` (the newest pass of a collection or a product on top)
// with a pass slider (0 = every pass, newest on top; then one pass at a time, newest first) and an opacity slider.
// Tile URLs are read from `/mosaics` and the pass is sent as `?datetime=<day>`. Absent (static catalog): hidden.
"use strict";

import { formatDate, getLang } from "./i18n.js";

const TEXT = {
  mosaics: ["Mosaïques (dernier passage)", "Mosaics (latest pass)"],
  latest: ["tous, le plus récent au-dessus", "all, newest on top"],
  pass: ["Passage", "Pass"],
  opacity: ["Opacité", "Opacity"],
};
const say = (key) => TEXT[key][getLang() === "en" ? 1 : 0];
const day = (instant) => instant.slice(0, 10);

function make(tag, attrs = {}, text) {
  const made = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) made.setAttribute(key, value);
  if (text !== undefined) made.textContent = text;
  return made;
}

function tilesAt(mosaic, index) {
  // index 0: no datetime (every pass, newest on top); i > 0: the day of pass i - 1
  if (index === 0) return mosaic.tiles;
  const separator = mosaic.tiles[0].includes("?") ? "&" : "?";
  return [`${mosaic.tiles[0]}${separator}datetime=${encodeURIComponent(day(mosaic.passes[index - 1]))}`];
}

function draw(map, entry) {
  const source = `mosaic-${entry.mosaic.id}`;
  if (map.getLayer(source)) map.removeLayer(source);
  if (map.getSource(source)) map.removeSource(source);
  if (!entry.active) return;
  const options = { type: "raster", tiles: tilesAt(entry.mosaic, entry.index), tileSize: 256, maxzoom: 19 };
  if (entry.mosaic.bounds) {
    // drawn in by 0.1 %: no tile is asked for that only touches the edge (the tiler answers 404 there)
    const [w, s, e, n] = entry.mosaic.bounds;
    const [dx, dy] = [(e - w) * 0.001, (n - s) * 0.001];
    options.bounds = [w + dx, s + dy, e - dx, n - dy];
  }
  map.addSource(source, options);
  map.addLayer({ id: source, type: "raster", source,
    paint: { "raster-opacity": entry.opacity, "raster-fade-duration": 0 } }, "slot-raster");
}

function ramp(legend) {
  const entry = (legend || [])[0];
  if (!entry || !entry.colors) return null;
  const bar = make("div", { class: "mosaic-ramp" });
  bar.style.background = `linear-gradient(to right, ${entry.colors.join(", ")})`;
  bar.style.height = "8px";
  const row = make("div", { class: "pass" }, `${entry.min} – ${entry.max} ${entry.unit || ""}`);
  row.prepend(bar);
  return row;
}

function item(map, entry, rerender) {
  const { mosaic } = entry;
  const box = make("div", { class: "layer mosaic" });
  box.dataset.mosaicId = mosaic.id;
  const label = make("label");
  const check = make("input", { type: "checkbox" });
  check.checked = entry.active;
  check.addEventListener("change", () => {
    entry.active = check.checked;
    draw(map, entry);
    if (entry.active && mosaic.bounds) {
      map.fitBounds([[mosaic.bounds[0], mosaic.bounds[1]], [mosaic.bounds[2], mosaic.bounds[3]]], { padding: 20 });
    }
    rerender();
  });
  label.append(check, ` ${mosaic.title}`);
  box.appendChild(label);
  const passes = mosaic.passes || [];
  const when = make("span", { class: "pass" });
  const shown = () => (entry.index === 0 ? say("latest") : formatDate(passes[entry.index - 1]));
  when.textContent = shown();
  if (passes.length > 1) {
    const slider = make("input", { type: "range", min: "0", max: String(passes.length), step: "1",
      value: String(entry.index), class: "time", "aria-label": `${say("pass")} — ${mosaic.title}` });
    slider.addEventListener("input", () => {
      entry.index = Number(slider.value);
      when.textContent = shown();
      draw(map, entry);
    });
    const row = make("div", { class: "row time-row" });
    row.append(make("span", { class: "what" }, say("pass")), slider, when);
    box.appendChild(row);
  } else if (passes.length === 1) {
    when.textContent = formatDate(passes[0]);
    box.appendChild(when);
  }
  if (entry.active) {
    const opacity = make("input", { type: "range", min: "0", max: "1", step: "0.05", value: String(entry.opacity),
      class: "opacity", "aria-label": `${say("opacity")} — ${mosaic.title}` });
    opacity.addEventListener("input", () => {
      entry.opacity = Number(opacity.value);
      if (map.getLayer(`mosaic-${mosaic.id}`)) {
        map.setPaintProperty(`mosaic-${mosaic.id}`, "raster-opacity", entry.opacity);
      }
    });
    const row = make("div", { class: "row" });
    row.append(make("span", { class: "what" }, say("opacity")), opacity);
    box.appendChild(row);
    const legend = ramp(mosaic.legend);
    if (legend) box.appendChild(legend);
  }
  return box;
}

/** Fill `section` with the mosaics of `/mosaics` (call it only when the service has them: the OpenAPI lists the
 * path); returns a function redrawing the panel (e.g. on a language change). */
export async function mountMosaics(map, section) {
  const response = await fetch("/mosaics");
  if (!response.ok) throw new Error(`/mosaics: HTTP ${response.status}`);
  // drawable as they come: passes, a default asset and a legend (the layers' products; imagery needs its bands and
  // a range named in the URL, which the API accepts but this page does not ask for)
  const entries = (await response.json()).filter((m) => (m.passes || []).length && m.assets.length
    && (m.legend || []).length)
    .map((mosaic) => ({ mosaic, active: false, index: 0, opacity: 0.85 }));
  const render = () => {
    section.hidden = entries.length === 0;
    section.replaceChildren(make("h2", {}, say("mosaics")), ...entries.map((entry) => item(map, entry, render)));
  };
  render();
  return render;
}
