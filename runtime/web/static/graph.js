// SVG drawings: a left-to-right layered DAG (job steps, assets) and a Gantt chart of step times.

import { s, duration } from "./lib.js";

const NODE_H = 38, GAP_X = 56, GAP_Y = 14, PAD = 16, CHAR_W = 7.3;
export const MAX_NODES = 600;

/** Layers by longest path from a root; order in a layer by the mean position of upstreams. */
export function layout(nodes, edges) {
  const ids = new Set(nodes.map((n) => n.id));
  const ups = new Map(nodes.map((n) => [n.id, []]));
  for (const e of edges) if (ids.has(e.source) && ids.has(e.target)) ups.get(e.target).push(e.source);
  const layer = new Map();
  const visiting = new Set();
  const depth = (id) => {
    if (layer.has(id)) return layer.get(id);
    if (visiting.has(id)) return 0; // a cycle cannot reach us (definitions refuse them); stay safe
    visiting.add(id);
    const d = ups.get(id).length ? 1 + Math.max(...ups.get(id).map(depth)) : 0;
    visiting.delete(id);
    layer.set(id, d);
    return d;
  };
  nodes.forEach((n) => depth(n.id));
  const layers = [];
  for (const n of nodes) (layers[layer.get(n.id)] ??= []).push(n);
  const rank = new Map();
  layers.forEach((col) => col.forEach((n, i) => rank.set(n.id, i)));
  for (let sweep = 0; sweep < 3; sweep++) {
    for (const col of layers.slice(1)) {
      const score = (n) => {
        const u = ups.get(n.id);
        return u.length ? u.reduce((a, id) => a + rank.get(id), 0) / u.length : rank.get(n.id);
      };
      col.sort((a, b) => score(a) - score(b));
      col.forEach((n, i) => rank.set(n.id, i));
    }
  }
  const width = (n) => Math.min(280, Math.max(90, 24 + CHAR_W * n.label.length));
  const pos = new Map();
  let x = PAD;
  let height = 0;
  for (const col of layers) {
    const w = Math.max(...col.map(width));
    col.forEach((n, i) => {
      const y = PAD + i * (NODE_H + GAP_Y);
      pos.set(n.id, { x, y, w });
      height = Math.max(height, y + NODE_H + PAD);
    });
    x += w + GAP_X;
  }
  return { pos, width: x - GAP_X + PAD, height, ups };
}

/** An <svg> of the graph. nodes: [{id, label, kind, status}], edges: [{source, target}]. */
export function dagSvg(nodes, edges, { onSelect, selected } = {}) {
  const shown = nodes.slice(0, MAX_NODES);
  const { pos, width, height } = layout(shown, edges);
  const svg = s("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": `Graph of ${shown.length} nodes` });
  const edgeGroup = s("g", {});
  for (const e of edges) {
    const a = pos.get(e.source), b = pos.get(e.target);
    if (!a || !b) continue;
    const x1 = a.x + a.w, y1 = a.y + NODE_H / 2, x2 = b.x, y2 = b.y + NODE_H / 2;
    const mid = (x1 + x2) / 2;
    edgeGroup.append(s("path", { class: "edge", d: `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}`, "marker-end": "url(#arrow)" }));
  }
  svg.append(s("defs", {}, s("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 6, markerHeight: 6, orient: "auto-start-reverse" },
    s("path", { d: "M 0 0 L 10 5 L 0 10 z", fill: "currentColor", opacity: 0.6 }))));
  svg.append(edgeGroup);
  for (const n of shown) {
    const p = pos.get(n.id);
    const g = s("g", {
      class: `node s-${n.status ?? "none"}${selected === n.id ? " selected" : ""}`,
      transform: `translate(${p.x},${p.y})`, tabindex: 0, role: "button",
      "data-node": n.id, "aria-label": `${n.label}${n.status ? ", " + n.status : ""}`,
    });
    g.append(s("rect", { width: p.w, height: NODE_H, rx: 6 }));
    const label = n.label.length > 36 ? n.label.slice(0, 35) + "…" : n.label;
    g.append(s("text", { x: 10, y: 16 }, label));
    g.append(s("text", { x: 10, y: 30, class: "kind" }, n.kind ?? ""));
    g.append(s("title", {}, n.label));
    if (onSelect) {
      g.addEventListener("click", () => onSelect(n.id));
      g.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); onSelect(n.id); } });
    }
    svg.append(g);
  }
  return svg;
}

/** A Gantt chart: one bar per step from its start to its end (or `now` while it runs). */
export function ganttSvg(steps, now) {
  const started = steps.filter((st) => st.start !== null && st.start !== undefined);
  const labelW = 170, barH = 16, rowH = 24, top = 26, chartW = 620, right = 24;
  const height = top + Math.max(1, steps.length) * rowH + 8;
  const total = labelW + chartW + right;
  // Scales to the width of its box; the text scales with it.
  const svg = s("svg", { width: "100%", viewBox: `0 0 ${total} ${height}`, role: "img", "aria-label": "Timeline of step durations" });
  if (!started.length) {
    svg.append(s("text", { x: 10, y: 20 }, "No step has started yet."));
    return svg;
  }
  const t0 = Math.min(...started.map((st) => st.start));
  const t1 = Math.max(t0 + 0.001, ...started.map((st) => st.end ?? now));
  const span = t1 - t0;
  const x = (t) => labelW + ((t - t0) / span) * chartW;
  const axis = s("g", { class: "axis" });
  for (let i = 0; i <= 5; i++) {
    const t = t0 + (span * i) / 5;
    axis.append(s("line", { x1: x(t), x2: x(t), y1: top - 6, y2: height }));
    axis.append(s("text", { x: x(t), y: 14, "text-anchor": i === 0 ? "start" : i === 5 ? "end" : "middle" }, "+" + duration(t - t0)));
  }
  svg.append(axis);
  const ordered = [...steps].sort((a, b) => (a.start ?? Infinity) - (b.start ?? Infinity) || a.key.localeCompare(b.key));
  ordered.forEach((st, i) => {
    const y = top + i * rowH;
    const label = st.key.length > 26 ? st.key.slice(0, 25) + "…" : st.key;
    svg.append(s("text", { x: 4, y: y + 12 }, label));
    if (st.start === null || st.start === undefined) return;
    const end = st.end ?? now;
    const w = Math.max(2, x(end) - x(st.start));
    svg.append(s("rect", { class: `bar ${st.status}`, x: x(st.start), y, width: w, height: barH, rx: 3, "data-step": st.key },
      s("title", {}, `${st.key}: ${st.status}, ${duration(end - st.start)}`)));
  });
  return svg;
}
