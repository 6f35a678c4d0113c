// diffmatte serve: the page. Plain JS and canvas; every matte comes from the server's API.
// The trimap is kept as one byte per pixel (0 background, 128 unknown, 255 foreground) and
// painted with hard-edged discs, so what is shown is exactly what is sent.
"use strict";

const $ = (id) => document.getElementById(id);
const canvas = $("canvas");
const ctx = canvas.getContext("2d", { willReadFrequently: true });
const UNDO_LIMIT = 30;

const S = {
  file: null, name: "image", w: 0, h: 0,
  rgb: null,          // Uint8ClampedArray RGBA of the image
  trimap: null,       // Uint8Array w*h
  undo: [],
  alpha: null,        // Uint8Array w*h of the matte shown
  alphaPng: null,     // Blob: the server's PNG of that matte (what "Download alpha" saves)
  cutout: null,       // Uint8ClampedArray RGBA: estimated foreground colours + alpha
  cutoutPng: null,
  stroke: null,       // Uint8Array w*h: pixels of the stroke being painted (shown over the matte)
  box: null,          // [x0, y0, x1, y1) of the current stroke
  busy: false, frames: 0, maxSteps: 100,
};
window.diffmatte = S; // for the browser test and the curious

function status(text, isError = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", isError);
}

function setState(state) { document.body.dataset.state = state; }

function enable() {
  const has = S.trimap !== null;
  for (const id of ["auto", "clear", "save-trimap", "run"]) $(id).disabled = !has || S.busy;
  $("undo").disabled = S.undo.length === 0 || S.busy;
  $("save-alpha").disabled = S.alphaPng === null;
  $("save-cutout").disabled = S.cutoutPng === null;
}

// -- API ----------------------------------------------------------------------------------------
async function apiError(response) {
  try {
    const body = await response.json();
    return new Error(body.error || `HTTP ${response.status}`);
  } catch (e) {
    return new Error(`HTTP ${response.status}`);
  }
}

async function post(path, fields) {
  const form = new FormData();
  for (const [k, v] of Object.entries(fields)) {
    if (v instanceof Blob) form.append(k, v, k + ".png"); else form.append(k, String(v));
  }
  const response = await fetch(path, { method: "POST", body: form });
  if (!response.ok) throw await apiError(response);
  return response;
}

async function decodeBitmap(blob) {
  return createImageBitmap(blob, { colorSpaceConversion: "none", premultiplyAlpha: "none" });
}

async function pixels(blob) {
  const bmp = await decodeBitmap(blob);
  const c = new OffscreenCanvas(bmp.width, bmp.height);
  const x = c.getContext("2d");
  x.drawImage(bmp, 0, 0);
  return { w: bmp.width, h: bmp.height, data: x.getImageData(0, 0, bmp.width, bmp.height).data };
}

async function greyOf(blob) {
  const p = await pixels(blob);
  if (p.w !== S.w || p.h !== S.h) throw new Error(`the server sent ${p.w}x${p.h}, the image is ${S.w}x${S.h}`);
  const out = new Uint8Array(p.w * p.h);
  for (let i = 0; i < out.length; i++) out[i] = p.data[4 * i];
  return out;
}

function trimapBlob() {
  const c = new OffscreenCanvas(S.w, S.h);
  const x = c.getContext("2d");
  const img = x.createImageData(S.w, S.h);
  for (let i = 0; i < S.trimap.length; i++) {
    const v = S.trimap[i];
    img.data[4 * i] = img.data[4 * i + 1] = img.data[4 * i + 2] = v;
    img.data[4 * i + 3] = 255;
  }
  x.putImageData(img, 0, 0);
  return c.convertToBlob({ type: "image/png" });
}

function b64ToBlob(b64) {
  const bin = atob(b64);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return new Blob([bytes], { type: "image/png" });
}

// -- rendering ----------------------------------------------------------------------------------
function background(x, y) {
  if ($("bg").value === "colour") {
    const c = $("colour").value;
    return [parseInt(c.slice(1, 3), 16), parseInt(c.slice(3, 5), 16), parseInt(c.slice(5, 7), 16)];
  }
  const dark = ((x >> 4) + (y >> 4)) & 1;
  return dark ? [204, 204, 204] : [255, 255, 255];
}

