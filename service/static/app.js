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
      labels.innerHTML = `<span>${entry.min.toFixed(2)}${unit}</span><span>${entry.max.toFixed(2)}${unit}</span>`;
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

function toggle(info, on, item) {
  if (on && !active.has(info.id)) {
    const tiles = L.tileLayer(info.tiles[0], {
      bounds: boundsOf(info).pad(-0.001), maxZoom: 19, maxNativeZoom: 18, opacity: 0.9,
      attribution: info.title,
    }).addTo(map);
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
  const response = await fetch("/layers");
  const layers = await response.json();
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
    box.addEventListener("change", () => toggle(info, box.checked, item));
    item.append(box, label, zoom);
    list.appendChild(item);
  });
  const first = layers.find((l) => l.kind === "classes") || layers[0];
  if (first) {
    const item = list.querySelector(`[data-layer-id="${first.id}"]`);
    item.querySelector("input").checked = true;
    toggle(first, true, item);
    map.fitBounds(boundsOf(first));
  }
  document.body.dataset.ready = "true";
}

main().catch((error) => { console.error("could not load layers", error); });
