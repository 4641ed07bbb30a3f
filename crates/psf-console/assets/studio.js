// The studio: the manifest's workflow on a canvas.
//
// The page carries the manifest as JSON. Every change is an edit by JSON pointer (add,
// replace, remove); the canvas draws the manifest with the edits applied, undo and redo
// walk the list, and the server applies the same edits to the manifest's text (comments
// kept) and checks them with psf check's rules. Each error is drawn on its node.
// Layout is layered left to right (apps, decision points, models by fallback depth,
// providers) in manifest order, so it is the same every time the manifest is.
"use strict";

(function () {
  const dataEl = document.getElementById("studio-data");
  if (!dataEl) return;
  const data = JSON.parse(dataEl.textContent);
  const svg = document.getElementById("canvas");
  svg.setAttribute("preserveAspectRatio", "xMinYMin meet");
  const panel = document.getElementById("panel");
  const toolbar = document.querySelector(".toolbar");
  const csrf = document.querySelector("#studio-form input[name=csrf]").value;
  const NS = "http://www.w3.org/2000/svg";
  const W = 200, H = 78, COL = 250, ROW = 110, PAD = 30;
  const AUTONOMY = ["advisory", "supervised", "autonomous"];
  const STAKES = ["low", "medium", "high"];
  const FILL = { autonomous: "#fde2c0", advisory: "#dbe8f7", supervised: "#d5ecd4" };

  let base = data.manifest;
  let baseSha = data.base_sha256;
  let edits = [];
  let redo = [];
  let selected = null; // { kind, index }
  let diagnostics = [];
  let changes = []; // what the edits change, from the server: the diff view
  let described = [];
  let changesFrom = "the saved manifest"; // what the listed changes are measured from
  let view = null;
  let status = "";

  // ---- edits, applied to JSON as the server applies them to text -------------------
  function clone(v) { return JSON.parse(JSON.stringify(v)); }
  function unescape(t) { return t.replace(/~1/g, "/").replace(/~0/g, "~"); }
  function applyEdit(root, e) {
    const parts = e.pointer.split("/").slice(1).map(unescape);
    const last = parts.pop();
    let target = root;
    for (const p of parts) {
      if (target == null) throw new Error(`no ${e.pointer}`);
      target = target[Array.isArray(target) ? Number(p) : p];
    }
    if (Array.isArray(target)) {
      if (e.op === "add" && last === "-") target.push(clone(e.value));
      else if (e.op === "replace") target[Number(last)] = clone(e.value);
      else if (e.op === "remove") target.splice(Number(last), 1);
    } else if (target && typeof target === "object") {
      if (e.op === "remove") delete target[last];
      else target[last] = clone(e.value);
    }
  }
  function current() {
    const m = clone(base);
    for (const e of edits) applyEdit(m, e);
    return m;
  }
  function push(e) {
    if (!data.editable) return;
    edits.push(e);
    redo = [];
    changed();
  }
  function undo() { if (edits.length) { redo.push(edits.pop()); changed(); } }
  function redoOne() { if (redo.length) { edits.push(redo.pop()); changed(); } }

  // ---- the server: check and save ---------------------------------------------------
  async function post(path, extra) {
    const body = new URLSearchParams({ csrf, edits: JSON.stringify(edits), base_sha256: baseSha, ...(extra || {}) });
    const r = await fetch(path, { method: "POST", body, credentials: "same-origin" });
    let json = {};
    try { json = await r.json(); } catch (e) { json = { error: `the server answered ${r.status}` }; }
    return { status: r.status, json };
  }
  let checkTimer = null;
  function scheduleCheck() {
    clearTimeout(checkTimer);
    if (!data.editable || !edits.length) { diagnostics = []; changes = []; described = []; status = ""; draw(); return; }
    checkTimer = setTimeout(async function () {
      const { json } = await post("/console/studio/check");
      if (json.error) { status = json.error; diagnostics = []; }
      else {
        diagnostics = json.diagnostics;
        changes = json.changes || [];
        described = json.described || [];
        status = json.errors ? `${json.errors} error(s): not saved` : "checked: no errors";
      }
      draw();
    }, 250);
  }
  async function save() {
    const { status: code, json } = await post("/console/studio/save");
    if (code === 200 && json.saved) {
      base = json.manifest;
      baseSha = json.base_sha256;
      edits = [];
      redo = [];
      diagnostics = json.diagnostics;
      changes = [];
      described = [];
      status = `saved to ${data.file}`;
    } else if (json.diagnostics) {
      diagnostics = json.diagnostics;
      status = `not saved: ${json.errors} error(s)`;
    } else {
      status = `not saved: ${json.error}`;
    }
    draw();
  }
  function changed() { changesFrom = "the saved manifest"; draw(); scheduleCheck(); }
  // The diff view against another manifest (an older version, a proposal): its changes
  // to this one, listed and marked on the canvas until the next edit.
  async function compareWith(file) {
    const other = await file.text();
    const { json } = await post("/console/studio/compare", { other });
    if (json.error) { status = json.error; draw(); return; }
    changes = json.changes;
    described = json.described;
    changesFrom = file.name;
    status = `${described.length} change(s) from ${file.name}`;
    draw();
  }

  // ---- the graph ----------------------------------------------------------------------
  function graph(m) {
    const nodes = [];
    const edges = [];
    const byModel = new Map();
    const models = m.models || [];
    const depth = new Map();
    (m.decision_points || []).forEach(function (dp) {
      let id = dp.model, d = 0;
      const seen = new Set();
      while (id && !seen.has(id) && d < 8) {
        seen.add(id);
        depth.set(id, Math.max(depth.get(id) ?? 0, d));
        const model = models.find((x) => x.id === id);
        id = model && model.fallback;
        d += 1;
      }
    });
    const maxDepth = Math.max(0, ...depth.values());
    const cols = { app: 0, point: 1, provider: 2 + maxDepth + 1 };
    const rows = {};
    function place(kind, index, col, item, label, sub, extra) {
      rows[col] = (rows[col] ?? -1) + 1;
      const n = { kind, index, col, row: rows[col], item, label, sub, ...extra };
      n.x = PAD + col * COL;
      n.y = PAD + n.row * ROW;
      nodes.push(n);
      return n;
    }
    (m.apps || []).forEach((a, i) => place("app", i, cols.app, a, a.id, "app"));
    const points = new Map();
    (m.decision_points || []).forEach(function (dp, i) {
      const reviewers = (dp.reviewers || []).length;
      const sub = `${dp.autonomy || "?"} · ${dp.stakes || "low"} stakes${reviewers ? ` · ${reviewers} reviewer${reviewers > 1 ? "s" : ""}` : ""}`;
      points.set(dp.id, place("point", i, cols.point, dp, dp.id, sub, { fill: FILL[dp.autonomy] || "#eee" }));
    });
    models.forEach(function (mo, i) {
      byModel.set(mo.id, place("model", i, 2 + (depth.get(mo.id) ?? 0), mo, mo.id, `${mo.provider || "?"} · ${mo.model || "?"}`));
    });
    const providers = new Map();
    (m.providers || []).forEach(function (p, i) {
      providers.set(p.id, place("provider", i, cols.provider, p, p.id, `${p.kind || "?"}${p.region ? " · " + p.region : ""}`));
    });
    (m.apps || []).forEach(function (a, i) {
      const to = points.get(a.decision_point);
      const from = nodes.find((n) => n.kind === "app" && n.index === i);
      if (to) edges.push({ from, to, label: classes(m.decision_points[to.index], "input") });
    });
    (m.decision_points || []).forEach(function (dp) {
      const from = points.get(dp.id), to = byModel.get(dp.model);
      if (from && to) edges.push({ from, to, label: controls(dp) });
    });
    models.forEach(function (mo) {
      const from = byModel.get(mo.id);
      if (mo.fallback && byModel.get(mo.fallback)) edges.push({ from, to: byModel.get(mo.fallback), label: "fallback", dashed: true });
      if (providers.get(mo.provider)) edges.push({ from, to: providers.get(mo.provider), label: "", faint: true });
    });
    return { nodes, edges };
  }
  function classes(dp, side) {
    const pii = (dp && dp[side] && dp[side].pii) || {};
    return Object.entries(pii).map(([k, v]) => `${k}: ${v}`).join(", ");
  }
  function controls(dp) {
    const out = [];
    const input = dp.input || {};
    if (input.injection && input.injection.action) out.push(`injection ${input.injection.action}`);
    const outp = dp.output || {};
    if (outp.max_chars) out.push(`≤${outp.max_chars} chars`);
    if (outp.json_schema) out.push("schema");
    if (outp.pii) out.push("PII out: " + Object.entries(outp.pii).map(([k, v]) => `${k} ${v}`).join(", "));
    return out.join("; ");
  }
  const POINTERS = { app: "apps", point: "decision_points", model: "models", provider: "providers" };
  // How the pending edits change a node: "added", "changed" or "".
  function changeOf(n) {
    const prefix = `/${POINTERS[n.kind]}/${n.index}`;
    const mine = changes.filter((c) => c.kind !== "removed" && (c.pointer === prefix || c.pointer.startsWith(prefix + "/")));
    if (mine.some((c) => c.pointer === prefix && c.kind === "added")) return "added";
    return mine.length ? "changed" : "";
  }
  function errorsFor(n) {
    const prefix = `/${POINTERS[n.kind]}/${n.index}`;
    return diagnostics.filter((d) => d.severity === "error" && (d.pointer === prefix || d.pointer.startsWith(prefix + "/")));
  }

  // ---- drawing ------------------------------------------------------------------------
  function el(name, attrs, parent) {
    const e = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (parent) parent.appendChild(e);
    return e;
  }
  function text(parent, x, y, s, cls) {
    const t = el("text", { x, y, class: cls || "" }, parent);
    t.textContent = s;
    return t;
  }
  function draw() {
    const m = current();
    const { nodes, edges } = graph(m);
    svg.replaceChildren();
    const defs = el("defs", {}, svg);
    const marker = el("marker", { id: "arrow", viewBox: "0 0 10 10", refX: "10", refY: "5", markerWidth: "8", markerHeight: "8", orient: "auto-start-reverse" }, defs);
    el("path", { d: "M 0 0 L 10 5 L 0 10 z", fill: "#555" }, marker);
    const width = PAD * 2 + (Math.max(0, ...nodes.map((n) => n.col)) + 1) * COL;
    const height = PAD * 2 + (Math.max(0, ...nodes.map((n) => n.row)) + 1) * ROW + 40;
    if (!view) view = { x: 0, y: 0, w: width, h: height };
    svg.setAttribute("viewBox", `${view.x} ${view.y} ${view.w} ${view.h}`);
    for (const e of edges) {
      const x1 = e.from.x + W, y1 = e.from.y + H / 2, x2 = e.to.x, y2 = e.to.y + H / 2;
      const back = x2 <= x1;
      const d = back ? `M ${e.from.x + W / 2} ${e.from.y + H} C ${e.from.x + W / 2} ${y1 + 80}, ${e.to.x + W / 2} ${y2 + 80}, ${e.to.x + W / 2} ${e.to.y + H}` : `M ${x1} ${y1} C ${x1 + 30} ${y1}, ${x2 - 30} ${y2}, ${x2} ${y2}`;
      el("path", { d, fill: "none", stroke: e.faint ? "#bbb" : "#555", "stroke-width": "1.5", "stroke-dasharray": e.dashed ? "5 4" : "", "marker-end": "url(#arrow)" }, svg);
      if (e.label) text(svg, (x1 + x2) / 2 - 10, (y1 + y2) / 2 - 6, e.label.length > 40 ? e.label.slice(0, 39) + "…" : e.label, "edge-label");
    }
    for (const n of nodes) {
      const errors = errorsFor(n);
      const isSel = selected && selected.kind === n.kind && selected.index === n.index;
      const change = changeOf(n);
      const g = el("g", { class: `node ${n.kind}${isSel ? " selected" : ""}${errors.length ? " invalid" : ""}${change ? " " + change : ""}`, tabindex: "0", role: "button",
        "aria-label": `${n.kind === "point" ? "decision point" : n.kind} ${n.label}: ${n.sub}${errors.length ? ". Error: " + errors.map((d) => d.message).join("; ") : ""}`,
        "data-kind": n.kind, "data-index": String(n.index), "data-id": n.label }, svg);
      const stroke = errors.length ? "#b3261e" : isSel ? "#f0a500" : change === "added" ? "#1b7f3b" : change === "changed" ? "#1f5fa8" : "#555";
      el("rect", { x: n.x, y: n.y, width: W, height: H, rx: "8", fill: n.fill || "#fff", stroke, "stroke-width": errors.length || isSel || change ? "3" : "1.5", "stroke-dasharray": change && !errors.length && !isSel ? "6 3" : "" }, g);
      if (change) text(g, n.x + W - 70, n.y + H - 8, change, "change-tag");
      text(g, n.x + 10, n.y + 24, n.label, "node-title");
      text(g, n.x + 10, n.y + 44, n.sub.length > 32 ? n.sub.slice(0, 31) + "…" : n.sub, "node-sub");
      if (n.kind === "point" && n.item.stakes === "high") text(g, n.x + W - 44, n.y + 24, "HIGH", "badge");
      if (errors.length) {
        const t = text(g, n.x, n.y + H + 16, "⚠ " + errors[0].message, "node-error");
        t.setAttribute("role", "alert");
      }
      g.addEventListener("click", function (ev) { ev.stopPropagation(); select(n.kind, n.index); });
      g.addEventListener("keydown", function (ev) {
        if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); select(n.kind, n.index); }
      });
    }
    drawToolbar();
    drawPanel(m);
  }
  function select(kind, index) {
    selected = { kind, index };
    draw();
    const g = svg.querySelector(`g[data-kind="${kind}"][data-index="${index}"]`);
    if (g) g.focus();
  }

  // ---- toolbar and panel ----------------------------------------------------------------
  function button(parent, label, onClick, opts) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = label;
    if (opts && opts.id) b.id = opts.id;
    if (opts && opts.disabled) b.disabled = true;
    if (opts && opts.danger) b.className = "danger";
    b.addEventListener("click", onClick);
    parent.appendChild(b);
    return b;
  }
  function drawToolbar() {
    toolbar.replaceChildren();
    const ro = !data.editable;
    button(toolbar, "Add decision point", function () { selected = { kind: "new-point" }; draw(); }, { disabled: ro, id: "add-point" });
    button(toolbar, "Add model", function () { selected = { kind: "new-model" }; draw(); }, { disabled: ro, id: "add-model" });
    button(toolbar, "Undo", undo, { disabled: ro || !edits.length, id: "undo" });
    button(toolbar, "Redo", redoOne, { disabled: ro || !redo.length, id: "redo" });
    button(toolbar, "Fit", function () { view = null; draw(); });
    button(toolbar, "Save", save, { disabled: !data.savable || !edits.length, id: "save" });
    const label = document.createElement("label");
    label.className = "compare";
    label.textContent = "Compare with… ";
    const input = document.createElement("input");
    input.type = "file";
    input.id = "compare";
    input.accept = ".yaml,.yml";
    input.addEventListener("change", function () { if (input.files[0]) compareWith(input.files[0]); });
    label.appendChild(input);
    toolbar.appendChild(label);
    const s = document.createElement("span");
    s.className = "status";
    s.id = "studio-status";
    s.setAttribute("role", "status");
    s.textContent = status || (edits.length ? `${edits.length} unsaved edit(s)` : "no edits");
    toolbar.appendChild(s);
  }
  function field(form, name, label, value, opts) {
    const id = `f-${name}`;
    const l = document.createElement("label");
    l.htmlFor = id;
    l.textContent = label;
    form.appendChild(l);
    let input;
    if (opts && opts.options) {
      input = document.createElement("select");
      for (const o of opts.options) {
        const op = document.createElement("option");
        op.value = o;
        op.textContent = o === "" ? "(none)" : o;
        if (o === (value ?? "")) op.selected = true;
        input.appendChild(op);
      }
    } else {
      input = document.createElement(opts && opts.multiline ? "textarea" : "input");
      input.value = value ?? "";
    }
    input.id = input.name = id;
    if (!data.editable || (opts && opts.readonly)) input.disabled = true;
    form.appendChild(input);
    return input;
  }
  // Reviewers as people type them: `Name <email>`, separated by semicolons.
  function formatPeople(list) { return (list || []).map((p) => `${p.name} <${p.email}>`).join("; "); }
  function parsePeople(s) {
    return s.split(";").map((x) => x.trim()).filter(Boolean).map(function (x) {
      const m = x.match(/^(.*?)\s*<([^>]*)>$/);
      return m ? { name: m[1].trim(), email: m[2].trim() } : { name: x, email: "" };
    });
  }
  function onChange(input, pointer, toValue, hadValue) {
    input.addEventListener("change", function () {
      const v = toValue(input.value);
      if (v === undefined || v === null || v === "" || (Array.isArray(v) && !v.length)) {
        if (hadValue) push({ op: "remove", pointer });
      } else {
        push({ op: hadValue ? "replace" : "add", pointer, value: v });
      }
    });
  }
  function drawPanel(m) {
    panel.replaceChildren();
    const h = document.createElement("h2");
    const form = document.createElement("form");
    form.addEventListener("submit", (e) => e.preventDefault());
    const list = document.createElement("ul");
    const models = (m.models || []).map((x) => x.id);
    const providers = (m.providers || []).map((x) => x.id);
    if (!selected) {
      h.textContent = "Nothing selected";
      const p = document.createElement("p");
      p.textContent = "Select a node to see and edit its fields. Colours: green supervised, blue advisory, orange autonomous; dashed arrows are fallbacks.";
      panel.append(h, p);
    } else if (selected.kind === "new-point") {
      h.textContent = "New decision point";
      const id = field(form, "id", "Id", "");
      const autonomy = field(form, "autonomy", "Autonomy", "advisory", { options: AUTONOMY });
      const stakes = field(form, "stakes", "Stakes", "low", { options: STAKES });
      const model = field(form, "model", "Model", models[0], { options: models });
      button(form, "Add", function () {
        const value = { id: id.value.trim(), autonomy: autonomy.value, stakes: stakes.value, model: model.value };
        if (!value.id) { id.focus(); return; }
        push({ op: "add", pointer: "/decision_points/-", value });
        select("point", (m.decision_points || []).length);
      }, { id: "add-point-confirm" });
      panel.append(h, form);
    } else if (selected.kind === "new-model") {
      h.textContent = "New model";
      const id = field(form, "id", "Id", "");
      const provider = field(form, "provider", "Provider", providers[0], { options: providers });
      const name = field(form, "model", "Model name at the provider", "");
      const rationale = field(form, "rationale", "Why this model", "", { multiline: true });
      button(form, "Add", function () {
        const value = { id: id.value.trim(), provider: provider.value, model: name.value.trim() };
        if (rationale.value.trim()) value.rationale = rationale.value.trim();
        if (!value.id) { id.focus(); return; }
        push({ op: "add", pointer: "/models/-", value });
        select("model", (m.models || []).length);
      }, { id: "add-model-confirm" });
      panel.append(h, form);
    } else {
      const key = POINTERS[selected.kind];
      const item = (m[key] || [])[selected.index];
      if (!item) { selected = null; drawPanel(m); return; }
      const at = `/${key}/${selected.index}`;
      h.textContent = `${selected.kind === "point" ? "Decision point" : selected.kind[0].toUpperCase() + selected.kind.slice(1)} ${item.id}`;
      field(form, "id", "Id", item.id, { readonly: true });
      if (selected.kind === "point") {
        onChange(field(form, "autonomy", "Autonomy", item.autonomy, { options: AUTONOMY }), `${at}/autonomy`, (v) => v, "autonomy" in item);
        onChange(field(form, "stakes", "Stakes", item.stakes || "low", { options: STAKES }), `${at}/stakes`, (v) => v, "stakes" in item);
        onChange(field(form, "model", "Model", item.model, { options: models }), `${at}/model`, (v) => v, true);
        onChange(field(form, "description", "Description", item.description, { multiline: true }), `${at}/description`, (v) => v.trim(), "description" in item);
        onChange(field(form, "reviewers", "Reviewers (Name <email>; …)", formatPeople(item.reviewers)), `${at}/reviewers`, parsePeople, "reviewers" in item);
        onChange(field(form, "deadline", "Review deadline (minutes)", item.review_deadline_minutes), `${at}/review_deadline_minutes`, (v) => (v.trim() === "" ? "" : Number(v)), "review_deadline_minutes" in item);
      } else if (selected.kind === "model") {
        onChange(field(form, "provider", "Provider", item.provider, { options: providers }), `${at}/provider`, (v) => v, true);
        onChange(field(form, "model", "Model name at the provider", item.model), `${at}/model`, (v) => v.trim(), true);
        onChange(field(form, "fallback", "Fallback", item.fallback || "", { options: [""].concat(models.filter((x) => x !== item.id)) }), `${at}/fallback`, (v) => v, "fallback" in item);
        onChange(field(form, "rationale", "Why this model", item.rationale, { multiline: true }), `${at}/rationale`, (v) => v.trim(), "rationale" in item);
      } else if (selected.kind === "app") {
        onChange(field(form, "point", "Decision point", item.decision_point, { options: (m.decision_points || []).map((d) => d.id) }), `${at}/decision_point`, (v) => v, true);
      } else if (selected.kind === "provider") {
        field(form, "kind", "Kind", item.kind, { readonly: true });
        field(form, "base_url", "Base URL", item.base_url, { readonly: true });
      }
      if (data.editable && (selected.kind === "point" || selected.kind === "model")) {
        button(form, `Remove ${item.id}`, function () {
          push({ op: "remove", pointer: at });
          selected = null;
          draw();
        }, { danger: true, id: "remove" });
      }
      for (const d of diagnostics.filter((d) => d.pointer === at || d.pointer.startsWith(at + "/"))) {
        const li = document.createElement("li");
        li.className = d.severity === "error" ? "bad" : "warn";
        li.textContent = `${d.severity} ${d.code}: ${d.message}${d.help ? " — " + d.help : ""}`;
        list.appendChild(li);
      }
      panel.append(h, form, list);
    }
    if (described.length) {
      const h3 = document.createElement("h2");
      h3.textContent = `Changes from ${changesFrom}`;
      const ul = document.createElement("ul");
      ul.id = "changes";
      for (const line of described) {
        const li = document.createElement("li");
        li.textContent = line;
        ul.appendChild(li);
      }
      panel.append(h3, ul);
    }
    const others = diagnostics.filter((d) => d.severity === "error" && !/^\/(apps|decision_points|models|providers)\/\d+/.test(d.pointer));
    if (others.length) {
      const p = document.createElement("ul");
      for (const d of others) {
        const li = document.createElement("li");
        li.className = "bad";
        li.textContent = `${d.code} at ${d.pointer}: ${d.message}`;
        p.appendChild(li);
      }
      panel.appendChild(p);
    }
  }

  // ---- pan, zoom, keys ---------------------------------------------------------------
  function zoom(f, cx, cy) {
    if (!view) return;
    const nx = cx ?? view.x + view.w / 2, ny = cy ?? view.y + view.h / 2;
    view = { x: nx - (nx - view.x) * f, y: ny - (ny - view.y) * f, w: view.w * f, h: view.h * f };
    svg.setAttribute("viewBox", `${view.x} ${view.y} ${view.w} ${view.h}`);
  }
  function pan(dx, dy) {
    if (!view) return;
    view.x += dx * view.w;
    view.y += dy * view.h;
    svg.setAttribute("viewBox", `${view.x} ${view.y} ${view.w} ${view.h}`);
  }
  svg.addEventListener("wheel", function (ev) {
    ev.preventDefault();
    const r = svg.getBoundingClientRect();
    zoom(ev.deltaY > 0 ? 1.1 : 1 / 1.1, view.x + ((ev.clientX - r.left) / r.width) * view.w, view.y + ((ev.clientY - r.top) / r.height) * view.h);
  }, { passive: false });
  let drag = null;
  svg.addEventListener("pointerdown", function (ev) { if (ev.target === svg) drag = { x: ev.clientX, y: ev.clientY }; });
  window.addEventListener("pointerup", function () { drag = null; });
  svg.addEventListener("pointermove", function (ev) {
    if (!drag) return;
    const r = svg.getBoundingClientRect();
    pan(-(ev.clientX - drag.x) / r.width, -(ev.clientY - drag.y) / r.height);
    drag = { x: ev.clientX, y: ev.clientY };
  });
  svg.addEventListener("click", function (ev) { if (ev.target === svg) { selected = null; draw(); } });
  document.addEventListener("keydown", function (ev) {
    const inField = ["INPUT", "TEXTAREA", "SELECT"].includes(ev.target.tagName);
    if ((ev.ctrlKey || ev.metaKey) && ev.key.toLowerCase() === "z" && !inField) { ev.preventDefault(); ev.shiftKey ? redoOne() : undo(); return; }
    if ((ev.ctrlKey || ev.metaKey) && ev.key.toLowerCase() === "y" && !inField) { ev.preventDefault(); redoOne(); return; }
    if (inField || !svg.contains(ev.target)) return;
    const moves = { ArrowLeft: [-0.1, 0], ArrowRight: [0.1, 0], ArrowUp: [0, -0.1], ArrowDown: [0, 0.1] };
    if (moves[ev.key]) { ev.preventDefault(); pan(...moves[ev.key]); }
    else if (ev.key === "+" || ev.key === "=") zoom(1 / 1.2);
    else if (ev.key === "-") zoom(1.2);
    else if (ev.key === "0") { view = null; draw(); }
  });

  draw();
})();
