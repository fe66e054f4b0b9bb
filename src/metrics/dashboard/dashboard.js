// The live dashboard: the graph and the latest snapshots embedded in the page (rendered
// at once), then one snapshot a second from /events (Server-Sent Events). Counters arrive as totals; rates are computed here from two
// snapshots. Plain browser JavaScript, no build step; charts are uPlot.
"use strict";

const POINTS = 120; // seconds of history in the charts
const COLORS = ["#1c7ed6", "#d9480f", "#2b8a3e", "#ae3ec9", "#f59f00", "#0ca678", "#e64980", "#5c7cfa", "#868e96", "#74b816"];

const $ = (id) => document.getElementById(id);
const el = (tag, cls, text) => {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
};

function fmtRate(r) {
  if (r == null || !isFinite(r)) return "–";
  if (r >= 1e6) return (r / 1e6).toFixed(2) + "M";
  if (r >= 1e4) return (r / 1e3).toFixed(0) + "k";
  if (r >= 1e3) return (r / 1e3).toFixed(1) + "k";
  return r.toFixed(0);
}
function fmtMs(ms) {
  if (ms === null || ms === undefined) return "–";
  if (ms < 0) return "> 10 s"; // beyond the last histogram bucket
  if (ms < 1) return (ms * 1000).toFixed(0) + " µs";
  if (ms < 1000) return ms.toFixed(ms < 10 ? 1 : 0) + " ms";
  return (ms / 1000).toFixed(1) + " s";
}
function fmtDuration(s) {
  s = Math.floor(s);
  if (s < 60) return s + "s";
  if (s < 3600) return Math.floor(s / 60) + "m" + String(s % 60).padStart(2, "0") + "s";
  return Math.floor(s / 3600) + "h" + String(Math.floor((s % 3600) / 60)).padStart(2, "0") + "m";
}
const pct = (x) => (x * 100).toFixed(0) + "%";

let graph = null;
let prev = null;
const nodes = { steps: {}, sources: {}, sinks: {}, edges: [] };
const charts = {};
const hist = { t: [], steps: [], lat: [], workers: [] };
/** exception rows whose stack is open, by step + message (kept open across refreshes) */
const openErrors = new Set();

function buildGraph(g) {
  graph = g;
  $("app").textContent = g.app;
  $("workers-count").textContent = g.workers;
  const root = $("graph");
  root.textContent = "";
  for (const p of g.pipelines) {
    const box = el("div", "pipeline");
    box.dataset.pipeline = p.name;
    const title = el("div", "pipeline-name", p.name);
    const lat = el("span", "lat", "");
    title.appendChild(lat);
    box.appendChild(title);
    const flow = el("div", "flow");
    const src = el("div", "node source");
    src.append(el("div", "name", "source"), el("div", "kind", p.source), el("div", "rate", "–"), el("div", "detail", "msg/s in"));
    nodes.sources[p.id] = { node: src, rate: src.querySelector(".rate"), lat };
    flow.appendChild(src);
    let first = true;
    for (const s of p.steps) {
      const edge = makeEdge(first ? { kind: "source", pipeline: p.name } : s.kind === "state" ? { kind: "peer" } : { kind: "local" });
      flow.appendChild(edge);
      first = false;
      const n = el("div", "node step");
      n.dataset.step = s.name;
      n.dataset.stepId = s.id;
      const kind = s.kind === "state" ? `state: ${s.state}` : s.multi ? "stateless, many outputs" : "stateless";
      const rate = el("div", "rate", "–");
      const detail = el("div", "detail", "");
      const load = el("div", "loadbar");
      const bar = el("div");
      load.appendChild(bar);
      const errs = el("div", "errs", "");
      n.append(el("div", "name", s.name), el("div", "kind", kind), rate, detail, load, errs);
      nodes.steps[s.id] = { node: n, rate, detail, bar, errs, name: s.name, pipeline: p.name, state: s.state, kindText: n.querySelector(".kind") };
      flow.appendChild(n);
    }
    p.sinks.forEach((k) => {
      flow.appendChild(makeEdge({ kind: "sink", sink: k.name, first: p.steps.length === 0 }));
      const n = el("div", "node sink");
      n.dataset.sink = k.name;
      const rate = el("div", "rate", "–");
      const detail = el("div", "detail", "msg/s out");
      n.append(el("div", "name", "sink"), el("div", "kind", k.name), rate, detail);
      nodes.sinks[k.id] = { node: n, rate, detail };
      flow.appendChild(n);
    });
    box.appendChild(flow);
    root.appendChild(box);
  }
  makeCharts();
  buildConfig(g);
  $("checkpoints").hidden = !g.resilience;
}