function render(box = null) {
  if (!S.rgb) return;
  const [x0, y0, x1, y1] = box || [0, 0, S.w, S.h];
  const w = x1 - x0, h = y1 - y0;
  if (w <= 0 || h <= 0) return;
  const out = ctx.createImageData(w, h);
  const d = out.data;
  let view = $("view").value;
  if (view !== "trimap" && !S.alpha) view = "trimap";
  const split = Math.round(S.w * $("split").value / 100);
  const bgColour = $("bg").value === "colour" ? background(0, 0) : null;
  for (let y = y0; y < y1; y++) {
    for (let x = x0; x < x1; x++) {
      const i = y * S.w + x, o = 4 * ((y - y0) * w + (x - x0));
      let r = S.rgb[4 * i], g = S.rgb[4 * i + 1], b = S.rgb[4 * i + 2];
      if (view === "trimap") {
        const t = S.trimap[i];
        if (t === 0) { r *= 0.3; g *= 0.3; b *= 0.3; } else if (t !== 255) { r = 0.5 * r + 128; g = 0.5 * g + 80; b *= 0.5; }
      } else if (view === "alpha") {
        r = g = b = S.alpha[i];
      } else if (view === "cutout" || (view === "compare" && x >= split)) {
        const src = S.cutout || S.rgb;
        const a = (S.cutout ? S.cutout[4 * i + 3] : S.alpha[i]) / 255;
        const bg = bgColour || background(x, y);
        r = a * src[4 * i] + (1 - a) * bg[0]; g = a * src[4 * i + 1] + (1 - a) * bg[1]; b = a * src[4 * i + 2] + (1 - a) * bg[2];
      }
      if (S.stroke && S.stroke[i] && view !== "trimap") {
        const t = S.trimap[i];
        const tint = t === 255 ? [255, 255, 255] : t === 0 ? [0, 0, 0] : [255, 170, 0];
        r = 0.5 * r + 0.5 * tint[0]; g = 0.5 * g + 0.5 * tint[1]; b = 0.5 * b + 0.5 * tint[2];
      }
      if (view === "compare" && x === split) { r = 255; g = 0; b = 0; }
      d[o] = r; d[o + 1] = g; d[o + 2] = b; d[o + 3] = 255;
    }
  }
  ctx.putImageData(out, x0, y0);
}

// -- opening an image ---------------------------------------------------------------------------
async function openFile(file) {
  if (!file) return;
  try {
    const p = await pixels(file);
    S.file = file; S.name = (file.name || "image").replace(/\.[^.]*$/, "");
    S.w = p.w; S.h = p.h; S.rgb = p.data;
    S.trimap = new Uint8Array(S.w * S.h).fill(128);
    S.undo = []; S.alpha = S.alphaPng = S.cutout = S.cutoutPng = S.stroke = null;
    canvas.width = S.w; canvas.height = S.h;
    $("view").value = "trimap";
    setState("image");
    render(); enable();
    status(`${S.name}: ${S.w}x${S.h}. Make a trimap: Automatic, or paint foreground, background and unknown.`);
  } catch (e) {
    status(`cannot open this file as an image (${e.message})`, true);
  }
}

$("file").addEventListener("change", (e) => openFile(e.target.files[0]));
const stage = $("stage");
stage.addEventListener("dragover", (e) => { e.preventDefault(); stage.classList.add("drag"); });
stage.addEventListener("dragleave", () => stage.classList.remove("drag"));
stage.addEventListener("drop", (e) => {
  e.preventDefault(); stage.classList.remove("drag");
  if (e.dataTransfer.files.length) openFile(e.dataTransfer.files[0]);
});

// -- trimap -------------------------------------------------------------------------------------
function pushUndo() {
  S.undo.push(S.trimap.slice());
  if (S.undo.length > UNDO_LIMIT) S.undo.shift();
}

