// Pages: the assets (graph and latest materializations), the schedules and the sensors.

import { api, badge, enc, errorText, h, link, shortId, toast, when } from "./lib.js";
import { dagSvg, MAX_NODES } from "./graph.js";
import { navigate } from "./router.js";

export async function assetsPage(main) {
  const assets = await api("/api/assets");
  const detail = h("div", { class: "panel", id: "asset-detail" }, h("p", { class: "muted" }, "Select an asset to see its latest materialization."));
  const byKey = new Map(assets.map((a) => [a.key, a]));
  let selected = null;
  const graph = h("div", { class: "graph", id: "asset-graph" });
  const nodes = assets.map((a) => ({ id: a.key, label: a.key, kind: `${a.group_name} · ${a.location}`, status: a.latest_materialization ? "materialized" : null }));
  const edges = assets.flatMap((a) => a.deps.filter((d) => byKey.has(d)).map((d) => ({ source: d, target: a.key })));
  const draw = () => graph.replaceChildren(dagSvg(nodes, edges, { selected, onSelect: select }));
  const select = (key) => {
    selected = key;
    draw();
    const a = byKey.get(key);
    const m = a.latest_materialization;
    detail.replaceChildren(h("h2", { class: "mt0" }, a.key),
      a.description ? h("p", {}, a.description) : null,
      h("dl", { class: "kv" },
        h("dt", {}, "location"), h("dd", {}, link(`/locations/${enc(a.location)}`, a.location)),
        h("dt", {}, "group"), h("dd", {}, a.group_name),
        h("dt", {}, "depends on"), h("dd", {}, a.deps.join(", ") || "–"),
        h("dt", {}, "jobs"), h("dd", {}, a.job_names.map((j) => link(`/locations/${enc(a.location)}/jobs/${enc(j)}`, j, " ")) ),
        h("dt", {}, "materialized"), h("dd", {}, m ? [when(m.timestamp), " by run ", link(`/runs/${m.run_id}`, shortId(m.run_id))] : "never")),
      m && Object.keys(m.metadata).length ? h("pre", {}, JSON.stringify(m.metadata, null, 2)) : null,
      h("div", { class: "actions mt10" }, h("button", { class: "primary", onclick: () => materialize(a.location, [a.key]) }, "Materialize")));
  };
  const materialize = async (locationName, keys) => {
    try {
      const reply = await api("/api/runs", { method: "POST", body: { job: "__ASSET_JOB", location: locationName, step_selection: keys } });
      navigate(`/runs/${reply.run_id}`);
    } catch (err) { toast(errorText(err), true); }
  };
  draw();
  const rows = assets.map((a) => h("tr", { "data-asset": a.key },
    h("td", { class: "mono" }, h("a", { href: "#", onclick: (e) => { e.preventDefault(); select(a.key); } }, a.key)),
    h("td", {}, a.location), h("td", {}, a.group_name), h("td", { class: "mono" }, a.deps.join(", ") || "–"),
    h("td", {}, a.latest_materialization ? [badge("materialized"), " ", when(a.latest_materialization.timestamp), " ", link(`/runs/${a.latest_materialization.run_id}`, shortId(a.latest_materialization.run_id))] : h("span", { class: "muted" }, "never"))));
  const locations = [...new Set(assets.map((a) => a.location))];
  main.append(h("h1", {}, "Assets", locations.map((l) => h("button", { onclick: () => materialize(l, null) }, `Materialize all in ${l}`))),
    h("p", { class: "sub" }, `${assets.length} assets` + (assets.length > MAX_NODES ? `; the graph shows the first ${MAX_NODES}` : "")),
    assets.length ? h("div", { class: "grid2" }, graph, detail) : h("p", { class: "empty" }, "No location defines assets."),
    h("h2", {}, "All assets"),
    h("table", { id: "assets" }, h("thead", {}, h("tr", {}, h("th", {}, "Asset"), h("th", {}, "Location"), h("th", {}, "Group"), h("th", {}, "Depends on"), h("th", {}, "Latest materialization"))),
      h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: 5, class: "empty" }, "None.")))));
}

function instigatorsPage(kind) {
  const plural = kind + "s";
  return async (main) => {
    const items = await api(`/api/${plural}`);
    const body = h("tbody", {});
    const render = (list) => body.replaceChildren(...(list.length ? list.flatMap(row) : [h("tr", {}, h("td", { colspan: 6, class: "empty" }, `No location defines ${plural}.`))]));
    const setStatus = async (item, action, button) => {
      button.disabled = true;
      try {
        await api(`/api/${plural}/${enc(item.name)}/${action}`, { method: "POST", body: { location: item.location } });
        toast(`${action === "start" ? "Started" : "Stopped"} ${item.name}.`);
        render(await api(`/api/${plural}`));
      } catch (err) { toast(errorText(err), true); button.disabled = false; }
    };
    const row = (item) => {
      const running = item.status === "running";
      const button = h("button", { class: running ? "danger" : "primary", "data-action": running ? "stop" : "start" }, running ? "Stop" : "Start");
      button.addEventListener("click", () => setStatus(item, running ? "stop" : "start", button));
      const when_ = kind === "schedule" ? h("span", { class: "mono" }, `${item.cron_schedule} (${item.execution_timezone})`) : `every ${item.minimum_interval_seconds} s`;
      const ticks = item.ticks.length
        ? h("ul", {}, item.ticks.map((t) => h("li", {}, when(t.tick_time), " ", badge(t.status), " ", t.skip_reason ?? t.error ?? "", t.run_ids.map((id) => [" ", link(`/runs/${id}`, shortId(id))]))))
        : h("span", { class: "muted" }, "No ticks yet.");
      return [h("tr", { "data-instigator": item.name },
        h("td", {}, h("strong", {}, item.name), item.description ? h("div", { class: "muted" }, item.description) : null),
        h("td", {}, link(`/locations/${enc(item.location)}`, item.location)),
        h("td", {}, item.job_name ? link(`/locations/${enc(item.location)}/jobs/${enc(item.job_name)}`, item.job_name) : "–"),
        h("td", {}, when_), h("td", {}, badge(item.status), item.state_stored ? null : h("div", { class: "muted" }, "(default)")), h("td", {}, button)),
        h("tr", { class: "ticks" }, h("td", { colspan: 6 }, h("details", {}, h("summary", {}, "Recent ticks"), ticks)))];
    };
    main.append(h("h1", {}, kind === "schedule" ? "Schedules" : "Sensors"),
      h("p", { class: "sub" }, `${items.length} ${items.length === 1 ? kind : plural}`),
      h("table", { id: plural }, h("thead", {}, h("tr", {}, h("th", {}, "Name"), h("th", {}, "Location"), h("th", {}, "Job"),
        h("th", {}, kind === "schedule" ? "Cron" : "Interval"), h("th", {}, "Status"), h("th", {}, ""))), body));
    render(items);
  };
}

export const schedulesPage = instigatorsPage("schedule");
export const sensorsPage = instigatorsPage("sensor");
