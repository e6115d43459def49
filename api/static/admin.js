// pushfan dashboard: audience estimate, preview, send with confirmation, live progress.
// Plain JS, no build step. User text is only ever set with textContent (never innerHTML).
"use strict";

const csrf = document.querySelector('meta[name="csrf-token"]').content;
const form = document.getElementById("compose");
const estimateOut = document.getElementById("estimate");
const errorOut = document.getElementById("compose-error");
const dialog = document.getElementById("confirm");
const fmt = (n) => Number(n).toLocaleString("en-US");
let estimate = null; // {audience, query}
let idempotencyKey = newKey();

function newKey() {
  // crypto.randomUUID needs a secure context; getRandomValues works everywhere.
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function post(url, body, extraHeaders) {
  return fetch(url, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf, ...extraHeaders },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

async function problem(response) {
  try {
    const body = await response.json();
    const detail = body.detail;
    if (typeof detail === "string") return detail;
    return detail.map((e) => `${e.loc.slice(1).join(".")}: ${e.msg}`).join("; ");
  } catch (_) {
    return `${response.status} ${response.statusText}`;
  }
}

// -- compose -----------------------------------------------------------------------------

function audience() {
  if (form.scope.value === "everyone") return { platforms: [], apps: [], tags: [] };
  const checked = (name) =>
    Array.from(form.querySelectorAll(`input[name=${name}]:checked`), (i) => i.value);
  const tags = form.tags.value.split(",").map((t) => t.trim()).filter(Boolean);
  return { platforms: checked("platforms"), apps: checked("apps"), tags };
}

function alertBody() {
  const data = {};
  for (const line of form.data.value.split("\n")) {
    if (!line.trim()) continue;
    const at = line.indexOf("=");
    if (at < 1) throw new Error(`data line "${line}" is not key=value`);
    data[line.slice(0, at).trim()] = line.slice(at + 1).trim();
  }
  const body = { data, audience: audience(), ttl: Number(form.ttl.value) };
  // datetime-local is the browser's wall-clock time; the API wants RFC 3339 with an offset.
  if (form.send_at.value) body.send_at = new Date(form.send_at.value).toISOString();
  if (form.content_available.checked) {
    // Silent: nothing visible, and the server's default priority (normal) for it.
    body.content_available = true;
  } else {
    body.title = form.title.value;
    body.body = form.body.value;
    body.priority = form.priority.value;
    const text = ["subtitle", "sound", "image", "category", "thread_id",
      "interruption_level", "url"];
    for (const name of text) if (form[name].value.trim()) body[name] = form[name].value.trim();
    if (form.badge.value !== "") body.badge = Number(form.badge.value);
    if (form.relevance_score.value !== "") body.relevance_score = Number(form.relevance_score.value);
    if (form.data_only.checked) body.data_only = true;
  }
  for (const name of ["apns", "android"]) {
    const text = form[name].value.trim();
    if (!text) continue;
    try { body[name] = JSON.parse(text); }
    catch (_) { throw new Error(`the ${name} override is not valid JSON`); }
  }
  return body;
}

function audienceQuery() {
  const q = new URLSearchParams();
  const a = audience();
  for (const key of ["platforms", "apps", "tags"]) for (const v of a[key]) q.append(key, v);
  return q.toString();
}

async function refreshEstimate() {
  const query = audienceQuery();
  const response = await fetch(`/admin/api/estimate?${query}`, { credentials: "same-origin" });
  if (query !== audienceQuery()) return null; // the audience changed meanwhile
  if (!response.ok) {
    estimate = null;
    estimateOut.textContent = await problem(response);
    return null;
  }
  const body = await response.json();
  estimate = { audience: body.audience, query };
  const noun = body.audience === 1 ? "device" : "devices";
  estimateOut.textContent = `This will reach ${fmt(body.audience)} ${noun}`;
  estimateOut.dataset.audience = body.audience;
  return estimate;
}

let timer = null;
function estimateSoon() {
  clearTimeout(timer);
  estimate = null;
  timer = setTimeout(refreshEstimate, 250); // debounce: one count per pause in typing
}

function preview() {
  const silent = form.content_available.checked;
  document.getElementById("visible").hidden = silent;
  form.title.required = form.body.required = !silent;
  const title = form.title.value || "Title";
  const body = form.body.value || "Message";
  const subtitle = form.subtitle.value.trim();
  const image = form.image.value.trim();
  const badge = form.badge.value;
  for (const el of document.querySelectorAll(".p-title")) el.textContent = title;
  for (const el of document.querySelectorAll(".p-body")) el.textContent = body;
  for (const el of document.querySelectorAll(".p-subtitle")) {
    el.textContent = subtitle;
    el.hidden = !subtitle;
  }
  for (const el of document.querySelectorAll(".p-image")) {
    // Named, not loaded: the page's CSP keeps remote images out of the dashboard.
    el.textContent = image ? `🖼 ${image.split("/").pop() || image}` : "";
    el.hidden = !image;
  }
  for (const el of document.querySelectorAll(".p-badge")) {
    el.textContent = badge;
    el.hidden = badge === "" || Number(badge) === 0;
  }
  for (const el of document.querySelectorAll(".banner")) el.hidden = silent;
  for (const el of document.querySelectorAll(".p-silent")) el.hidden = !silent;
}

form.addEventListener("input", (event) => {
  document.getElementById("filters").hidden = form.scope.value === "everyone";
  preview();
  if (["scope", "platforms", "apps", "tags"].includes(event.target.name)) estimateSoon();
  idempotencyKey = newKey(); // an edited alert is a new alert
});

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  errorOut.hidden = true;
  let body;
  try {
    if (!form.reportValidity()) return;
    body = alertBody();
  } catch (err) {
    return showError(err.message);
  }
  // Counted again now: the confirmation repeats the audience as it is at this moment.
  const current = await refreshEstimate();
  if (!current) return showError("Could not count the audience; check the filters.");
  document.getElementById("confirm-text").textContent =
    `“${body.title || "Silent push"}” will be sent to ${fmt(current.audience)} devices` +
    (body.send_at ? ` at ${new Date(body.send_at).toLocaleString()} (until then, Cancel stops it).` : ". This cannot be undone.");
  document.getElementById("confirm-send").textContent = `Send to ${fmt(current.audience)} devices`;
  dialog.returnValue = "";
  dialog.showModal();
  dialog.onclose = () => { if (dialog.returnValue === "send") send(body); };
});