async function autoTrimap() {
  S.busy = true; enable(); setState("working");
  status("finding the object…");
  try {
    const fields = { image: S.file };
    if (+$("band").value > 0) fields.band = $("band").value;
    const blob = await (await post("/api/trimap", fields)).blob();
    const tri = await greyOf(blob);
    pushUndo();
    S.trimap = tri;
    $("view").value = "trimap";
    render();
    status("automatic trimap made; paint to correct it, then Run.");
    setState("trimap");
  } catch (e) {
    status(e.message, true); setState("error");
  } finally {
    S.busy = false; enable();
  }
}

$("auto").addEventListener("click", autoTrimap);
$("band").addEventListener("input", () => { $("band-out").textContent = +$("band").value ? $("band").value + " px" : "auto"; });
$("band").addEventListener("change", () => { if (S.trimap && !S.busy) autoTrimap(); });
$("size").addEventListener("input", () => { $("size-out").textContent = $("size").value; });
$("undo").addEventListener("click", () => { if (S.undo.length) { S.trimap = S.undo.pop(); render(); enable(); } });
$("clear").addEventListener("click", () => { pushUndo(); S.trimap.fill(0); render(); enable(); });
$("save-trimap").addEventListener("click", async () => save(await trimapBlob(), `${S.name}_trimap.png`));

function brushValue() { return +document.querySelector("input[name=brush]:checked").value; }

function stamp(cx, cy) {
  const r = +$("size").value / 2, v = brushValue();
  const y0 = Math.max(0, Math.ceil(cy - r)), y1 = Math.min(S.h - 1, Math.floor(cy + r));
  for (let y = y0; y <= y1; y++) {
    const half = Math.sqrt(Math.max(0, r * r - (y - cy) * (y - cy)));
    const x0 = Math.max(0, Math.ceil(cx - half)), x1 = Math.min(S.w - 1, Math.floor(cx + half));
    if (x1 < x0) continue;
    S.trimap.fill(v, y * S.w + x0, y * S.w + x1 + 1);
    S.stroke.fill(1, y * S.w + x0, y * S.w + x1 + 1);
  }
  const box = [Math.max(0, Math.floor(cx - r)), Math.max(0, Math.floor(cy - r)),
    Math.min(S.w, Math.ceil(cx + r) + 1), Math.min(S.h, Math.ceil(cy + r) + 1)];
  S.box = S.box ? [Math.min(S.box[0], box[0]), Math.min(S.box[1], box[1]), Math.max(S.box[2], box[2]), Math.max(S.box[3], box[3])] : box;
  render(box);
}

function imagePoint(e) {
  const rect = canvas.getBoundingClientRect();
  return [(e.clientX - rect.left) * S.w / rect.width, (e.clientY - rect.top) * S.h / rect.height];
}

let last = null;
canvas.addEventListener("pointerdown", (e) => {
  if (!S.trimap || S.busy || e.button !== 0) return;
  canvas.setPointerCapture(e.pointerId);
  pushUndo();
  S.stroke = new Uint8Array(S.w * S.h); S.box = null;
  last = imagePoint(e);
  stamp(...last);
});
canvas.addEventListener("pointermove", (e) => {
  if (!last) return;
  const p = imagePoint(e);
  const dist = Math.hypot(p[0] - last[0], p[1] - last[1]);
  const n = Math.max(1, Math.ceil(dist / Math.max(1, +$("size").value / 4)));
  for (let k = 1; k <= n; k++) stamp(last[0] + (p[0] - last[0]) * k / n, last[1] + (p[1] - last[1]) * k / n);
  last = p;
});
function endStroke() {
  if (!last) return;
  last = null; enable();
  if (S.alphaPng && $("refine").checked) refine(); else { S.stroke = null; render(); }
}
canvas.addEventListener("pointerup", endStroke);
canvas.addEventListener("pointercancel", endStroke);

// -- matting ------------------------------------------------------------------------------------
function steps() { return Math.min(S.maxSteps, Math.max(1, Math.round(+$("steps").value || 10))); }
function seed() { return Math.max(0, Math.round(+$("seed").value || 0)); }

