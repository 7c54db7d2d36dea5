// Pages: the locations (live), one location, and a job with its step graph and the launchpad.

import { api, badge, duration, enc, errorText, firstLine, follow, h, link, locationError, toast, shortId } from "./lib.js";
import { dagSvg } from "./graph.js";
import { navigate } from "./router.js";

function count(list) {
  return h("td", { class: "num" }, String(list.length));
}

function locationRow(loc, onReload) {
  const reload = h("button", { class: "reload", "data-location": loc.name, onclick: () => onReload(loc.name, reload) },
    loc.status === "reloading" ? "Reloading…" : "Reload");
  if (loc.status === "reloading" || loc.status === "loading") reload.disabled = true;
  const rows = [h("tr", { "data-location": loc.name, class: "location" },
    h("td", {}, link(`/locations/${enc(loc.name)}`, loc.name), h("div", { class: "muted" }, loc.kind.replace("_", " "))),
    h("td", {}, badge(loc.status)),
    count(loc.jobs.filter((j) => !j.startsWith("__"))), count(loc.assets), count(loc.schedules), count(loc.sensors),
    h("td", { class: "mono muted" }, loc.pid ? `pid ${loc.pid}` : "–", loc.server_id ? h("div", {}, shortId(loc.server_id)) : null),
    h("td", { class: "num" }, duration(loc.load_time)),
    h("td", {}, reload))];
  if (loc.error) {
    rows.push(h("tr", { class: "location-error", "data-location": loc.name },
      h("td", { colspan: 9 }, locationError(loc.error, loc.status === "error"))));
  }
  return rows;
}

async function reloadLocation(name, button) {
  button.disabled = true;
  button.textContent = "Reloading…";
  try {
    const loc = await api(`/api/locations/${enc(name)}/reload`, { method: "POST" });
    toast(loc.status === "loaded" ? `Reloaded ${name}.` : `${name} is ${loc.status}: ${firstLine(loc.error?.message)}`, loc.status !== "loaded");
  } catch (err) {
    toast(errorText(err), true);
  } finally {
    button.disabled = false;
    button.textContent = "Reload";
  }
}

export function locationsPage(main, _params, live) {
  const body = h("tbody", {});
  const summary = h("p", { class: "sub" }, "Loading…");
  main.append(h("h1", {}, "Code locations"), summary,
    h("table", { id: "locations" }, h("thead", {}, h("tr", {},
      h("th", {}, "Location"), h("th", {}, "Status"), h("th", { class: "num" }, "Jobs"), h("th", { class: "num" }, "Assets"),
      h("th", { class: "num" }, "Schedules"), h("th", { class: "num" }, "Sensors"), h("th", {}, "Server"),
      h("th", { class: "num" }, "Load time"), h("th", {}, ""))), body));
  const byName = new Map();
  const render = (flashName) => {
    body.replaceChildren(...[...byName.values()].flatMap((loc) => {
      const rows = locationRow(loc, reloadLocation);
      if (loc.name === flashName) rows.forEach((r) => r.classList.add("flash"));
      return rows;
    }));
    const all = [...byName.values()];
    const bad = all.filter((l) => l.status === "error").length;
    summary.textContent = `${all.length} location${all.length === 1 ? "" : "s"}` + (bad ? `, ${bad} in error` : ", all loaded or loading");
    if (!all.length) body.replaceChildren(h("tr", {}, h("td", { colspan: 9, class: "empty" }, "No locations in this workspace.")));
  };
  return follow("/api/watch/locations", {
    locations: (list) => { byName.clear(); list.forEach((l) => byName.set(l.name, l)); render(); },
    change: (change) => { byName.set(change.location.name, change.location); render(change.location.name); },
  }, live);
}

