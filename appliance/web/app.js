"use strict";
// The upload page: list models as cards, post the dropped image, show the result.
const state = { models: [], chosen: null, file: null, ticket: 0, line: 2 };
const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, text = "") {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text) node.textContent = text;
  return node;
}

function authHeaders() {
  const token = $("token").value.trim();
  return token ? { Authorization: "Bearer " + token } : {};
}

async function loadModels() {
  const response = await fetch("/v1/models", { headers: authHeaders() });
  const body = await response.json();
  // The token field is shown only by a box that asks for one (401), or once one is typed.
  const asks = response.status === 401;
  $("token-box").hidden = !asks && !$("token").value.trim();
  if (asks) $("token-box").open = true;
  state.models = response.ok ? body.models : [];
  const box = $("models");
  box.textContent = "";
  if (asks) box.append(el("p", { class: "error", role: "alert" }, body.error.message));
  else if (!state.models.length) box.append(el("p", { class: "muted" }, "No models installed."));
  for (const m of state.models) box.append(card(m));
  const first = state.models.find((m) => m.active && m.status === "ready")
    || state.models.find((m) => m.status === "ready");
  if (first) choose(first.name);
}

function card(m) {
  const ready = m.status === "ready";
  const node = el("button", { class: "card" + (ready ? "" : " failed"), role: "radio",
    "aria-checked": "false", "data-name": m.name, type: "button" });
  node.append(el("h3", {}, m.name), el("span", { class: "task" }, m.task || "failed"));
  const meta = ready
    ? `${m.input_size[1]}×${m.input_size[0]} · ${m.precision} · ${m.attribution.author} · ${m.license}`
    : m.error;
  node.append(el("div", { class: "meta" }, meta));
  if (ready) node.addEventListener("click", () => choose(m.name));
  else node.disabled = true;
  return node;
}

function choose(name) {
  state.chosen = state.models.find((m) => m.name === name);
  for (const c of document.querySelectorAll(".card")) {
    c.setAttribute("aria-checked", String(c.dataset.name === name));
  }
  const a = state.chosen.attribution;
  $("footer-credit").textContent = `${name}: ${a.author}, ${a.license}`;
  showCurl();
  if (state.file) run();
}

// Tasks whose answer is an image: the page asks for it in JSON, curl saves the PNG.
const IMAGE_TASKS = new Set(["image-to-image", "edges", "segment"]);
const ACCENT = "#f97316";
// The edges task's `line` option (appliance/tasks/edges.py): its range and default.
const LINES = [1, 2, 3, 4, 5, 6];

function query(model) {
  // What the page asks for: an image in JSON, and an edges model's line weight.
  const params = new URLSearchParams();
  if (IMAGE_TASKS.has(model.task)) params.set("format", "json");
  if (model.task === "edges") params.set("line", state.line);
  const text = params.toString();
  return text ? "?" + text : "";
}
const SURE = 0.3; // keypoints scored below this are listed by the box but not drawn

function showCurl() {
  if (!state.chosen) return;
  const url = `${location.origin}/v1/models/${state.chosen.name}/infer`;
  const out = IMAGE_TASKS.has(state.chosen.task) ? " -o result.png" : "";
  const auth = $("token").value.trim() ? " -H 'Authorization: Bearer TOKEN'" : "";
  const line = state.chosen.task === "edges" ? `?line=${state.line}` : "";
  $("curl").textContent = `curl -F image=@photo.jpg${auth} ${url}${line}${out}`;
}

function pick(file) {
  if (!file) return;
  state.file = file;
  $("drop-text").textContent = file.name;
  $("input-preview").src = URL.createObjectURL(file);
  run();
}

async function run() {
  if (!state.chosen || !state.file) return;
  $("result-section").hidden = false;
  const output = $("output");
  output.textContent = "Working…";
  const form = new FormData();
  form.append("image", state.file);
  const model = state.chosen;
  const ticket = ++state.ticket; // a later run (another model, another photo) wins
  const url = `/v1/models/${model.name}/infer${query(model)}`;
  try {
    const response = await fetch(url, { method: "POST", body: form, headers: authHeaders() });
    const body = await response.json();
    if (!response.ok) throw new Error(body.error ? body.error.message : response.statusText);
    if (ticket === state.ticket) render(body, model.task);
  } catch (err) {
    if (ticket !== state.ticket) return;
    output.textContent = "";
    output.append(el("p", { class: "error", role: "alert" }, err.message));
  }
}