async function send(body) {
  const button = document.getElementById("send");
  button.disabled = true;
  try {
    const response = await post("/admin/api/alerts", body, { "Idempotency-Key": idempotencyKey });
    if (!response.ok) return showError(await problem(response));
    watched.add((await response.json()).id);
    form.reset();
    preview();
    idempotencyKey = newKey();
    refreshEstimate();
    poll();
  } catch (err) {
    showError(`Not sent: ${err.message}. Sending again is safe.`);
  } finally {
    button.disabled = false;
  }
}

function showError(message) {
  errorOut.textContent = message;
  errorOut.hidden = false;
}

// -- progress ----------------------------------------------------------------------------

const samples = new Map(); // alert id -> {finished, at, rate}
const RUNNING = new Set(["scheduled", "queued", "expanding", "sending"]);

function el(tag, text, attrs) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = text;
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  return node;
}

function titleOf(a) { return a.title || "(silent push)"; }

function finishedOf(c) { return c.delivered + c.invalid + c.failed + c.expired; }

function rateOf(a) {
  // Smoothed over successive polls, so one slow poll does not swing the ETA.
  const now = performance.now() / 1000;
  const finished = finishedOf(a.counts);
  const last = samples.get(a.id);
  let rate = a.age_s > 0 ? finished / a.age_s : 0;
  if (last && now > last.at) {
    const instant = (finished - last.finished) / (now - last.at);
    rate = last.rate === null ? instant : 0.7 * last.rate + 0.3 * instant;
  }
  samples.set(a.id, { finished, at: now, rate });
  return rate;
}

function stat(label, value, key) {
  const span = el("span", `${label} `);
  span.appendChild(el("b", value, { "data-stat": key }));
  return span;
}

