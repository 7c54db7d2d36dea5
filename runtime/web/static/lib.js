// Shared helpers: building elements, calling the API, following event streams, formatting.

export const BASE = document.querySelector('meta[name="runtime-base"]')?.content ?? "";

/** An element: h("a", {href: "/x", class: "y"}, "text", child, ...). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs ?? {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

const SVG = "http://www.w3.org/2000/svg";
/** An SVG element, as h() for HTML. */
export function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs ?? {})) {
    if (value === null || value === undefined) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** A link inside the app (the router handles it without reloading the page). */
export function link(path, ...children) {
  return h("a", { href: BASE + path, "data-route": "" }, ...children);
}

export class ApiFailure extends Error {
  constructor(status, type, message, detail) {
    super(message);
    this.status = status;
    this.type = type;
    this.detail = detail;
  }
}

/** Call the API; resolves to {data, headers}, throws ApiFailure with the server's words. */
export async function call(path, { method = "GET", body } = {}) {
  const init = { method, headers: { accept: "application/json" }, credentials: "same-origin" };
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(BASE + path, init);
  } catch (err) {
    throw new ApiFailure(0, "NetworkError", `The server did not answer (${err.message}).`);
  }
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!response.ok) {
    const error = data?.error ?? {};
    throw new ApiFailure(response.status, error.type ?? `HTTP ${response.status}`,
      error.message ?? (text || response.statusText), error.detail);
  }
  return { data, headers: response.headers };
}

export async function api(path, options) {
  return (await call(path, options)).data;
}

/** Follow a Server-Sent Events stream; handlers by event name ("message" for data lines).
 * The stream is closed on "end" (so the browser does not reconnect) or by the returned function. */
export function follow(path, handlers, onState) {
  const source = new EventSource(BASE + path, { withCredentials: true });
  for (const [name, handler] of Object.entries(handlers)) {
    source.addEventListener(name, (e) => handler(e.data ? JSON.parse(e.data) : null, e));
  }
  source.addEventListener("end", () => { source.close(); onState?.("ended"); });
  source.onopen = () => onState?.("live");
  source.onerror = () => onState?.(source.readyState === EventSource.CLOSED ? "closed" : "reconnecting");
  return () => source.close();
}

export function toast(message, bad = false) {
  const box = document.getElementById("toasts");
  const el = h("div", { class: "toast" + (bad ? " bad" : ""), role: bad ? "alert" : "status" }, message);
  box.append(el);
  setTimeout(() => el.remove(), bad ? 9000 : 4000);
}

export function errorText(err) {
  return err instanceof ApiFailure ? `${err.type}: ${err.message}` : String(err);
}

const STATUS_CLASS = {
  SUCCESS: "ok", loaded: "ok", running: "ok", materialized: "ok", success: "ok",
  FAILURE: "bad", error: "bad", failure: "bad",
  STARTED: "run", STARTING: "run", IN_PROGRESS: "run", loading: "run", reloading: "run", CANCELING: "warn",
  CANCELED: "warn", SKIPPED: "warn", skipped: "warn",
};

export function badge(status) {
  return h("span", { class: `badge ${STATUS_CLASS[status] ?? ""}`, "data-status": status }, status.replaceAll("_", " "));
}

export function when(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  const d = new Date(seconds * 1000);
  const today = new Date().toDateString() === d.toDateString();
  return today ? d.toLocaleTimeString() : d.toLocaleString();
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return "–";
  if (seconds < 1) return `${(seconds * 1000).toFixed(seconds < 0.01 ? 2 : 0)} ms`;
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 2 : 1)} s`;
  const m = Math.floor(seconds / 60);
  if (m < 60) return `${m} min ${Math.round(seconds % 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

export function shortId(id) {
  return id.slice(0, 8);
}

export function enc(part) {
  return encodeURIComponent(part);
}

export function tagList(tags) {
  const entries = Object.entries(tags ?? {});
  if (!entries.length) return h("span", { class: "muted" }, "–");
  return h("span", { class: "tags" }, entries.map(([k, v]) => h("span", { class: "tag" }, `${k}=${v}`)));
}

/** An error of a location (type, message, hints, traceback) as a block a person reads. */
export function locationError(error, open = false) {
  return h("details", { class: "trace", open: open || null },
    h("summary", {}, `${error.type}: ${firstLine(error.message)}`),
    error.message.includes("\n") ? h("pre", {}, error.message) : null,
    (error.hints ?? []).map((hint) => h("div", { class: "hint" }, "hint: " + hint)),
    error.traceback ? h("pre", { class: "traceback" }, error.traceback) : null);
}

export function firstLine(text) {
  return (text ?? "").trim().split("\n")[0];
}
