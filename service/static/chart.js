// A small horizontal bar chart in SVG (no library): one bar per row, its value written beside it, a missing value
// written « pas de données » with no bar. Bars start at 0; a negative value draws left of the zero line.
"use strict";

import { getLang, t, withUnit } from "./i18n.js";

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 320;
const LABEL = 128;
const ROW = 22;

function node(name, attrs, text) {
  const element = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attrs)) element.setAttribute(key, String(value));
  if (text !== undefined) element.textContent = text;
  return element;
}

// rows: [{label, value (number or null), color}]; returns a <figure> holding the SVG and its caption
export function barChart(title, rows, unit, digits = 2) {
  const figure = document.createElement("figure");
  const fixed = new Intl.NumberFormat(getLang() === "fr" ? "fr-FR" : "en-GB",
    { minimumFractionDigits: digits, maximumFractionDigits: digits });
  figure.className = "chart";
  const finite = rows.map((r) => r.value).filter(Number.isFinite);
  const low = Math.min(0, ...finite);
  const high = Math.max(0, ...finite);
  const span = high - low || 1;
  const plot = WIDTH - LABEL - 84;
  const x = (v) => LABEL + ((v - low) / span) * plot;
  const height = rows.length * ROW + 8;
  const svg = node("svg", { viewBox: `0 0 ${WIDTH} ${height}`, width: WIDTH, height, role: "img",
    "aria-label": title });
  svg.appendChild(node("title", {}, title));
  rows.forEach((row, i) => {
    const y = 4 + i * ROW;
    const group = node("g", { class: "bar", "data-label": row.label, "data-value": row.value ?? "" });
    group.appendChild(node("text", { x: LABEL - 6, y: y + 14, "text-anchor": "end", class: "bar-label" },
      row.label));
    if (Number.isFinite(row.value)) {
      const [a, b] = [x(Math.min(0, row.value)), x(Math.max(0, row.value))];
      group.appendChild(node("rect", { x: a, y: y + 3, width: Math.max(1, b - a), height: ROW - 8,
        fill: row.color || "#4a7ab5" }));
      group.appendChild(node("text", { x: b + 4, y: y + 14, class: "bar-value" },
        withUnit(fixed.format(row.value), unit)));
    } else {
      group.appendChild(node("text", { x: x(0) + 4, y: y + 14, class: "bar-value no-data" }, t("no_data")));
    }
    svg.appendChild(group);
  });
  svg.appendChild(node("line", { x1: x(0), x2: x(0), y1: 2, y2: height - 2, stroke: "#555", "stroke-width": 1 }));
  const caption = document.createElement("figcaption");
  caption.textContent = title;
  figure.append(caption, svg);
  return figure;
}