function runningCard(a) {
  const c = a.counts;
  // The bar shows every device accounted for, cancelled ones included; the rate only sends.
  const finished = finishedOf(c) + (c.cancelled || 0);
  const rate = rateOf(a);
  const card = el("article", null, { class: "alert", "data-alert": a.id, "data-status": a.status });
  card.appendChild(el("h3", titleOf(a)));
  const pct = c.audience ? Math.min(100, Math.floor((finished * 100) / c.audience)) : 0;
  const bar = el("progress", null, { max: c.audience || 1, "aria-label": `Progress of ${titleOf(a)}` });
  if (c.audience !== null) bar.value = finished;
  card.appendChild(bar);
  const running = RUNNING.has(a.status);
  const eta = !running ? "—" : c.pending && rate > 0 ? `${Math.ceil(c.pending / rate)} s` : "…";
  const stats = el("div", null, { class: "stats" });
  stats.append(
    stat("Status", a.status, "status"),
    ...(a.send_at ? [stat("Sends at", new Date(a.send_at).toLocaleString(), "send-at")] : []),
    stat("Done", c.audience === null ? "…" : `${pct}%`, "percent"),
    stat("Audience", c.audience === null ? "counting…" : fmt(c.audience), "audience"),
    stat("Delivered", fmt(c.delivered), "delivered"), stat("Invalid", fmt(c.invalid), "invalid"),
    stat("Failed", fmt(c.failed), "failed"), stat("Expired", fmt(c.expired), "expired"),
    stat("Cancelled", fmt(c.cancelled || 0), "cancelled"),
    stat("Rate", `${fmt(Math.round(rate))}/s`, "rate"), stat("ETA", eta, "eta"),
  );
  card.appendChild(stats);
  if (running) {
    const cancel = el("button", "Cancel", { type: "button", class: "danger", "data-cancel": a.id });
    cancel.addEventListener("click", () => cancelAlert(a, cancel));
    card.appendChild(cancel);
  }
  return card;
}

async function cancelAlert(a, button) {
  if (button.dataset.armed !== "1") { // two clicks: a stray tap never stops an alert
    button.dataset.armed = "1";
    button.textContent = `Really cancel “${titleOf(a)}”?`;
    return;
  }
  button.disabled = true;
  const response = await post(`/admin/api/alerts/${encodeURIComponent(a.id)}/cancel`);
  if (!response.ok) {
    button.disabled = false;
    button.textContent = `Cancel failed: ${await problem(response)}`;
    return;
  }
  poll();
}

function historyRow(a) {
  const c = a.counts;
  const row = el("tr", null, { "data-alert": a.id, "data-status": a.status });
  const when = new Date(a.created_at).toLocaleString();
  for (const v of [when, titleOf(a), a.status, c.audience === null ? "…" : fmt(c.audience),
    fmt(c.delivered), fmt(c.invalid), fmt(c.failed), fmt(c.expired)]) row.appendChild(el("td", v));
  return row;
}

const armed = new Set(); // cancel buttons mid-confirmation survive a re-render
const watched = new Set();
async function poll() {
  let list;
  try {
    const response = await fetch("/admin/api/alerts", { credentials: "same-origin" });
    if (response.status === 401) { window.location = "/admin/login"; return; }
    if (!response.ok) return;
    list = (await response.json()).alerts;
  } catch (_) {
    return; // the next poll retries
  }
  const running = document.getElementById("running");
  armed.clear();
  for (const b of running.querySelectorAll("button[data-armed='1']")) armed.add(b.dataset.cancel);
  running.replaceChildren();
  for (const a of list) if (RUNNING.has(a.status)) watched.add(a.id);
  // Alerts seen running stay here with their final counts until the page is reloaded.
  const active = list.filter((a) => watched.has(a.id));
  for (const a of active) {
    const card = runningCard(a);
    const button = card.querySelector("button[data-cancel]");
    if (button && armed.has(a.id)) {
      button.dataset.armed = "1";
      button.textContent = `Really cancel “${titleOf(a)}”?`;
    }
    running.appendChild(card);
  }
  if (!active.length) running.appendChild(el("p", "No alert is running.", { class: "hint" }));
  document.querySelector("#history tbody").replaceChildren(
    ...list.filter((a) => !RUNNING.has(a.status)).map(historyRow));
}

preview();
refreshEstimate();
poll();
setInterval(poll, 1000);