function fmtBytes(n) {
  if (n >= 1 << 30) return (n / (1 << 30)).toFixed(1) + " GiB";
  if (n >= 1 << 20) return (n / (1 << 20)).toFixed(1) + " MiB";
  if (n >= 1 << 10) return (n / (1 << 10)).toFixed(1) + " KiB";
  return n + " B";
}
function fmtBacklog(b) {
  if (b.value === null) return "–";
  return b.unit === "bytes" ? fmtBytes(b.value) : `${b.value} records (${b.partitions} partition${b.partitions === 1 ? "" : "s"})`;
}
const row = (...cells) => {
  const tr = el("tr");
  for (const c of cells) tr.appendChild(typeof c === "string" ? el("td", "", c) : c);
  return tr;
};

// The configuration the job runs with: the application, then every engine option in effect.
function buildConfig(g) {
  const app = $("config-app").querySelector("tbody");
  app.textContent = "";
  app.append(row("application", g.app), row("workers", String(g.workers)), row("resilience", g.resilience ? "on" : "off"));
  for (const p of g.pipelines) app.append(row(`pipeline ${p.name}`, `${p.source} → ${p.steps.map((s) => s.name).join(" → ") || "(no steps)"} → ${p.sinks.map((k) => k.name).join(", ")}`));
  const opts = $("config-options").querySelector("tbody");
  opts.textContent = "";
  for (const o of g.options || []) {
    const tr = row(o.flag, o.value, o.isDefault ? "default" : "set");
    tr.dataset.flag = o.flag;
    if (!o.isDefault) tr.className = "set";
    opts.appendChild(tr);
  }
}

function renderCheckpoints(rows) {
  const tb = $("checkpoints").querySelector("tbody");
  tb.textContent = "";
  if (rows.length === 0) tb.appendChild(el("tr")).appendChild(el("td", "muted", "none yet")).colSpan = 8;
  for (const c of rows) {
    const tr = row(
      new Date(c.at).toLocaleTimeString(),
      c.id === null ? "–" : `#${c.id}`,
      c.outcome + (c.count > 1 ? ` ×${c.count}` : ""),
      fmtMs(c.ms),
      c.instances === null ? "–" : String(c.instances),
      c.removed === null ? "–" : String(c.removed),
      c.bytes === null ? "–" : fmtBytes(c.bytes),
      c.reason || "",
    );
    tr.className = c.outcome === "failed" || c.outcome === "abandoned" ? "hot" : c.outcome === "unchanged" ? "muted" : "";
    tr.dataset.outcome = c.outcome;
    tb.appendChild(tr);
  }
}

// Errors in user code, one row per step + message; a click shows the stack and the value.
function renderErrors(rows, unlisted) {
  const tb = $("exceptions").querySelector("tbody");
  tb.textContent = "";
  if (rows.length === 0) tb.appendChild(el("tr")).appendChild(el("td", "muted", "none")).colSpan = 5;
  for (const e of rows) {
    const key = e.where + "\u0000" + e.message;
    const tr = row(new Date(e.lastAt).toLocaleTimeString(), e.where, String(e.count), e.workers.join(", "), e.message);
    tr.className = "exception";
    tr.dataset.where = e.where;
    const detail = el("tr", "stack");
    const td = el("td");
    td.colSpan = 5;
    td.append(el("div", "muted", `first seen ${new Date(e.firstAt).toLocaleTimeString()} · value:`), el("pre", "value", e.value === null ? "(none)" : e.value), el("div", "muted", "stack:"), el("pre", "", e.stack || "(a thrown non-Error has no stack)"));
    detail.appendChild(td);
    detail.hidden = !openErrors.has(key);
    tr.addEventListener("click", () => {
      detail.hidden = !detail.hidden;
      if (detail.hidden) openErrors.delete(key); else openErrors.add(key);
    });
    tb.append(tr, detail);
  }
  $("errors-unlisted").textContent = unlisted > 0 ? `${unlisted} more error(s) counted but not listed (the list keeps the last ${rows.length} kinds)` : "";
}

