// Client-side navigation: links marked data-route change the page without a reload.

import { BASE } from "./lib.js";

let onNavigate = () => {};

export function setNavigationHandler(handler) {
  onNavigate = handler;
}

/** Show the page at `path` (without BASE); `replace` keeps the history entry. */
export function navigate(path, replace = false) {
  const url = BASE + path;
  if (replace) history.replaceState(null, "", url);
  else history.pushState(null, "", url);
  onNavigate();
}

/** The current path without BASE. */
export function currentPath() {
  const path = location.pathname;
  return (path.startsWith(BASE) ? path.slice(BASE.length) : path) || "/";
}