export async function locationPage(main, { name }) {
  const loc = await api(`/api/locations/${enc(name)}`);
  const reload = h("button", { onclick: async () => { await reloadLocation(loc.name, reload); navigate(location.pathname, true); } }, "Reload");
  const list = (items, render) => items.length ? h("ul", {}, items.map((i) => h("li", {}, render(i)))) : h("p", { class: "muted" }, "None.");
  main.append(
    h("h1", {}, loc.name, badge(loc.status), reload),
    h("p", { class: "sub" }, `${loc.kind.replace("_", " ")} · ${loc.pid ? "pid " + loc.pid : "no process"} · loaded in ${duration(loc.load_time)}`),
    loc.error ? h("div", { class: "panel" }, locationError(loc.error, true)) : null,
    h("h2", {}, "Jobs"), list(loc.jobs, (j) => link(`/locations/${enc(loc.name)}/jobs/${enc(j)}`, j)),
    h("h2", {}, "Assets"), list(loc.assets, (a) => h("code", {}, a)),
    h("h2", {}, "Schedules"), list(loc.schedules, (x) => x),
    h("h2", {}, "Sensors"), list(loc.sensors, (x) => x));
}

/** A YAML skeleton of the config each step takes, from its JSON schema. */
export function configScaffold(steps) {
  const withConfig = steps.filter((st) => st.config_schema);
  if (!withConfig.length) return "# This job's steps take no config.\n{}\n";
  const lines = ["ops:"];
  for (const st of withConfig) {
    lines.push(`  ${yamlKey(st.key)}:`, "    config:");
    const schema = st.config_schema;
    const value = example(schema, schema.$defs ?? {}, 0);
    emit(value, 6, lines);
  }
  return lines.join("\n") + "\n";
}

function resolve(schema, defs) {
  let current = schema;
  for (let i = 0; i < 20 && current?.$ref; i++) current = defs[current.$ref.split("/").pop()];
  return current ?? {};
}

function example(schema, defs, depth) {
  const sch = resolve(schema, defs);
  if ("default" in sch) return sch.default;
  if (depth > 6) return null;
  const options = sch.anyOf ?? sch.oneOf;
  if (options) return example(options.find((o) => resolve(o, defs).type !== "null") ?? options[0], defs, depth + 1);
  switch (sch.type) {
    case "object": {
      const out = {};
      for (const [k, v] of Object.entries(sch.properties ?? {})) out[k] = example(v, defs, depth + 1);
      return out;
    }
    case "array": return [];
    case "integer": return 0;
    case "number": return 0.0;
    case "boolean": return false;
    case "string": return sch.enum ? sch.enum[0] : "";
    default: return null;
  }
}

function yamlKey(key) {
  return /^[A-Za-z_][\w.-]*$/.test(key) ? key : JSON.stringify(key);
}

function emit(value, indent, lines) {
  const pad = " ".repeat(indent);
  if (value && typeof value === "object" && !Array.isArray(value) && Object.keys(value).length) {
    for (const [k, v] of Object.entries(value)) {
      if (v && typeof v === "object" && !Array.isArray(v) && Object.keys(v).length) {
        lines.push(`${pad}${yamlKey(k)}:`);
        emit(v, indent + 2, lines);
      } else {
        lines.push(`${pad}${yamlKey(k)}: ${JSON.stringify(v)}`);
      }
    }
  } else {
    lines.push(`${pad}${JSON.stringify(value ?? {})}`.replace(/^(\s*)/, "$1"));
  }
}

function parseTags(text) {
  const tags = {};
  for (const raw of text.split(/[\n,]/)) {
    const line = raw.trim();
    if (!line) continue;
    const at = line.indexOf("=");
    if (at <= 0) throw new Error(`Tag "${line}" is not of the form key=value.`);
    tags[line.slice(0, at).trim()] = line.slice(at + 1).trim();
  }
  return tags;
}

