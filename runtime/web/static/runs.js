// Pages: the runs (filters, paging) and one run (live events, step status, timeline, cancel, re-execute).

import { api, badge, call, duration, enc, errorText, follow, h, link, shortId, tagList, toast, when } from "./lib.js";
import { ganttSvg } from "./graph.js";
import { navigate } from "./router.js";

const STATUSES = ["NOT_STARTED", "STARTING", "STARTED", "SUCCESS", "FAILURE", "CANCELING", "CANCELED"];
const PAGE = 25;
const FINISHED = new Set(["SUCCESS", "FAILURE", "CANCELED"]);
const MAX_ROWS = 5000;

export function runsPage(main) {
  const params = new URLSearchParams(location.search);
  const status = h("select", { id: "filter-status", name: "status" }, h("option", { value: "" }, "any status"),
    STATUSES.map((st) => h("option", { value: st, selected: params.get("status") === st || null }, st)));
  const job = h("input", { id: "filter-job", name: "job", value: params.get("job") ?? "", placeholder: "any job", size: 16 });
  const loc = h("input", { id: "filter-location", name: "location", value: params.get("location") ?? "", placeholder: "any location", size: 16 });
  const tag = h("input", { id: "filter-tag", name: "tag", value: params.get("tag") ?? "", placeholder: "key=value", size: 16 });
  const form = h("form", { class: "filters", role: "search", onsubmit: (e) => { e.preventDefault(); apply(); } },
    h("label", {}, "Status", status), h("label", {}, "Job", job), h("label", {}, "Location", loc), h("label", {}, "Tag", tag),
    h("button", { type: "submit", class: "primary" }, "Filter"),
    h("button", { type: "button", onclick: () => { [job, loc, tag].forEach((i) => (i.value = "")); status.value = ""; apply(); } }, "Clear"));
  const body = h("tbody", {});
  const total = h("span", { class: "muted", id: "runs-total" });
  const older = h("button", { id: "older", onclick: () => page(1) }, "Older →");
  const newer = h("button", { id: "newer", onclick: () => page(-1) }, "← Newer");
  const errors = h("div", { class: "error-box", role: "alert" });
  main.append(h("h1", {}, "Runs"), form, errors,
    h("table", { id: "runs" }, h("thead", {}, h("tr", {}, h("th", {}, "Run"), h("th", {}, "Job"), h("th", {}, "Location"),
      h("th", {}, "Status"), h("th", {}, "Created"), h("th", { class: "num" }, "Duration"), h("th", {}, "Tags"))), body),
    h("div", { class: "pager" }, newer, older, total));

  // Cursors of the pages before this one, so "Newer" can go back.
  const cursors = (params.get("cursors") ?? "").split(",").filter(Boolean);
  let next = null;
  const query = () => {
    const q = new URLSearchParams();
    if (status.value) q.set("status", status.value);
    if (job.value.trim()) q.set("job", job.value.trim());
    if (loc.value.trim()) q.set("location", loc.value.trim());
    if (tag.value.trim()) q.set("tag", tag.value.trim());
    return q;
  };
  const apply = () => { cursors.length = 0; navigate(`/runs?${query()}`, true); };
  const page = (direction) => {
    if (direction > 0 && next) cursors.push(next);
    if (direction < 0) cursors.pop();
    const q = query();
    if (cursors.length) q.set("cursors", cursors.join(","));
    navigate(`/runs?${q}`, true);
  };
  const load = async () => {
    const q = query();
    q.set("limit", PAGE);
    if (cursors.length) q.set("cursor", cursors[cursors.length - 1]);
    try {
      const { data, headers } = await call(`/api/runs?${q}`);
      errors.replaceChildren();
      next = headers.get("x-next-cursor");
      older.disabled = !next;
      newer.disabled = !cursors.length;
      const count = Number(headers.get("x-total-count") ?? data.length);
      total.textContent = `${count} run${count === 1 ? "" : "s"}` + (cursors.length ? `, page ${cursors.length + 1}` : "");
      body.replaceChildren(...(data.length ? data.map(runRow) : [h("tr", {}, h("td", { colspan: 7, class: "empty" }, "No runs match."))]));
    } catch (err) {
      errors.replaceChildren(errorText(err));
    }
  };
  load();
  // The first page shows new runs as they come.
  const timer = setInterval(() => { if (!cursors.length && document.visibilityState === "visible") load(); }, 2000);
  return () => clearInterval(timer);
}