function render(body, task = state.chosen.task) {
  const output = $("output");
  output.textContent = "";
  output.dataset.task = task;
  (RENDERERS[task] || renderJson)(body, output);
  // provenance.js draws the "made here" card under it.
  document.dispatchEvent(new CustomEvent("appliance:result", { detail: { body, task } }));
  const t = body.timing_ms;
  $("timings").textContent = `${body.model} ${body.version} · decode ${t.decode} ms · `
    + `preprocess ${t.preprocess} ms · inference ${t.inference} ms · `
    + `postprocess ${t.postprocess} ms · ${body.attribution.author}, ${body.attribution.license}`;
}

function renderClassify(body, output) {
  for (const p of body.predictions) output.append(prediction(p));
}

function renderImage(body, output) {
  const src = `data:${body.mime};base64,${body.image}`;
  output.append(el("img", { src, alt: `${body.model} result`, id: "output-image" }));
  output.append(el("a", { href: src, download: `${body.model}.png`, class: "download" },
    "Download"));
}

function renderEdges(body, output) {
  // The drawing, and its line weight: a change asks the box again.
  renderImage(body, output);
  const select = el("select", { id: "line" });
  for (const n of LINES) {
    const option = el("option", { value: n }, `${n} px`);
    if (n === state.line) option.selected = true;
    select.append(option);
  }
  select.addEventListener("change", () => {
    state.line = Number(select.value);
    showCurl();
    run();
  });
  const label = el("label", { class: "line-weight" }, "Line ");
  label.append(select);
  output.append(label);
}

function renderDetect(body, output) {
  output.append(boxes(body.detections));
}

function renderEmbed(body, output) {
  output.append(el("p", {}, `A ${body.dim}-dimensional embedding:`));
  output.append(el("pre", {}, "[" + body.embedding.slice(0, 8).map((v) => v.toFixed(4))
    .join(", ") + ", …]"));
}

function renderSegment(body, output) {
  // The cut-out on a checkerboard (transparency shows as squares), a download, and a picker
  // that puts it on a backdrop of the visitor's choosing, all in this browser.
  const src = `data:${body.mime};base64,${body.image}`;
  const cut = el("img", { src, id: "output-image", alt: `${body.model}: the cut-out from your image` });
  const board = el("div", { class: "checker" });
  board.append(cut);
  const share = Math.round((Number(body.coverage) || 0) * 100);
  const note = body.box ? `The cut-out covers ${share}% of the picture.` : "Nothing to cut out was found.";
  output.append(board, el("p", { class: "muted" }, note),
    el("a", { href: src, download: `${body.model}.png`, class: "download" }, "Download PNG"));
  output.append(backdropPicker(cut, body.model));
}

function backdropPicker(cut, model) {
  const wrap = el("div", { class: "backdrop" });
  const input = el("input", { type: "file", id: "backdrop-file",
    accept: "image/jpeg,image/png,image/webp,image/bmp,image/gif" });
  const label = el("label", { for: "backdrop-file", class: "button" }, "Place it on a backdrop…");
  const canvas = el("canvas", { id: "output-composite", role: "img", hidden: "",
    "aria-label": "the cut-out placed on your backdrop" });
  const link = el("a", { class: "download", id: "composite-download", hidden: "",
    download: `${model}-on-backdrop.png` }, "Download the picture");
  input.addEventListener("change", () => {
    const file = input.files[0];
    if (!file) return;
    const backdrop = new Image();
    backdrop.onload = () => compose(canvas, link, backdrop, cut);
    backdrop.onerror = () => { label.textContent = "That backdrop could not be read: pick another"; };
    backdrop.src = URL.createObjectURL(file);
  });
  wrap.append(input, label, canvas, link);
  return wrap;
}

