// The UI's entry point: routes paths to pages, intercepts app links, keyboard shortcuts.

import { BASE, errorText, h } from "./lib.js";
import { currentPath, navigate, setNavigationHandler } from "./router.js";
import { jobPage, locationPage, locationsPage } from "./locations.js";
import { runPage, runsPage } from "./runs.js";
import { assetsPage, schedulesPage, sensorsPage } from "./catalog.js";

const ROUTES = [
  [/^\/(?:locations)?$/, locationsPage, "locations", "Locations"],
  [/^\/locations\/(?<name>[^/]+)$/, locationPage, "locations", "Location"],
  [/^\/locations\/(?<name>[^/]+)\/jobs\/(?<job>[^/]+)$/, jobPage, "locations", "Job"],
  [/^\/assets$/, assetsPage, "assets", "Assets"],
  [/^\/runs$/, runsPage, "runs", "Runs"],
  [/^\/runs\/(?<run_id>[^/]+)$/, runPage, "runs", "Run"],
  [/^\/schedules$/, schedulesPage, "schedules", "Schedules"],
  [/^\/sensors$/, sensorsPage, "sensors", "Sensors"],
];

let cleanup = null;
let generation = 0;

function setLive(state) {
  const el = document.getElementById("live");
  el.textContent = { live: "● live", reconnecting: "○ reconnecting…", closed: "○ disconnected", ended: "" }[state] ?? "";
}

async function show() {
  const mine = ++generation;
  if (cleanup) { try { cleanup(); } catch { /* already closed */ } cleanup = null; }
  setLive("");
  const main = document.getElementById("main");
  const path = currentPath();
  main.replaceChildren();
  for (const [pattern, page, nav, title] of ROUTES) {
    const match = pattern.exec(path);
    if (!match) continue;
    const params = Object.fromEntries(Object.entries(match.groups ?? {}).map(([k, v]) => [k, decodeURIComponent(v)]));
    document.title = `${title}${params.name ? " " + params.name : ""}${params.job ? " / " + params.job : ""} · runtime`;
    for (const a of document.querySelectorAll("[data-nav]")) {
      if (a.dataset.nav === nav) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
    }
    try {
      const done = await page(main, params, (state) => { if (mine === generation) setLive(state); });
      if (mine !== generation) { if (typeof done === "function") done(); return; }
      cleanup = typeof done === "function" ? done : null;
    } catch (err) {
      if (mine === generation) main.replaceChildren(h("h1", {}, title), h("div", { class: "error-box", role: "alert" }, errorText(err)));
    }
    return;
  }
  main.replaceChildren(h("h1", {}, "Not found"), h("p", {}, `Nothing at ${path}.`));
}

setNavigationHandler(show);
window.addEventListener("popstate", show);
document.addEventListener("click", (e) => {
  const a = e.target.closest?.("a");
  if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  const href = a.getAttribute("href");
  if (!href || !href.startsWith(BASE + "/") || href.startsWith(BASE + "/api/") || href.startsWith(BASE + "/static/")) return;
  e.preventDefault();
  const url = new URL(a.href);
  navigate(url.pathname.slice(BASE.length) + url.search);
  document.getElementById("main").focus({ preventScroll: true });
});

// "g" then a letter goes to a page, unless typing in a field.
let pendingG = false;
document.addEventListener("keydown", (e) => {
  if (e.target.closest?.("input, textarea, select, [contenteditable]") || e.ctrlKey || e.metaKey || e.altKey) return;
  if (pendingG) {
    pendingG = false;
    const to = { l: "/", a: "/assets", r: "/runs", s: "/schedules", e: "/sensors" }[e.key];
    if (to) { e.preventDefault(); navigate(to); }
    return;
  }
  if (e.key === "g") { pendingG = true; setTimeout(() => (pendingG = false), 1500); }
});

show();