export async function jobPage(main, { name, job }) {
  const data = await api(`/api/locations/${enc(name)}/jobs/${enc(job)}`);
  const detail = h("div", { class: "panel", id: "step-detail" }, h("p", { class: "muted" }, "Select a step (click, or Tab and Enter) to see its inputs and config."));
  const graphBox = h("div", { class: "graph", id: "job-graph" });
  let selected = null;
  const nodes = data.steps.map((st) => ({ id: st.key, label: st.key, kind: `${st.kind}${st.is_async ? " · async" : ""}${st.pool ? " · pool " + st.pool : ""}` }));
  const drawGraph = () => graphBox.replaceChildren(dagSvg(nodes, data.edges, { selected, onSelect: select }));
  const select = (key) => {
    selected = key;
    drawGraph();
    const st = data.steps.find((x) => x.key === key);
    detail.replaceChildren(h("h2", {}, st.key),
      st.description ? h("p", {}, st.description) : null,
      h("dl", { class: "kv" },
        h("dt", {}, "kind"), h("dd", {}, st.kind + (st.is_async ? " (async)" : "")),
        h("dt", {}, "upstream"), h("dd", {}, st.upstream.join(", ") || "–"),
        h("dt", {}, "inputs"), h("dd", {}, st.inputs.map((i) => `${i.name} ← ${i.upstream_step ?? "asset " + i.upstream_asset}`).join(", ") || "–"),
        h("dt", {}, "pool"), h("dd", {}, st.pool ?? "–")),
      st.config_schema ? [h("h2", {}, "Config schema"), h("pre", {}, JSON.stringify(st.config_schema, null, 2))] : null);
  };
  drawGraph();

  // The launchpad.
  const editor = h("textarea", { id: "run-config", spellcheck: "false", "aria-label": "Run config (YAML)" });
  editor.value = configScaffold(data.steps);
  const tags = h("input", { id: "run-tags", placeholder: "team=data, env=dev", size: 30 });
  const selection = h("input", { id: "run-selection", placeholder: "all steps", size: 30, list: "step-keys" });
  const errors = h("div", { class: "error-box", id: "launch-error", role: "alert" });
  const launch = h("button", { class: "primary", id: "launch", onclick: () => doLaunch() }, "Launch run");
  const doLaunch = async () => {
    errors.replaceChildren();
    let tagMap;
    try { tagMap = parseTags(tags.value); } catch (err) { errors.append(err.message); return; }
    const steps = selection.value.split(",").map((x) => x.trim()).filter(Boolean);
    launch.disabled = true;
    try {
      const reply = await api("/api/runs", { method: "POST", body: { job: data.name, location: data.location, run_config: editor.value, tags: tagMap, step_selection: steps.length ? steps : null } });
      navigate(`/runs/${reply.run_id}`);
    } catch (err) {
      errors.append(h("span", { class: "etype" }, `${err.type ?? "Error"}: `), err.message);
      if (err.detail?.location_error) errors.append(h("pre", {}, err.detail.location_error.traceback ?? ""));
    } finally {
      launch.disabled = false;
    }
  };
  editor.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); doLaunch(); }
  });
  main.append(
    h("h1", {}, data.name, data.is_asset_job ? h("span", { class: "badge" }, "asset job") : null),
    h("p", { class: "sub" }, "in ", link(`/locations/${enc(data.location)}`, data.location), ` · ${data.steps.length} steps`, data.description ? ` · ${data.description}` : ""),
    h("div", { class: "grid2" },
      h("section", {}, h("h2", {}, "Steps"), graphBox, detail),
      h("section", { class: "panel", id: "launchpad", "aria-label": "Launchpad" },
        h("h2", { class: "mt0" }, "Launchpad"),
        h("label", {}, "Run config (YAML or JSON; Ctrl+Enter launches)", editor),
        h("div", { class: "filters mt10" },
          h("label", {}, "Tags", tags), h("label", {}, "Steps (comma-separated)", selection)),
        h("datalist", { id: "step-keys" }, data.steps.map((st) => h("option", { value: st.key }))),
        errors,
        h("div", { class: "actions" }, launch, h("button", { onclick: () => { editor.value = configScaffold(data.steps); errors.replaceChildren(); } }, "Reset config")))));
}