// Backlog over time: one series per source, from the server's recent history, then each event.
function backlogSeries(points) {
  for (const p of points) {
    const last = charts.backlog.data[0];
    if (last.length > 0 && p.at / 1000 <= last[last.length - 1]) continue;
    push(charts.backlog, p.at / 1000, p.values);
  }
}

function makeEdge(info) {
  const e = el("div", "edge");
  const label = el("div", "", "");
  e.append(el("div", "arrow", "→"), label);
  nodes.edges.push({ e, label, info });
  return e;
}

function chart(target, title, series, yLabel) {
  const width = Math.max(320, $(target).clientWidth - 4);
  const opts = {
    width, height: 200,
    scales: { x: { time: true } },
    axes: [{}, { label: yLabel, size: 60 }],
    legend: { live: false },
    series: [{}, ...series.map((s, i) => ({ label: s.label, stroke: COLORS[i % COLORS.length], width: 2, dash: s.dash, spanGaps: true }))],
  };
  const data = [[], ...series.map(() => [])];
  const u = new uPlot(opts, data, $(target));
  return { u, data };
}

function makeCharts() {
  const stepSeries = [];
  for (const p of graph.pipelines) for (const s of p.steps) stepSeries.push({ label: graph.pipelines.length > 1 ? `${p.name}/${s.name}` : s.name });
  charts.steps = chart("chart-steps", "throughput", stepSeries, "msg/s");
  const latSeries = [];
  for (const p of graph.pipelines) {
    latSeries.push({ label: `${p.name} p50` });
    latSeries.push({ label: `${p.name} p99`, dash: [6, 4] });
  }
  charts.latency = chart("chart-latency", "latency", latSeries, "ms");
  const wSeries = [];
  for (let w = 0; w < graph.workers; w++) wSeries.push({ label: `worker ${w}` });
  charts.workers = chart("chart-workers", "busy", wSeries, "busy %");
  charts.backlog = chart(
    "chart-backlog",
    "backlog",
    graph.sources.map((s) => ({ label: `${s.pipeline} (${s.lagTopic !== null ? "records" : "bytes"})` })),
    "backlog",
  );
}

function push(c, t, values) {
  c.data[0].push(t);
  values.forEach((v, i) => c.data[i + 1].push(v));
  if (c.data[0].length > POINTS) c.data.forEach((a) => a.shift());
  c.u.setData(c.data);
}