function compose(canvas, link, backdrop, cut) {
  // As the gallery screen does it: the figure trimmed, as large as fits most of the
  // picture, centred, standing on its bottom edge.
  const scale = Math.min(1, 2048 / Math.max(backdrop.naturalWidth, backdrop.naturalHeight));
  canvas.width = Math.max(1, Math.round(backdrop.naturalWidth * scale));
  canvas.height = Math.max(1, Math.round(backdrop.naturalHeight * scale));
  const ctx = canvas.getContext("2d");
  ctx.drawImage(backdrop, 0, 0, canvas.width, canvas.height);
  const box = alphaBox(cut);
  if (box) {
    const s = Math.min(canvas.width * 0.92 / box.w, canvas.height * 0.88 / box.h);
    const w = box.w * s, h = box.h * s;
    ctx.drawImage(cut, box.x, box.y, box.w, box.h, (canvas.width - w) / 2, canvas.height - h, w, h);
  }
  canvas.hidden = false;
  canvas.toBlob((blob) => {
    if (link.href) URL.revokeObjectURL(link.href);
    link.href = URL.createObjectURL(blob);
    link.hidden = false;
  }, "image/png");
}

function alphaBox(image) {
  // The part of the cut-out at least half opaque, or null when there is none.
  const canvas = el("canvas");
  canvas.width = image.naturalWidth;
  canvas.height = image.naturalHeight;
  if (!canvas.width || !canvas.height) return null;
  const ctx = canvas.getContext("2d");
  ctx.drawImage(image, 0, 0);
  const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
  let x0 = Infinity, y0 = Infinity, x1 = -1, y1 = -1;
  for (let i = 3, p = 0; i < data.length; i += 4, p++) {
    if (data[i] < 128) continue;
    const x = p % canvas.width, y = (p - x) / canvas.width;
    if (x < x0) x0 = x;
    if (x > x1) x1 = x;
    if (y < y0) y0 = y;
    y1 = y;
  }
  return x1 < 0 ? null : { x: x0, y: y0, w: x1 - x0 + 1, h: y1 - y0 + 1 };
}

function renderPose(body, output) {
  const people = (body.people || []).slice(0, 20);
  const edges = (body.edges || []).slice(0, 64);
  const sure = people.map((p) => (p.keypoints || []).filter((k) => k.score >= SURE));
  const found = sure.filter((k) => k.length).length;
  const label = found ? `${found} ${found === 1 ? "person" : "people"} found` : "Nobody found";
  const canvas = el("canvas", { id: "output-pose", role: "img", "aria-label": label });
  overPreview(canvas, (ctx, unit) => {
    for (const points of sure) {
      const at = Object.fromEntries(points.map((k) => [k.name, k]));
      const segments = edges.filter(([a, b]) => at[a] && at[b]).map(([a, b]) => [at[a], at[b]]);
      ctx.lineCap = "round";
      for (const [style, width] of [["rgba(0,0,0,0.55)", unit * 1.8], ["#f5f5f0", unit]]) {
        ctx.strokeStyle = style;
        ctx.lineWidth = width;
        for (const [a, b] of segments) {
          ctx.beginPath(); ctx.moveTo(a.x, a.y); ctx.lineTo(b.x, b.y); ctx.stroke();
        }
      }
      ctx.fillStyle = ACCENT;
      for (const k of points) {
        ctx.beginPath(); ctx.arc(k.x, k.y, unit * 1.3, 0, 2 * Math.PI); ctx.fill();
      }
    }
  });
  const count = sure.reduce((n, k) => n + k.length, 0);
  output.append(canvas, el("p", { class: "muted" }, found
    ? `${label}: ${count} keypoints drawn (those scored ${SURE} or more).` : "Nobody found."));
}

function renderOcr(body, output) {
  // The read text beside the picture, which shows where each line was found.
  const lines = (body.lines || []).slice(0, 200);
  const text = body.text || lines.map((l) => l.text).join("\n");
  const canvas = el("canvas", { id: "output-text-boxes", role: "img",
    "aria-label": `${lines.length} ${lines.length === 1 ? "line" : "lines"} of text found` });
  overPreview(canvas, (ctx, unit) => {
    ctx.lineJoin = "round";
    for (const [style, width] of [["rgba(0,0,0,0.55)", unit * 1.8], [ACCENT, unit]]) {
      ctx.strokeStyle = style;
      ctx.lineWidth = width;
      for (const line of lines) {
        const corners = (line.box || []).filter((p) => Array.isArray(p) && p.length === 2);
        if (corners.length < 3) continue;
        ctx.beginPath();
        corners.forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
        ctx.closePath();
        ctx.stroke();
      }
    }
  });
  if (!lines.length) {
    output.append(el("p", { class: "read empty" }, "No text found."), canvas);
    return;
  }
  const read = el("pre", { id: "output-text", class: "read", tabindex: "0",
    "aria-label": "the text read from your image" }, text);
  const copy = el("button", { type: "button", id: "copy-text" }, "Copy text");
  const said = el("span", { class: "muted", role: "status" });
  copy.addEventListener("click", () => copyText(read, said));
  const tools = el("div", { class: "tools" });
  tools.append(copy, said);
  output.append(read, tools, canvas);
}

