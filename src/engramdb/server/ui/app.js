// engramdb web page: look into what an agent remembers about a user, through the REST API.
// Plain JavaScript, no build step. Every value from the server is shown with textContent.
"use strict";

const $ = (id) => document.getElementById(id);
const state = {
  key: sessionStorage.getItem("engramdb.key") || "", user: "", selected: null, scope: "read",
};

// ---------- API ----------
class ApiError extends Error {
  constructor(status, body) {
    const err = (body && body.error) || {};
    super(err.message || `HTTP ${status}`);
    this.status = status;
    this.code = err.code || "http_error";
    this.field = err.field || null;
  }
}

async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (state.key) headers.Authorization = `Bearer ${state.key}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

const enc = encodeURIComponent;
const query = (params) => Object.entries(params)
  .filter(([, v]) => v !== undefined && v !== null && v !== "")
  .map(([k, v]) => `${enc(k)}=${enc(v)}`).join("&");

// ---------- small DOM helpers ----------
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function when(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

function showMessage(text, kind = "error") {
  const box = $("message");
  box.textContent = text;
  box.className = kind === "error" ? "message" : "message info";
  box.hidden = !text;
}

function fail(err) {
  const where = err.field ? ` (${err.field})` : "";
  showMessage(`${err.message}${where}`);
  if (err.status === 401) $("key-status").textContent = "key refused";
}

// ---------- users ----------
function recentUsers() {
  try { return JSON.parse(localStorage.getItem("engramdb.users") || "[]"); } catch { return []; }
}

function rememberUser(user) {
  const users = [user, ...recentUsers().filter((u) => u !== user)].slice(0, 20);
  localStorage.setItem("engramdb.users", JSON.stringify(users));
  renderRecentUsers();
}

function renderRecentUsers() {
  $("recent-users").replaceChildren(...recentUsers().map((u) => el("option", { value: u })));
}

async function loadUsers() {
  try {
    const users = await api("GET", `/v1/users?${query({ limit: 1000 })}`);
    $("users").replaceChildren(...(users.length ? users.map((u) => {
      const item = el("li", { "data-user": u.user_id, tabindex: "0" },
        el("span", {}, u.user_id), el("span", { class: "muted" }, `${u.active}`));
      item.title = `${u.memories} memories, ${u.active} active`;
      item.addEventListener("click", () => { $("user-id").value = u.user_id; openUser(); });
      return item;
    }) : [el("li", { class: "empty" }, "No memories yet.")]));
  } catch (err) { fail(err); }
}

async function addMessage(event) {
  event.preventDefault();
  const content = $("add-text").value.trim();
  if (!state.user || !content) return;
  const body = {
    messages: [{ role: $("add-role").value, content }], user_id: state.user,
  };
  if ($("add-session").value.trim()) body.session_id = $("add-session").value.trim();
  try {
    const result = await api("POST", "/v1/memories", body);
    $("add-text").value = "";
    await listMemories();
    loadUsers();
    const ops = result.operations.map((op) => op.op).join(", ");
    showMessage(result.duplicate ? "Already stored: nothing new." : `Added (${ops}).`, "info");
  } catch (err) { fail(err); }
}

async function openById(event) {
  event.preventDefault();
  const id = $("open-id").value.trim();
  if (!id) return;
  try {
    const memory = await api("GET", `/v1/memories/${enc(id)}`);
    showMessage("");
    await openMemory(memory.id);
  } catch (err) { fail(err); }
}

// ---------- facts and the entity graph ----------
// Each current fact with the chain of facts it replaced (newest first) and when each ended.
function factChains(facts) {
  const byReplacement = new Map();
  for (const f of facts) if (f.superseded_by) byReplacement.set(f.superseded_by, f);
  return facts.filter((f) => f.status === "active").map((current) => {
    const replaced = [];
    for (let f = byReplacement.get(current.id); f && replaced.length < 50; f = byReplacement.get(f.id)) {
      replaced.push(f);
    }
    return { current, replaced };
  });
}

async function showFacts() {
  if (!state.user) return;
  try {
    const [facts, graph] = await Promise.all([
      api("GET", `/v1/memories?${query({ user_id: state.user, kinds: "fact", status: "all", limit: 1000 })}`),
      api("GET", `/v1/users/${enc(state.user)}/graph`),
    ]);
    const chains = factChains(facts);
    $("results").hidden = true;
    $("facts-view").hidden = false;
    $("results-title").textContent = `Facts of ${state.user}`;
    $("results-count").textContent = `${chains.length} current`;
    $("facts").replaceChildren(...(chains.length ? chains.map(({ current, replaced }) => {
      const item = el("li", { "data-id": current.id },
        el("div", {}, current.text, " ", el("span", { class: "muted" },
          `since ${when(current.valid_from || current.created_at)}`)));
      if (replaced.length) {
        item.append(el("ul", { class: "replaced" }, ...replaced.map((old) => el("li", {},
          `replaced “${old.text}”`, el("span", { class: "muted" },
            ` (${when(old.valid_from || old.created_at)} → ${when(old.valid_to)})`)))));
      }
      item.addEventListener("click", () => openMemory(current.id));
      return item;
    }) : [el("li", { class: "empty" }, "No facts: messages are stored as they were said "
      + "(the server extracts facts with --extract rules).")]));
    renderGraph(graph);
  } catch (err) { fail(err); }
}

function renderGraph(graph) {
  const names = new Map(graph.entities.map((e) => [e.id, e.name]));
  const svg = $("graph");
  const ns = "http://www.w3.org/2000/svg";
  const node = (tag, attrs, text) => {
    const n = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v);
    if (text !== undefined) n.textContent = text;
    return n;
  };
  const linked = [...new Set(graph.edges.flatMap((e) => [e.source_id, e.target_id]))];
  const width = svg.clientWidth || 480;
  const height = 320;
  const radius = Math.min(width, height) / 2 - 40;
  const at = new Map(linked.map((id, i) => {
    const angle = (2 * Math.PI * i) / Math.max(linked.length, 1);
    return [id, [width / 2 + radius * Math.cos(angle), height / 2 + radius * Math.sin(angle)]];
  }));
  svg.hidden = !graph.edges.length;
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.replaceChildren(
    ...graph.edges.map((e) => {
      const [x1, y1] = at.get(e.source_id);
      const [x2, y2] = at.get(e.target_id);
      return node("line", { x1, y1, x2, y2, class: e.valid_to ? "ended" : "" });
    }),
    ...linked.flatMap((id) => {
      const [x, y] = at.get(id);
      return [node("circle", { cx: x, cy: y, r: 5 }), node("text", { x: x + 7, y: y - 7 }, names.get(id) || id)];
    }),
  );
  $("relations").replaceChildren(...(graph.edges.length ? graph.edges.map((e) => el("li", {},
    `${names.get(e.source_id) || e.source_id} — ${e.relation} → ${names.get(e.target_id) || e.target_id}`,
    el("span", { class: "muted" },
      ` (${when(e.valid_from)}${e.valid_to ? ` → ${when(e.valid_to)}` : ""})`))) : [el("li", { class: "empty" }, "No relations stored.")]));
}

// ---------- lists ----------
// A list is ordered by when memories were stored, a search by relevance: each card shows the
// time that means something there (stored, or when it was said).
function renderCards(items, title, { searched = false } = {}) {
  $("facts-view").hidden = true;
  $("results").hidden = false;
  $("results-title").textContent = title;
  $("results-count").textContent = `${items.length} shown`;
  const list = $("results");
  if (!items.length) {
    list.replaceChildren(el("li", { class: "empty" }, "Nothing here."));
    return;
  }
  list.replaceChildren(...items.map((m) => {
    const card = el("li", { class: "card", "data-id": m.id, tabindex: "0" },
      el("p", { class: "text" }, m.text),
      el("div", { class: "meta" },
        el("span", { class: "chip" }, m.kind),
        m.status ? el("span", { class: `chip ${m.status}` }, m.status) : null,
        searched ? el("span", {}, `said ${when(m.valid_from || m.created_at)}`)
          : el("span", {}, `stored ${when(m.created_at)}`),
        el("span", { class: "id" }, m.id.slice(0, 12)),
      ));
    card.addEventListener("click", () => openMemory(m.id));
    card.addEventListener("keydown", (e) => { if (e.key === "Enter") openMemory(m.id); });
    if (state.selected === m.id) card.classList.add("selected");
    return card;
  }));
}

async function listMemories() {
  if (!state.user) return;
  const params = { user_id: state.user, status: $("status").value, limit: 1000 };
  if ($("kind").value) params.kinds = $("kind").value;
  try {
    let items = await api("GET", `/v1/memories?${query(params)}`);
    const since = $("since").value ? new Date(`${$("since").value}T00:00:00`) : null;
    const until = $("until").value ? new Date(`${$("until").value}T23:59:59.999`) : null;
    items = items.filter((m) => {
      const t = new Date(m.created_at);
      return (!since || t >= since) && (!until || t <= until);
    });
    showMessage("");
    renderCards(items.reverse(), `Memories of ${state.user}`);
  } catch (err) { fail(err); }
}

async function search(event) {
  event.preventDefault();
  const text = $("query").value.trim();
  if (!state.user) { showMessage("Open a user first."); return; }
  if (!text) { listMemories(); return; }
  const body = { query: text, user_id: state.user, limit: 20 };
  if ($("kind").value) body.kinds = [$("kind").value];
  if ($("as-of").value) body.as_of = new Date($("as-of").value).toISOString();
  try {
    const hits = await api("POST", "/v1/memories/search", body);
    showMessage("");
    renderCards(hits, `Search: “${text}”`, { searched: true });
  } catch (err) { fail(err); }
}

// ---------- one memory ----------
async function openMemory(id) {
  state.selected = id;
  document.querySelectorAll(".card").forEach((c) => c.classList.toggle("selected", c.dataset.id === id));
  try {
    const [memory, history, sources] = await Promise.all([
      api("GET", `/v1/memories/${enc(id)}`),
      api("GET", `/v1/memories/${enc(id)}/history`),
      api("GET", `/v1/memories/${enc(id)}/sources`),
    ]);
    renderDetail(memory);
    renderHistory(history);
    renderSources(sources);
    renderVersions(await versionsOf(memory));
    $("detail").hidden = false;
  } catch (err) { fail(err); }
}

function renderDetail(m) {
  $("detail-text").textContent = m.text;
  const fields = [
    ["id", m.id], ["kind", m.kind], ["status", m.status], ["slot", m.slot],
    ["valid", `${when(m.valid_from)} → ${m.valid_to ? when(m.valid_to) : "now"}`],
    ["created", when(m.created_at)], ["superseded by", m.superseded_by],
    ["session", m.scope.session_id], ["agent", m.scope.agent_id], ["trust", m.trust],
    ["importance", m.importance], ["accessed", `${m.access_count}×`],
    ["metadata", Object.keys(m.metadata).length ? JSON.stringify(m.metadata) : null],
  ];
  $("detail-fields").replaceChildren(...fields.filter(([, v]) => v !== null && v !== undefined)
    .flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
  $("edit-text").value = m.text;
  $("edit-metadata").value = JSON.stringify(m.metadata, null, 2);
  $("edit-form").hidden = true;
  $("release").hidden = m.status !== "quarantined";
  $("detail").dataset.id = m.id;
}

async function releaseSelected() {
  const id = $("detail").dataset.id;
  const reason = window.prompt("Why is this memory safe? (kept in its history)", "checked by a reviewer");
  if (reason === null) return;
  try {
    await api("POST", `/v1/memories/${enc(id)}/release`, { reason: reason || "released by a reviewer" });
    showMessage("Released: the memory is active again.", "ok");
    await openMemory(id);
    listMemories();
  } catch (err) { fail(err); }
}

function renderHistory(entries) {
  $("history").replaceChildren(...entries.map((h) => el("li", {},
    el("span", { class: "op" }, h.op), ` · ${when(h.at)} · ${h.actor}`,
    h.reason ? ` · ${h.reason}` : "",
    h.old_text && h.new_text && h.old_text !== h.new_text
      ? el("div", { class: "muted" }, `“${h.old_text}” → “${h.new_text}”`) : null,
  )));
}

function renderSources(episodes) {
  if (!episodes.length) {
    $("sources").replaceChildren(el("li", { class: "empty" }, "No source messages kept."));
    return;
  }
  $("sources").replaceChildren(...episodes.map((e) => el("li", {},
    el("span", { class: "who" }, `${e.name || e.role}: `), e.content,
    el("div", { class: "muted" },
      `${when(e.occurred_at)}${e.scope.session_id ? ` · session ${e.scope.session_id}` : ""}`),
  )));
}

// The chain of versions: older memories whose superseded_by leads here, then newer ones.
async function versionsOf(memory) {
  const all = await api("GET", `/v1/memories?${query({ user_id: memory.scope.user_id, status: "all", limit: 1000 })}`);
  const byId = new Map(all.map((m) => [m.id, m]));
  byId.set(memory.id, memory);
  const older = [];
  let cursor = memory.id;
  for (let i = 0; i < 50; i += 1) {
    const previous = all.find((m) => m.superseded_by === cursor);
    if (!previous) break;
    older.unshift(previous);
    cursor = previous.id;
  }
  const newer = [];
  let next = memory.superseded_by;
  for (let i = 0; next && i < 50; i += 1) {
    const found = byId.get(next) || await api("GET", `/v1/memories/${enc(next)}`).catch(() => null);
    if (!found) break;
    newer.push(found);
    next = found.superseded_by;
  }
  return [...older, memory, ...newer];
}

function renderVersions(chain) {
  if (chain.length < 2) {
    $("versions").replaceChildren(el("li", { class: "empty" }, "No other versions."));
    return;
  }
  const current = $("detail").dataset.id;
  $("versions").replaceChildren(...chain.map((m) => {
    const item = el("li", { class: m.id === current ? "current" : "" },
      m.text, " ", el("span", { class: `chip ${m.status}` }, m.status),
      el("div", { class: "muted" },
        `${when(m.valid_from || m.created_at)} → ${m.valid_to ? when(m.valid_to) : "now"}`));
    if (m.id !== current) {
      item.style.cursor = "pointer";
      item.addEventListener("click", () => openMemory(m.id));
    }
    return item;
  }));
}

async function saveEdit(event) {
  event.preventDefault();
  const id = $("detail").dataset.id;
  let metadata;
  try { metadata = JSON.parse($("edit-metadata").value || "{}"); } catch {
    showMessage("Metadata is not valid JSON."); return;
  }
  try {
    await api("PATCH", `/v1/memories/${enc(id)}`, { text: $("edit-text").value, metadata });
    await listMemories();
    await openMemory(id);
    showMessage("Saved.", "info");
  } catch (err) { fail(err); }
}

// ---------- confirmations ----------
function confirmWith({ title, text, typed }) {
  const dialog = $("confirm");
  $("confirm-title").textContent = title;
  $("confirm-text").textContent = text;
  $("confirm-label").textContent = typed ? `Type ${typed} to confirm` : "";
  $("confirm-label").hidden = !typed;
  $("confirm-input").hidden = !typed;
  $("confirm-input").value = "";
  $("confirm-ok").disabled = Boolean(typed);
  $("confirm-input").oninput = () => { $("confirm-ok").disabled = $("confirm-input").value !== typed; };
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.returnValue = "";
    dialog.showModal();
  });
}

async function deleteSelected() {
  const id = $("detail").dataset.id;
  const ok = await confirmWith({
    title: "Delete this memory?",
    text: `“${$("detail-text").textContent}” will be erased; its history keeps a DELETE entry.`,
  });
  if (!ok) return;
  try {
    await api("DELETE", `/v1/memories/${enc(id)}`);
    $("detail").hidden = true;
    state.selected = null;
    await listMemories();
    showMessage("Deleted.", "info");
  } catch (err) { fail(err); }
}

async function forgetUser() {
  const user = state.user;
  const ok = await confirmWith({
    title: `Forget ${user}?`,
    text: "Every message, memory, history entry and entity of this user is erased for good. "
      + "This cannot be undone.",
    typed: user,
  });
  if (!ok) return;
  try {
    const receipt = await api("POST", `/v1/users/${enc(user)}/forget`);
    const counts = Object.entries(receipt.counts).map(([k, v]) => `${v} ${k}`).join(", ");
    $("detail").hidden = true;
    showMessage(`Forgot ${user}: erased ${counts}.`, "info");
    renderCards([], `Memories of ${user}`);
    loadUsers();
  } catch (err) { fail(err); }
}

// ---------- wiring ----------
async function connect(event) {
  if (event) event.preventDefault();
  state.key = $("api-key").value.trim();
  sessionStorage.setItem("engramdb.key", state.key);
  try {
    const me = await api("GET", "/v1/whoami");
    state.scope = me.scope;
    document.body.classList.remove("scope-read", "scope-write", "scope-admin");
    document.body.classList.add(`scope-${me.scope}`);
    $("key-status").textContent = state.key ? "connected" : "connected (no key)";
    $("key-scope").textContent = `tenant ${me.tenant_id} · ${me.scope} key`;
    showMessage("");
    loadUsers();
  } catch (err) {
    $("key-status").textContent = err.status === 401 ? "key refused" : "cannot connect";
    fail(err);
  }
}

function openUser(event) {
  if (event) event.preventDefault();
  state.user = $("user-id").value.trim();
  if (!state.user) return;
  rememberUser(state.user);
  $("forget-user").disabled = false;
  $("show-facts").disabled = false;
  $("add-form").hidden = false;
  $("detail").hidden = true;
  document.querySelectorAll("#users li").forEach((li) => li.classList.toggle("selected", li.dataset.user === state.user));
  listMemories();
}

$("key-form").addEventListener("submit", connect);
$("user-form").addEventListener("submit", openUser);
$("search-form").addEventListener("submit", search);
$("filter-form").addEventListener("submit", (e) => { e.preventDefault(); listMemories(); });
$("forget-user").addEventListener("click", forgetUser);
$("show-facts").addEventListener("click", showFacts);
$("add-form").addEventListener("submit", addMessage);
$("open-id-form").addEventListener("submit", openById);
$("close-detail").addEventListener("click", () => { $("detail").hidden = true; });
$("edit").addEventListener("click", () => { $("edit-form").hidden = false; $("edit-text").focus(); });
$("cancel-edit").addEventListener("click", () => { $("edit-form").hidden = true; });
$("edit-form").addEventListener("submit", saveEdit);
$("delete").addEventListener("click", deleteSelected);
$("release").addEventListener("click", releaseSelected);

$("api-key").value = state.key;
renderRecentUsers();
if (state.key) connect();