function update(snap) {
  if (!graph) return;
  const dt = prev ? (snap.at - prev.at) / 1000 : 0;
  const rate = (now, before) => (prev && dt > 0 ? Math.max(0, now - before) / dt : null);
  const t = snap.at / 1000;
  $("uptime").textContent = fmtDuration(snap.uptime);

  // Sources, sinks, totals.
  let totalIn = 0;
  let totalOut = 0;
  let totalErr = 0;
  snap.pipelines.forEach((p, i) => {
    const r = rate(p.in, prev?.pipelines[i].in);
    totalIn += r ?? 0;
    totalErr += p.errors;
    const n = nodes.sources[i];
    n.rate.textContent = fmtRate(r);
    n.lat.textContent = p.latency.p50 === null ? "" : `latency p50 ${fmtMs(p.latency.p50)} · p99 ${fmtMs(p.latency.p99)}`;
  });
  snap.sinks.forEach((k, i) => {
    const r = rate(k.out, prev?.sinks[i].out);
    totalOut += r ?? 0;
    totalErr += k.errors;
    const n = nodes.sinks[k.id];
    n.rate.textContent = fmtRate(r);
    n.detail.textContent = "msg/s out" + (k.reconnects ? ` · ${k.reconnects} reconnect(s)` : "");
  });

  // Steps: rate, time per message, load (share of a core), bottleneck.
  let worst = null;
  const stepRates = [];
  snap.steps.forEach((s, i) => {
    const n = nodes.steps[s.id];
    const r = rate(s.messages, prev?.steps[i].messages);
    stepRates.push(r);
    totalErr += s.errors;
    const load = r !== null && s.time.meanMs !== null ? (r * s.time.meanMs) / 1000 : null;
    n.rate.textContent = fmtRate(r);
    n.rate.title = `${s.messages} messages in total`;
    n.detail.textContent = `msg/s · ${fmtMs(s.time.p50)} / ${fmtMs(s.time.p99)}` + (load !== null ? ` · load ${load.toFixed(2)}` : "");
    n.bar.style.width = load === null ? "0" : Math.min(100, load * 100) + "%";
    n.errs.textContent = s.errors ? `${s.errors} error(s)` : "";
    if (n.state !== null) {
      const st = snap.states.find((x) => x.name === n.state);
      n.kindText.textContent = `state: ${n.state} · ${st ? st.instances : 0} instance(s)`;
    }
    n.load = load;
    if (load !== null && load > 0.05 && (worst === null || load > worst.load)) worst = { n, load };
  });
  for (const id in nodes.steps) nodes.steps[id].node.classList.toggle("bottleneck", worst !== null && nodes.steps[id] === worst.n);

  // Rings: the fullest of each kind on the graph's edges, every one in the table.
  const maxFill = (pred) => snap.channels.filter(pred).reduce((m, c) => Math.max(m, c.occupancy), 0);
  for (const ed of nodes.edges) {
    let fill = null;
    if (ed.info.kind === "source") fill = maxFill((c) => c.channel === "source" && c.from === `source ${ed.info.pipeline}`);
    else if (ed.info.kind === "peer") fill = maxFill((c) => c.channel === "peer");
    else if (ed.info.kind === "sink") fill = maxFill((c) => c.channel === "sink" && c.to === `sink ${ed.info.sink}`);
    ed.label.textContent = fill === null ? "" : `ring ${pct(fill)}`;
    ed.e.classList.toggle("hot", fill !== null && fill >= 0.5);
    ed.e.classList.toggle("warm", fill !== null && fill >= 0.1 && fill < 0.5);
  }
  const tbody = $("channels").querySelector("tbody");
  tbody.textContent = "";
  const blockedRate = (c, i) => (prev && dt > 0 ? Math.max(0, c.blockedMs - prev.channels[i].blockedMs) / (dt * 1000) : 0);
  const rows = snap.channels.map((c, i) => ({ c, blocked: blockedRate(c, i) }))
    .sort((a, b) => b.c.occupancy - a.c.occupancy || b.blocked - a.blocked).slice(0, 12);
  for (const { c, blocked } of rows) {
    const tr = el("tr", c.occupancy >= 0.5 || blocked >= 0.2 ? "hot" : c.occupancy >= 0.1 || blocked > 0 ? "warm" : "");
    const fill = el("td");
    const bar = el("span", "fillbar");
    const inner = el("div");
    inner.style.width = pct(c.occupancy);
    bar.appendChild(inner);
    fill.append(bar, document.createTextNode(pct(c.occupancy)));
    tr.append(el("td", "", `${c.from} → ${c.to}`), fill, el("td", "", blocked > 0 ? `${pct(blocked)} of the time` : "–"));
    tbody.appendChild(tr);
  }

  // Workers.
  const wbox = $("workers");
  wbox.textContent = "";
  wbox.className = "workers";
  for (const w of snap.workers) {
    const d = el("div", "worker" + (w.busy >= 0.9 ? " hot" : ""));
    const bar = el("div", "bar");
    const inner = el("div");
    inner.style.width = pct(w.busy);
    bar.appendChild(inner);
    d.append(el("div", "lbl", `worker ${w.worker}: ${pct(w.busy)}`), bar);
    wbox.appendChild(d);
  }

  // States, checkpoint, errors.
  const sb = $("states").querySelector("tbody");
  sb.textContent = "";
  if (snap.states.length === 0) sb.appendChild(el("tr")).appendChild(el("td", "muted", "no state"));
  for (const s of snap.states) {
    const tr = el("tr");
    tr.append(
      el("td", "", s.name),
      el("td", "", String(s.instances)),
      el("td", "", String(s.deleted)),
      el("td", "", String(s.expired)),
    );
    sb.appendChild(tr);
  }
  const cp = snap.checkpoint;
  if (cp) {
    const ago = cp.lastSuccess ? `${fmtDuration((snap.at - cp.lastSuccess) / 1000)} ago` : "none yet";
    $("checkpoint").className = cp.failures > 0 ? "bad" : "ok";
    $("checkpoint").textContent = `${cp.count} committed · last ${ago} (#${cp.lastId}, ${cp.lastInstances} instance(s), ${cp.lastBytes} bytes, ${fmtMs(cp.lastMs)}) · ${cp.failures} failed or abandoned`;
  }
  if (snap.checkpoints) renderCheckpoints(snap.checkpoints);
  if (snap.errors) renderErrors(snap.errors, snap.errorsUnlisted);
  const bb = $("backlog").querySelector("tbody");
  bb.textContent = "";
  snap.backlog.forEach((b, i) => {
    const tr = row(`${graph.sources[i].pipeline}: ${graph.sources[i].source}`, fmtBacklog(b));
    tr.dataset.unit = b.unit;
    bb.appendChild(tr);
  });
  backlogSeries([{ at: snap.at, values: snap.backlog.map((b) => b.value) }]);
  $("total-in").textContent = fmtRate(prev ? totalIn : null);
  $("total-out").textContent = fmtRate(prev ? totalOut : null);
  $("total-errors").textContent = String(totalErr);
  $("total-errors").className = "big" + (totalErr ? " bad" : "");

  // The callout: where the time goes, and where data waits.
  const call = $("bottleneck");
  const fullest = snap.channels.reduce((m, c) => (m === null || c.occupancy > m.occupancy ? c : m), null);
  if (worst !== null || (fullest && fullest.occupancy >= 0.5)) {
    call.hidden = false;
    call.textContent = "";
    if (worst !== null) {
      call.append("Busiest step: ", el("b", "", `${worst.n.name}`), ` (pipeline ${worst.n.pipeline}) — ${worst.load.toFixed(2)} of a core`);
    }
    if (fullest && fullest.occupancy >= 0.5) {
      // A full ring means its consumer cannot keep up: name it, with how busy it is.
      const w = /^worker (\d+)$/.exec(fullest.to);
      const busy = w ? snap.workers[Number(w[1])] : null;
      const why = busy ? ` — ${fullest.to} is ${pct(busy.busy)} busy and cannot keep up`
        : fullest.channel === "sink" ? " — the sink cannot write as fast (slow or stalled receiver?)" : "";
      call.append(worst !== null ? " · " : "", "backpressure: ring ", el("b", "", `${fullest.from} → ${fullest.to}`), ` ${pct(fullest.occupancy)} full${why}`);
    }
  } else call.hidden = true;

  if (prev) {
    push(charts.steps, t, stepRates);
    const lat = [];
    const plot = (ms) => (ms !== null && ms < 0 ? 10000 : ms);
    for (const p of snap.pipelines) lat.push(plot(p.latency.p50), plot(p.latency.p99));
    push(charts.latency, t, lat);
    push(charts.workers, t, snap.workers.map((w) => w.busy * 100));
  }
  prev = snap;
}