function runRow(run) {
  const took = run.started_at ? (run.ended_at ?? Date.now() / 1000) - run.started_at : null;
  return h("tr", { "data-run": run.run_id },
    h("td", { class: "mono" }, link(`/runs/${run.run_id}`, shortId(run.run_id))),
    h("td", {}, run.location ? link(`/locations/${enc(run.location)}/jobs/${enc(run.job)}`, run.job) : run.job),
    h("td", {}, run.location ?? "–"), h("td", {}, badge(run.status)), h("td", {}, when(run.created_at)),
    h("td", { class: "num" }, duration(took)), h("td", {}, tagList(run.tags)));
}

export async function runPage(main, { run_id }, live) {
  const run = await api(`/api/runs/${enc(run_id)}`);
  let status = run.status;
  const steps = new Map();
  let stepKeys = [];
  if (run.location) {
    try {
      const job = await api(`/api/locations/${enc(run.location)}/jobs/${enc(run.job)}`);
      stepKeys = job.steps.map((st) => st.key);
    } catch { /* the job may be gone since; its events still tell its steps */ }
  }
  const selected = run.step_selection ? new Set(run.step_selection) : null;
  for (const key of stepKeys) if (!selected || selected.has(key)) steps.set(key, { key, status: "NOT_STARTED", start: null, end: null, attempts: 0 });

  const statusBox = h("span", { id: "run-status" }, badge(status));
  const cancel = h("button", { class: "danger", id: "cancel", onclick: () => doCancel() }, "Cancel");
  const again = h("button", { id: "reexecute-all", onclick: () => reexecute(false) }, "Re-execute all");
  const fromFailure = h("button", { id: "reexecute-failed", onclick: () => reexecute(true) }, "Re-execute from failure");
  const stepBody = h("tbody", {});
  const gantt = h("div", { class: "gantt", id: "gantt" });
  const logBody = h("tbody", {});
  const logBox = h("div", { class: "log", id: "events" }, h("table", {}, h("thead", {}, h("tr", {},
    h("th", {}, "Time"), h("th", {}, "#"), h("th", {}, "Event"), h("th", {}, "Step"), h("th", {}, "Message"))), logBody));
  const filter = h("input", { id: "event-filter", type: "search", placeholder: "filter events (type, step, text)", size: 32, oninput: () => applyFilter() });
  const counter = h("span", { class: "muted", id: "event-count" });
  const ended = h("span", { class: "muted", id: "run-ended" });
  const trimmed = h("span", { class: "muted" });
  main.append(
    h("h1", {}, `Run ${shortId(run.run_id)}`, statusBox, h("span", { class: "actions" }, cancel, fromFailure, again)),
    h("p", { class: "sub" }, run.location ? link(`/locations/${enc(run.location)}/jobs/${enc(run.job)}`, run.job) : run.job,
      ` in ${run.location ?? "?"} · created ${when(run.created_at)} · `, h("span", { class: "mono" }, run.run_id),
      run.parent_run_id ? [" · re-executes ", link(`/runs/${run.parent_run_id}`, shortId(run.parent_run_id))] : null),
    h("div", { class: "grid2" },
      h("section", {}, h("h2", {}, "Timeline"), gantt),
      h("section", {}, h("h2", {}, "Steps"), h("table", { id: "steps" }, h("thead", {}, h("tr", {}, h("th", {}, "Step"), h("th", {}, "Status"),
        h("th", { class: "num" }, "Duration"), h("th", { class: "num" }, "Attempts"))), stepBody))),
    h("h2", {}, "Events ", counter, " ", trimmed, " ", ended), h("div", { class: "filters" }, filter), logBox,
    h("details", {}, h("summary", {}, "Run config and tags"), h("pre", {}, JSON.stringify(run.run_config, null, 2)), tagList(run.tags)));

  const buttons = () => {
    const done = FINISHED.has(status);
    cancel.disabled = done || status === "CANCELING";
    again.disabled = !done;
    fromFailure.disabled = !done || status === "SUCCESS";
    statusBox.replaceChildren(badge(status));
  };
  const doCancel = async () => {
    cancel.disabled = true;
    try {
      const reply = await api(`/api/runs/${enc(run.run_id)}/cancel`, { method: "POST" });
      toast(`Cancel requested (${reply.status}).`);
    } catch (err) { toast(errorText(err), true); buttons(); }
  };
  const reexecute = async (onlyFailed) => {
    try {
      const reply = await api(`/api/runs/${enc(run.run_id)}/reexecute`, { method: "POST", body: { from_failure: onlyFailed } });
      navigate(`/runs/${reply.run_id}`);
    } catch (err) { toast(errorText(err), true); }
  };
  let drawQueued = false;
  const draw = () => {
    if (drawQueued) return;
    drawQueued = true;
    requestAnimationFrame(() => {
      drawQueued = false;
      const now = Date.now() / 1000;
      const list = [...steps.values()];
      gantt.replaceChildren(ganttSvg(list, now));
      stepBody.replaceChildren(...list.map((st) => h("tr", { "data-step": st.key, "data-status": st.status },
        h("td", { class: "mono" }, st.key), h("td", {}, badge(st.status)),
        h("td", { class: "num" }, st.start ? duration((st.end ?? now) - st.start) : "–"), h("td", { class: "num" }, String(st.attempts)))));
      buttons();
    });
  };
  let count = 0;
  const applyFilter = () => {
    const needle = filter.value.trim().toLowerCase();
    for (const row of logBody.children) row.hidden = needle !== "" && !row.dataset.text.includes(needle);
  };
  const onEvent = (event) => {
    count += 1;
    counter.textContent = `(${count})`;
    const key = event.step_key;
    if (key) {
      const st = steps.get(key) ?? { key, status: "NOT_STARTED", start: null, end: null, attempts: 0 };
      steps.set(key, st);
      if (event.event_type === "STEP_START") { st.attempts += 1; st.start ??= event.timestamp; st.status = "IN_PROGRESS"; st.end = null; }
      else if (event.event_type === "STEP_SUCCESS") { st.status = "SUCCESS"; st.end = event.timestamp; }
      else if (event.event_type === "STEP_FAILURE") { st.status = "FAILURE"; st.end = event.timestamp; }
      else if (event.event_type === "STEP_SKIPPED") { st.status = "SKIPPED"; st.end = event.timestamp; }
      else if (event.event_type === "STEP_UP_FOR_RETRY") { st.status = "IN_PROGRESS"; }
    }
    const next = { RUN_STARTING: "STARTING", RUN_START: "STARTED", RUN_CANCELING: "CANCELING", RUN_SUCCESS: "SUCCESS", RUN_FAILURE: "FAILURE", RUN_CANCELED: "CANCELED" }[event.event_type];
    if (next) status = next;
    if (status === "CANCELED") for (const st of steps.values()) if (st.status === "IN_PROGRESS") { st.status = "CANCELED"; st.end = event.timestamp; }
    const text = `${event.event_type} ${key ?? ""} ${event.message}`.toLowerCase();
    const atBottom = logBox.scrollHeight - logBox.scrollTop - logBox.clientHeight < 40;
    const row = h("tr", { class: `event lvl-${event.level}`, "data-type": event.event_type, "data-sequence": event.sequence, dataset: { text } },
      h("td", {}, new Date(event.timestamp * 1000).toLocaleTimeString(undefined, { hour12: false }) + "." + String(Math.floor((event.timestamp % 1) * 1000)).padStart(3, "0")),
      h("td", { class: "num" }, String(event.sequence)), h("td", {}, event.event_type), h("td", {}, key ?? ""),
      h("td", { class: "msg" }, event.message, event.payload?.error?.traceback ? h("details", {}, h("summary", {}, "traceback"), h("pre", {}, event.payload.error.traceback)) : null));
    const needle = filter.value.trim().toLowerCase();
    if (needle && !text.includes(needle)) row.hidden = true;
    logBody.append(row);
    // A run may have a hundred thousand events: the page keeps the latest ones.
    if (logBody.children.length > MAX_ROWS) {
      logBody.firstElementChild.remove();
      trimmed.textContent = `· showing the last ${MAX_ROWS}`;
    }
    if (atBottom) logBox.scrollTop = logBox.scrollHeight;
    draw();
  };
  draw();
  const stop = follow(`/api/runs/${enc(run.run_id)}/events`, { message: onEvent, end: () => { ended.textContent = "· all events received"; draw(); } }, live);
  // Running bars grow with the clock.
  const timer = setInterval(() => { if (!FINISHED.has(status)) draw(); }, 500);
  return () => { stop(); clearInterval(timer); };
}