async function showMatte(blob) {
  S.alpha = await greyOf(blob);
  S.alphaPng = blob;
}

async function updateCutout() {
  S.cutout = null; S.cutoutPng = null; enable();
  try {
    const blob = await (await post("/api/cutout", { image: S.file, alpha: S.alphaPng })).blob();
    const p = await pixels(blob);
    S.cutout = p.data; S.cutoutPng = blob;
    if ($("view").value === "cutout" || $("view").value === "compare") render();
  } catch (e) {
    status(`cutout: ${e.message}`, true);
  }
  enable();
}

async function run() {
  S.busy = true; enable(); setState("running");
  S.frames = 0; canvas.dataset.frames = "0";
  const n = steps();
  $("progress").max = n; $("progress").value = 0;
  status(`matting: encoder…`);
  const t0 = performance.now();
  try {
    const response = await post("/api/matte/stream", { image: S.file, trimap: await trimapBlob(), steps: n, seed: seed() });
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "", done = false;
    $("view").value = "alpha";
    while (!done) {
      const chunk = await reader.read();
      if (chunk.done) break;
      buffer += decoder.decode(chunk.value, { stream: true });
      let nl;
      while ((nl = buffer.indexOf("\n")) >= 0) {
        const item = JSON.parse(buffer.slice(0, nl));
        buffer = buffer.slice(nl + 1);
        if (item.error) throw new Error(item.error);
        if (item.done) {
          await showMatte(b64ToBlob(item.alpha));
          done = true;
        } else {
          S.alpha = await greyOf(b64ToBlob(item.alpha));
          S.frames += 1; canvas.dataset.frames = String(S.frames);
          $("progress").value = item.step;
          status(`step ${item.step}/${item.steps}`);
        }
        render();
      }
    }
    if (!done) throw new Error("the server closed the stream before the matte was done");
    const secs = ((performance.now() - t0) / 1000).toFixed(1);
    status(`matte done: ${n} steps in ${secs} s. Paint a stroke to correct it (only a window around it is re-matted).`);
    setState("done");
    S.busy = false; enable();
    await updateCutout();
  } catch (e) {
    status(e.message, true); setState("error");
  } finally {
    S.busy = false; enable();
  }
}

async function refine() {
  const box = S.box;
  S.busy = true; enable(); setState("refining");
  status("re-matting around the stroke…");
  const t0 = performance.now();
  try {
    const response = await post("/api/refine", {
      image: S.file, trimap: await trimapBlob(), alpha: S.alphaPng,
      box: box.join(","), steps: steps(), seed: seed(), window: 512,
    });
    const win = response.headers.get("X-Diffmatte-Window");
    await showMatte(await response.blob());
    S.stroke = null;
    if ($("view").value === "trimap") $("view").value = "alpha";
    render();
    const ms = Math.round(performance.now() - t0);
    status(`re-matted the window ${win} (left,top,right,bottom) in ${ms} ms.`);
    setState("done");
    S.busy = false; enable();
    await updateCutout();
  } catch (e) {
    S.stroke = null; render();
    status(e.message, true); setState("error");
  } finally {
    S.busy = false; enable();
  }
}

$("run").addEventListener("click", run);

// -- views and downloads ------------------------------------------------------------------------
for (const id of ["view", "bg", "colour", "split"]) $(id).addEventListener("input", () => render());

function save(blob, name) {
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = name;
  document.body.appendChild(a);
  a.click();
  setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
}
$("save-alpha").addEventListener("click", () => save(S.alphaPng, `${S.name}_alpha.png`));
$("save-cutout").addEventListener("click", () => save(S.cutoutPng, `${S.name}_cutout.png`));

// -- start --------------------------------------------------------------------------------------
fetch("/api/health").then((r) => r.json()).then((h) => {
  $("model").textContent = `model ${h.model} (${h.preset}), diffmatte ${h.version}`;
  S.maxSteps = h.max_steps;
  $("steps").max = h.max_steps;
  $("steps").value = Math.min(h.default_steps, h.max_steps);
}).catch(() => status("the server does not answer", true));
enable();