async function main() {
  // The server puts the graph and its latest snapshots in the page: render them at once,
  // so that the page shows the engine's state before the event stream delivers anything.
  const embedded = document.getElementById("initial-state");
  const initial = embedded ? JSON.parse(embedded.textContent) : null;
  // when the state shown was taken (ms), for the label while no event arrives
  let shownAt = null;
  if (initial) {
    buildGraph(initial.graph);
    backlogSeries(initial.backlog);
    for (const s of initial.snapshots) update(s);
    shownAt = initial.snapshots[initial.snapshots.length - 1].at;
    $("conn").textContent = "as of " + new Date(shownAt).toLocaleTimeString();
  } else {
    buildGraph(await (await fetch("/api/graph")).json());
  }
  const es = new EventSource("/events");
  es.onopen = () => { $("conn").textContent = "live"; $("conn").className = "conn live"; };
  // Disconnected: say how old what the page shows is (the state it was served with, or the last event).
  es.onerror = () => {
    $("conn").textContent =
      (shownAt !== null ? "as of " + new Date(shownAt).toLocaleTimeString() + " — " : "") +
      "disconnected (engine stopped?), retrying";
    $("conn").className = "conn";
  };
  es.onmessage = (ev) => {
    const snap = JSON.parse(ev.data);
    if (typeof snap.at === "number") shownAt = snap.at;
    update(snap);
  };
}

main().catch((err) => { $("conn").textContent = "error: " + err.message; });