async function copyText(node, said) {
  try {
    await navigator.clipboard.writeText(node.textContent);
    said.textContent = "Copied.";
  } catch {
    // No clipboard here (plain http to a box is not a secure context): select the text so
    // one key press copies it.
    window.getSelection().selectAllChildren(node);
    node.focus();
    said.textContent = "Selected: press Ctrl+C (⌘C) to copy.";
  }
}

function renderJson(body, output) {
  // A task this page does not know yet (a newer box): its answer as it came.
  output.append(el("pre", {}, JSON.stringify(body, null, 2).slice(0, 20000)));
}

const RENDERERS = {
  classify: renderClassify,
  detect: renderDetect,
  embed: renderEmbed,
  "image-to-image": renderImage,
  edges: renderEdges,
  segment: renderSegment,
  pose: renderPose,
  ocr: renderOcr,
};

function overPreview(canvas, draw) {
  // Draw the input image into `canvas` at its own pixels (where the answers' coordinates
  // are), then `draw(ctx, unit)` over it, once the image has loaded.
  const image = $("input-preview");
  const paint = () => {
    canvas.width = image.naturalWidth;
    canvas.height = image.naturalHeight;
    const ctx = canvas.getContext("2d");
    ctx.drawImage(image, 0, 0);
    draw(ctx, Math.max(1.5, Math.min(canvas.width, canvas.height) / 160));
  };
  if (image.complete && image.naturalWidth) paint();
  else image.addEventListener("load", paint, { once: true });
}

function boxes(detections) {
  // The input image with each box and its label drawn over it, in the image's own pixels.
  const canvas = el("canvas", { id: "output-boxes", role: "img",
    "aria-label": `${detections.length} found` });
  overPreview(canvas, (ctx) => {
    ctx.lineWidth = Math.max(2, canvas.width / 200);
    const size = Math.max(14, canvas.width / 30);
    ctx.font = `${size}px system-ui, sans-serif`;
    ctx.textBaseline = "top";
    const shown = detections.slice(0, 100).reverse(); // the best last, on top
    for (const d of shown) {
      const [x0, y0, x1, y1] = d.box;
      ctx.strokeStyle = ACCENT;
      ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
    }
    for (const d of shown) {
      // the label on an orange tag above the box (inside it at the top of the picture)
      const text = `${String(d.label).slice(0, 60)} ${(d.score * 100).toFixed(0)}%`;
      const pad = size / 4, w = ctx.measureText(text).width + 2 * pad, h = size * 1.2 + pad;
      const x = Math.max(0, Math.min(d.box[0], canvas.width - w));
      const y = d.box[1] - h >= 0 ? d.box[1] - h : Math.max(0, d.box[1]);
      ctx.fillStyle = ACCENT;
      ctx.fillRect(x, y, w, h);
      ctx.fillStyle = "#18181b";
      ctx.fillText(text, x + pad, y + pad);
    }
  });
  const wrap = el("div");
  wrap.append(canvas, el("p", { class: "muted" },
    detections.length ? `${detections.length} found` : "Nothing found."));
  return wrap;
}

function prediction(p) {
  const node = el("div", { class: "pred" });
  const row = el("div", { class: "row" });
  row.append(el("span", {}, p.label), el("span", {}, `${(p.score * 100).toFixed(1)}%`));
  const bar = el("div", { class: "bar" });
  const fill = el("span");
  fill.style.width = `${Math.max(1, p.score * 100)}%`;
  bar.append(fill);
  node.append(row, bar);
  return node;
}

function wire() {
  const drop = $("drop");
  $("file").addEventListener("change", (e) => pick(e.target.files[0]));
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    pick(e.dataTransfer.files[0]);
  });
  $("token").addEventListener("change", () => { showCurl(); loadModels(); });
  $("copy").addEventListener("click", () => navigator.clipboard.writeText($("curl").textContent));
}

wire();
loadModels().catch((err) => { $("models-status").textContent = "Cannot list models: " + err; });
