// ringloop dashboard: live state over Server-Sent Events, per-config charts (uPlot), game viewer.
"use strict";

const PLAYER_COLOURS = ["#888", "#d9480f", "#1971c2", "#2f9e44", "#ae3ec9"];
const TERRITORY_COLOURS = ["#fff", "#ffd8c2", "#c5dcf5", "#c9eccf", "#efd2f5"];
const page = { state: null, config: null, configData: null, charts: {}, game: null, ply: 0, timer: null, pending: null };

const $ = (id) => document.getElementById(id);
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child instanceof Node ? child : String(child ?? ""));
  return node;
}
function fill(tbody, rows) { tbody.replaceChildren(...rows); }
function num(value, digits = 0) { return value === null || value === undefined ? "—" : Number(value).toFixed(digits); }
function short(id) { return id ? (id.length > 28 ? id.slice(0, 27) + "…" : id) : "—"; }
async function getJSON(url) {
  const response = await fetch(url);
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

// ------------------------------------------------------------------ live state

function connect() {
  const source = new EventSource("/api/stream");
  source.addEventListener("state", (message) => {
    $("live").className = "badge on";
    $("live").textContent = "live";
    renderState(JSON.parse(message.data));
  });
  source.onerror = () => { $("live").className = "badge off"; $("live").textContent = "reconnecting"; };
}

function renderState(state) {
  page.state = state;
  $("updated").textContent = "updated " + new Date().toLocaleTimeString();
  renderConfigs(state.configs);
  renderTimeline();
  fill($("consumers").tBodies[0], state.consumers.map((c) => el("tr", {},
    el("td", {}, c.stream), el("td", {}, c.consumer), el("td", { class: "num" }, c.lag),
    el("td", { class: "num" }, c.ack_pending), el("td", { class: "num" }, c.redelivered))));
  fill($("leases").tBodies[0], state.leases.map((l) => el("tr", {},
    el("td", {}, l.key), el("td", {}, `${l.host} pid ${l.pid}`), el("td", {}, l.task_id || "—"),
    el("td", { class: "num" }, l.held_s === null ? "—" : num(l.held_s, 0) + " s"))));
  fill($("tasks").tBodies[0], state.tasks.map((t) => el("tr", {},
    el("td", {}, short(t.task_id)), el("td", {}, t.task_type), el("td", {}, t.holder), el("td", { class: "num" }, t.started_seq))));
  $("dead-count").textContent = state.dead_letters.count;
  fill($("dead").tBodies[0], state.dead_letters.recent.slice().reverse().map((d) => el("tr", {},
    el("td", { class: "num" }, d.seq), el("td", {}, d.details.handler), el("td", {}, d.reason))));
  scheduleConfigRefresh();
}

function renderConfigs(rows) {
  const select = $("config-select");
  if (select.options.length !== rows.length) {
    select.replaceChildren(...rows.map((r) => el("option", { value: r.config }, r.config)));
    if (!page.config && rows.length) page.config = rows[0].config;
    select.value = page.config;
  }
  fill($("configs").tBodies[0], rows.map((r) => el("tr", { "data-config": r.config },
    el("td", {}, r.config), el("td", { class: "num" }, r.selfplay_games),
    el("td", { class: "num" }, num(r.games_per_s, 2)), el("td", { class: "num" }, num(r.samples_per_s, 0)),
    el("td", { class: "num" }, r.generation), el("td", {}, short(r.best_model)),
    el("td", { class: "num" }, num(r.best_elo, 0)),
    el("td", {}, [r.training ? "training" : "", r.evaluating ? "gating" : ""].filter(Boolean).join(", ") || "selfplay"),
    el("td", {}, r.last_decision ? `${r.last_decision} ${short(r.last_decision_model)}: ${r.last_decision_reason}` : "none yet"))));
}

function renderTimeline() {
  if (!page.state) return;
  const all = $("timeline-all").checked;
  const rows = page.state.timeline.filter((t) => all || t.config === null || t.config === page.config);
  fill($("timeline"), rows.slice().reverse().map((t) => {
    const explain = t.model_id ? el("button", { class: "link", onclick: () => showExplain(t.model_id) }, "explain") : "";
    return el("li", { "data-seq": t.seq, "data-kind": t.kind },
      el("time", {}, new Date(t.time).toLocaleTimeString() + " "), el("span", { class: "kind " + t.kind }, t.kind.replace("_", " ")),
      " ", el("span", { class: "muted" }, (t.config || "loop") + " #" + t.seq), " ", t.summary, " ", explain,
      el("span", { class: "reason" }, t.reason));
  }));
}

// ------------------------------------------------------------------ one config

function scheduleConfigRefresh() {
  if (page.pending) return;
  page.pending = setTimeout(async () => { page.pending = null; await loadConfig(); }, 300);
}

async function loadConfig() {
  if (!page.config) return;
  try {
    page.configData = await getJSON("/api/config/" + encodeURIComponent(page.config));
  } catch (error) { $("baselines").textContent = String(error); return; }
  const data = page.configData;
  renderModels(data.ratings);
  drawRatings(data.ratings.models);
  drawLosses(data.losses);
  drawThroughput(data.throughput);
  renderGames(data.games);
}

function renderModels(ratings) {
  fill($("models").tBodies[0], ratings.models.slice().reverse().map((m) => el("tr", { "data-model": m.model_id },
    el("td", { class: "num" }, m.generation), el("td", {}, short(m.model_id)), el("td", {}, m.state),
    el("td", { class: "num" }, num(m.elo)), el("td", { class: "num" }, num(m.ml)),
    el("td", {}, m.ml_low === null ? "—" : `[${num(m.ml_low)}, ${num(m.ml_high)}]`), el("td", { class: "num" }, m.games),
    el("td", {}, m.decision || "—"), el("td", {}, m.reason || ""),
    el("td", {}, el("button", { class: "link", onclick: () => showExplain(m.model_id) }, "explain")))));
  $("baselines").textContent = "baselines: " + (ratings.baselines.map((b) => `${b.participant} Elo ${num(b.elo)} ML ${num(b.ml)} (${b.games} games)`).join("; ") || "none rated yet");
}

// uPlot's auto range of a single x value spans years; pad it instead.
const padded = (pad) => (_u, min, max) => (min === max ? [min - pad, max + pad] : [min, max]);

function chart(name, opts, data) {
  const holder = $("chart-" + name);
  if (page.charts[name]) page.charts[name].destroy();
  holder.replaceChildren();
  page.charts[name] = new uPlot(Object.assign({ width: 420, height: 220 }, opts), data, holder);
}

function drawRatings(models) {
  // One point per generation: its promoted model (else its newest rated candidate).
  const byGeneration = new Map();
  for (const m of models) {
    if (m.elo === null && m.ml === null) continue;
    const held = byGeneration.get(m.generation);
    if (!held || m.promoted || !held.promoted) byGeneration.set(m.generation, m);
  }
  const points = [...byGeneration.values()].sort((a, b) => a.generation - b.generation);
  const data = [points.map((m) => m.generation), points.map((m) => m.elo), points.map((m) => m.ml),
    points.map((m) => m.ml_low), points.map((m) => m.ml_high)];
  chart("ratings", {
    scales: { x: { time: false, range: padded(1) } },
    series: [{ label: "generation" }, { label: "Elo", stroke: "#d9480f", width: 2 },
      { label: "ML", stroke: "#1971c2", width: 2 }, { label: "ML low", stroke: "#a5c8f0" }, { label: "ML high", stroke: "#a5c8f0" }],
    bands: [{ series: [4, 3], fill: "rgba(25,113,194,0.12)" }],
    axes: [{}, { size: 60 }],
  }, data);
}

function drawLosses(trainings) {
  const x = [], policy = [], value = [];
  for (const t of trainings) for (const e of t.epochs) { x.push(x.length + 1); policy.push(e.policy); value.push(e.value); }
  chart("losses", {
    scales: { x: { time: false, range: padded(1) } },
    series: [{ label: "epoch" }, { label: "policy", stroke: "#1971c2", width: 2 }, { label: "value", stroke: "#2f9e44", width: 2 }],
  }, [x, policy, value]);
}

function drawThroughput(throughput) {
  const times = [...new Set([...throughput.games.map((g) => g.t), ...throughput.trainings.map((t) => t.t)])].sort((a, b) => a - b);
  const games = new Map(throughput.games.map((g) => [g.t, g.games_per_s]));
  const samples = new Map(throughput.trainings.map((t) => [t.t, t.samples_per_s]));
  chart("throughput", {
    scales: { x: { range: padded(300) } },
    series: [{}, { label: "games/s", stroke: "#d9480f", width: 2, spanGaps: true, scale: "games" },
      { label: "samples/s", stroke: "#ae3ec9", width: 0, points: { show: true, size: 7 }, scale: "samples" }],
    axes: [{}, { scale: "games", size: 50 }, { scale: "samples", side: 1, size: 60, grid: { show: false } }],
  }, [times, times.map((t) => games.get(t) ?? null), times.map((t) => samples.get(t) ?? null)]);
}

// ------------------------------------------------------------------ explain

async function showExplain(modelId) {
  $("explain").hidden = false;
  $("explain-model").textContent = modelId;
  $("explain-summary").textContent = "loading…";
  try {
    const e = await getJSON("/api/explain/" + encodeURIComponent(modelId));
    const lines = [`config ${e.config}, generation ${e.generation}, parent ${e.parent_model_id || "—"}`];
    if (e.games) lines.push(`games: ${e.games.count} on ${e.games.subject} seq ${e.games.first_seq}..${e.games.last_seq}`);
    if (e.training) lines.push(`training ${e.training.training_id}: ${e.training.epochs} epochs, loss ${num(e.training.first_loss, 4)} → ${num(e.training.last_loss, 4)}, ${e.training.samples} samples`);
    for (const ev of e.evaluations) lines.push(`evaluation ${ev.evaluation_id}: ` + ev.results.map((r) => `${r.opponent} ${num(r.score, 3)} (${r.games} games)`).join(", "));
    lines.push(`matches ${e.matches.total || 0}, ratings: Elo ${num(e.ratings.first_elo)} → ${num(e.ratings.elo)}`);
    for (const d of e.decisions) lines.push(`decision ${d.kind} by gate ${d.gate}: ${num(d.statistic, 3)} vs ${num(d.threshold, 3)} — ${d.reason}`);
    $("explain-summary").textContent = lines.join("\n");
    fill($("explain-chain"), e.chain.map((s) => el("li", {}, `#${s.seq ?? "—"} ${s.type} ${s.event_id}` + (s.producer ? ` (${s.producer})` : ""))));
  } catch (error) {
    $("explain-summary").textContent = String(error);
    fill($("explain-chain"), []);
  }
}

// ------------------------------------------------------------------ game viewer

function renderGames(games) {
  fill($("games").tBodies[0], games.map((g) => el("tr", {
    "data-seq": g.seq, class: page.game && page.game.seq === g.seq ? "selected" : "", onclick: () => loadGame(g.seq),
  }, el("td", { class: "num" }, g.seq), el("td", {}, g.purpose), el("td", { class: "num" }, g.moves),
    el("td", {}, g.winner ?? "draw"), el("td", { class: "num" }, g.generation))));
}

async function loadGame(seq) {
  stopPlaying();
  try { page.game = await getJSON("/api/game/" + seq); } catch (error) { $("game-title").textContent = String(error); return; }
  const g = page.game;
  for (const row of $("games").tBodies[0].rows) row.classList.toggle("selected", Number(row.dataset.seq) === seq);
  $("game-title").textContent = `game ${g.game_id} (${g.config}, ${g.purpose}, #${seq}): ` +
    g.seats.map((s) => `P${s.seat} ${s.participant_id}`).join(" vs ") + ` — ${g.termination}, winner ${g.winner ?? "none"}` +
    (g.error ? ` — replay stopped: ${g.error}` : "");
  $("ply-slider").max = g.frames.length - 1;
  drawBoardCells(g.layout);
  showPly(0);
}

function polygon(cx, cy, hex) {
  if (!hex) return `${cx - 0.5},${cy - 0.5} ${cx + 0.5},${cy - 0.5} ${cx + 0.5},${cy + 0.5} ${cx - 0.5},${cy + 0.5}`;
  const points = [];
  for (let k = 0; k < 6; k++) { const a = Math.PI / 180 * (60 * k + 30); points.push(`${(cx + Math.cos(a)).toFixed(3)},${(cy + Math.sin(a)).toFixed(3)}`); }
  return points.join(" ");
}

function drawBoardCells(layout) {
  const svg = $("board");
  const xs = layout.centres.map((c) => c[0]), ys = layout.centres.map((c) => c[1]);
  const pad = layout.hex ? 1.1 : 0.6;
  const minX = Math.min(...xs) - pad, minY = Math.min(...ys) - pad;
  svg.setAttribute("viewBox", `${minX} ${minY} ${Math.max(...xs) + pad - minX} ${Math.max(...ys) + pad - minY}`);
  svg.dataset.board = layout.board;
  const ns = "http://www.w3.org/2000/svg";
  const cells = document.createElementNS(ns, "g");
  cells.setAttribute("id", "board-cells");
  layout.centres.forEach(([x, y], i) => {
    const shape = document.createElementNS(ns, "polygon");
    shape.setAttribute("points", polygon(x, y, layout.hex));
    shape.setAttribute("stroke", "#c3c9d0"); shape.setAttribute("stroke-width", "0.04"); shape.setAttribute("fill", "#fff");
    shape.dataset.cell = i;
    const title = document.createElementNS(ns, "title"); title.textContent = layout.keys[i]; shape.append(title);
    cells.append(shape);
  });
  const pieces = document.createElementNS(ns, "g");
  pieces.setAttribute("id", "board-pieces");
  svg.replaceChildren(cells, pieces);
}

function showPly(ply) {
  const g = page.game;
  if (!g) return;
  page.ply = Math.max(0, Math.min(ply, g.frames.length - 1));
  const frame = g.frames[page.ply];
  const ns = "http://www.w3.org/2000/svg";
  const shapes = $("board-cells").children;
  for (const shape of shapes) shape.setAttribute("fill", "#fff");
  const pieces = $("board-pieces");
  pieces.replaceChildren();
  for (const [cell, controller, height, marker, collapsed] of frame.cells) {
    const [x, y] = g.layout.centres[cell];
    if (collapsed) shapes[cell].setAttribute("fill", TERRITORY_COLOURS[collapsed]);
    if (marker) {
      const ring = document.createElementNS(ns, "circle");
      ring.setAttribute("cx", x); ring.setAttribute("cy", y); ring.setAttribute("r", 0.3);
      ring.setAttribute("fill", "none"); ring.setAttribute("stroke", PLAYER_COLOURS[marker]); ring.setAttribute("stroke-width", 0.09);
      pieces.append(ring);
    }
    if (height) {
      const stack = document.createElementNS(ns, "circle");
      stack.setAttribute("cx", x); stack.setAttribute("cy", y); stack.setAttribute("r", 0.36);
      stack.setAttribute("fill", PLAYER_COLOURS[controller]); stack.setAttribute("class", "stack");
      const label = document.createElementNS(ns, "text");
      label.setAttribute("x", x); label.setAttribute("y", y + 0.14); label.setAttribute("font-size", 0.42);
      label.setAttribute("text-anchor", "middle"); label.setAttribute("fill", "#fff"); label.textContent = height;
      pieces.append(stack, label);
    }
  }
  $("ply-slider").value = page.ply;
  $("game-ply").textContent = `ply ${page.ply} / ${g.frames.length - 1}` + (frame.move ? ` — ${frame.move}` : "");
  $("game-status").textContent = (frame.over ? `game over, winner ${frame.winner ?? "none"}` : `player ${frame.to_act} to act (${frame.phase})`) +
    " — " + frame.players.map((p) => `P${p.player}: hand ${p.hand}, eliminated ${p.eliminated}, territory ${p.territory}`).join("; ");
}

function stopPlaying() { if (page.timer) { clearInterval(page.timer); page.timer = null; $("play").textContent = "play"; } }
function togglePlay() {
  if (page.timer) { stopPlaying(); return; }
  if (!page.game) return;
  $("play").textContent = "pause";
  page.timer = setInterval(() => { if (page.ply >= page.game.frames.length - 1) stopPlaying(); else showPly(page.ply + 1); }, 250);
}

// ------------------------------------------------------------------ wiring

$("config-select").addEventListener("change", (event) => { page.config = event.target.value; renderTimeline(); loadConfig(); });
$("timeline-all").addEventListener("change", renderTimeline);
$("explain-close").addEventListener("click", () => { $("explain").hidden = true; });
$("first").addEventListener("click", () => { stopPlaying(); showPly(0); });
$("prev").addEventListener("click", () => { stopPlaying(); showPly(page.ply - 1); });
$("next").addEventListener("click", () => { stopPlaying(); showPly(page.ply + 1); });
$("last").addEventListener("click", () => { stopPlaying(); if (page.game) showPly(page.game.frames.length - 1); });
$("play").addEventListener("click", togglePlay);
$("ply-slider").addEventListener("input", (event) => { stopPlaying(); showPly(Number(event.target.value)); });
connect();
