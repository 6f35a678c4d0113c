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
  cutoutDespill: false, // whether that cutout was made with "remove colour spill"
  stroke: null,       // Uint8Array w*h: pixels of the stroke being painted (shown over the matte)
  box: null,          // [x0, y0, x1, y1) of the current stroke
  unsure: null,       // Uint8Array w*h: where the seeds disagree (the uncertainty view), or null
  suggestions: [],    // [left, top, right, bottom] windows where a stroke helps most, best first
  busy: false, frames: 0, maxSteps: 100, maxPixels: 0,
  generation: 0,      // bumped when another image opens: answers for the old one are dropped
};
window.diffmatte = S; // for the browser test and the curious
const REFINE_WINDOW = 128;

function status(text, isError = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", isError);
}

function setState(state) { document.body.dataset.state = state; }

// Run needs a trimap with some known pixels: with none the network has nothing to hold on to
// and returns a flat matte.
function hasKnown() { return S.trimap !== null && S.trimap.some((v) => v !== 128); }

function enable() {
  const has = S.trimap !== null;
  for (const id of ["auto", "clear", "save-trimap", "open-trimap"]) $(id).disabled = !has || S.busy;
  $("run").disabled = !hasKnown() || S.busy;
  $("run").title = has && !hasKnown() ? "Mark some foreground or background first (Automatic, or paint)" : "";
  $("undo").disabled = S.undo.length === 0 || S.busy;
  $("save-alpha").disabled = S.alphaPng === null;
  $("save-cutout").disabled = S.cutoutPng === null;
  document.querySelector("#view option[value=uncertainty]").disabled = S.unsure === null;
  $("rematte").disabled = S.suggestions.length === 0 || S.busy;
}

// The uncertainty belongs to the matte it came with: any other matte on screen drops it.
function forgetUnsure() {
  S.unsure = null; S.suggestions = [];
  if ($("view").value === "uncertainty") $("view").value = "alpha";
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

// A canvas only encodes RGBA; a trimap is one grey channel, so the PNG is written here
// (8-bit greyscale, filter 0 on every row, zlib through the browser's CompressionStream).
const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(bytes) {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

async function greyPng(w, h, values) {
  const rows = new Uint8Array(h * (w + 1));
  for (let y = 0; y < h; y++) rows.set(values.subarray(y * w, (y + 1) * w), y * (w + 1) + 1);
  const zipped = new Uint8Array(await new Response(new Blob([rows]).stream().pipeThrough(new CompressionStream("deflate"))).arrayBuffer());
  const header = new Uint8Array(13);
  const hv = new DataView(header.buffer);
  hv.setUint32(0, w); hv.setUint32(4, h);
  header[8] = 8; // bit depth; colour type 0 (grey), compression, filter and interlace 0
  const signature = new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10]);
  return new Blob([signature, chunk("IHDR", header), chunk("IDAT", zipped), chunk("IEND", new Uint8Array(0))], { type: "image/png" });
}

function trimapBlob() { return greyPng(S.w, S.h, S.trimap); }

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
  if (view === "uncertainty" && !S.unsure) view = "alpha";
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
      } else if (view === "uncertainty") {
        const u = S.unsure[i] / 255; // a heat overlay: the image dimmed, red where the seeds disagree
        r = 0.35 * r + 0.65 * 255 * u; g = 0.35 * g; b = 0.35 * b + 0.65 * 60 * u;
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
  if (view === "uncertainty") outlineSuggestions();
}

function outlineSuggestions() {
  ctx.save();
  ctx.lineWidth = Math.max(2, Math.round(S.w / 400));
  S.suggestions.forEach(([l, t, r, b], k) => {
    ctx.strokeStyle = k === 0 ? "#ffeb3b" : "rgba(255, 235, 59, 0.55)";
    ctx.setLineDash(k === 0 ? [] : [8, 6]);
    ctx.strokeRect(l + 0.5, t + 0.5, r - l - 1, b - t - 1);
  });
  ctx.restore();
}

// -- opening an image ---------------------------------------------------------------------------
function baseName(file) { return (file.name || "image").replace(/\.[^.]*$/, ""); }

// Everything of the picture on screen goes (a new one opens, or one is refused); answers still
// on their way for it are dropped (generation).
function forgetImage() {
  S.generation += 1;
  S.file = null; S.rgb = null; S.trimap = null;
  S.undo = []; S.alpha = S.alphaPng = S.cutout = S.cutoutPng = S.stroke = null;
  forgetUnsure();
  $("shrink-row").hidden = true;
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  setState("empty");
  enable();
}

async function openFile(file) {
  if (!file) return;
  try {
    const p = await pixels(file);
    if (S.maxPixels && p.w * p.h > S.maxPixels) {
      // Refused before anything is sent: the old image's results go too, so no download can
      // hand out another picture's matte.
      forgetImage();
      const s = Math.sqrt(S.maxPixels / (p.w * p.h));
      const w = Math.max(1, Math.floor(p.w * s)), h = Math.max(1, Math.floor(p.h * s));
      const mp = (n) => (n / 1e6).toFixed(n < 1e7 ? 1 : 0);
      status(`${p.w}×${p.h} (${mp(p.w * p.h)} MP) is above this server's limit of ${mp(S.maxPixels)} MP: shrink it to ${w}×${h}?`, true);
      $("shrink").textContent = `Shrink to ${w}×${h}`;
      $("shrink").onclick = () => shrink(file, w, h);
      $("shrink-row").hidden = false;
      return;
    }
    forgetImage();
    S.file = file; S.name = baseName(file);
    S.w = p.w; S.h = p.h; S.rgb = p.data;
    S.trimap = new Uint8Array(S.w * S.h).fill(128);
    canvas.width = S.w; canvas.height = S.h;
    $("view").value = "trimap";
    setState("image");
    render(); enable();
    status(`${S.name}: ${S.w}x${S.h}. Make a trimap: Automatic, Open trimap…, or paint foreground, background and unknown.`);
  } catch (e) {
    status(`cannot open this file as an image (${e.message})`, true);
  }
}

async function shrink(file, w, h) {
  const bmp = await decodeBitmap(file);
  const c = new OffscreenCanvas(w, h);
  const x = c.getContext("2d");
  x.imageSmoothingQuality = "high";
  x.drawImage(bmp, 0, 0, w, h);
  const blob = await c.convertToBlob({ type: "image/png" });
  const name = baseName(file) + `_${w}x${h}.png`;
  await openFile(new File([blob], name, { type: "image/png" }));
}

$("open").addEventListener("click", () => $("file").click());
$("file").addEventListener("change", (e) => { openFile(e.target.files[0]); e.target.value = ""; });
const stage = $("stage");
stage.addEventListener("dragover", (e) => { e.preventDefault(); stage.classList.add("drag"); });
stage.addEventListener("dragleave", () => stage.classList.remove("drag"));
stage.addEventListener("drop", (e) => {
  e.preventDefault(); stage.classList.remove("drag");
  if (e.dataTransfer.files.length) openFile(e.dataTransfer.files[0]);
});

// -- trimap -------------------------------------------------------------------------------------
// An undo step is the trimap and the matte as they were: undoing a correction also takes back
// the re-matted window (and the downloads follow).
function pushUndo() {
  S.undo.push({ trimap: S.trimap.slice(), alpha: S.alpha, alphaPng: S.alphaPng, cutout: S.cutout, cutoutPng: S.cutoutPng,
                cutoutDespill: S.cutoutDespill });
  if (S.undo.length > UNDO_LIMIT) S.undo.shift();
}

function undo() {
  if (!S.undo.length || S.busy) return;
  const u = S.undo.pop();
  S.trimap = u.trimap; S.alpha = u.alpha; S.alphaPng = u.alphaPng; S.cutout = u.cutout; S.cutoutPng = u.cutoutPng;
  S.cutoutDespill = u.cutoutDespill;
  forgetUnsure();
  render(); enable();
  status("undone.");
  // the cutout must follow the spill setting as it is now, not as it was
  if (S.alphaPng !== null && S.cutoutDespill !== $("despill").checked) updateCutout();
}

async function autoTrimap() {
  S.busy = true; enable(); setState("working");
  status("finding the object…");
  try {
    const fields = { image: S.file };
    if (+$("band").value > 0) fields.band = $("band").value;
    const gen = S.generation;
    const blob = await (await post("/api/trimap", fields)).blob();
    if (gen !== S.generation) return;
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
$("undo").addEventListener("click", undo);
$("clear").addEventListener("click", () => { pushUndo(); S.trimap.fill(0); render(); enable(); });
$("save-trimap").addEventListener("click", async () => save(await trimapBlob(), `${S.name}_trimap.png`));

async function openTrimap(file) {
  if (!file || !S.trimap) return;
  const gen = S.generation;
  try {
    const p = await pixels(file);
    if (gen !== S.generation) return;
    if (p.w !== S.w || p.h !== S.h) throw new Error(`the trimap is ${p.w}x${p.h} but the image is ${S.w}x${S.h}; it must have the image's size`);
    const tri = new Uint8Array(p.w * p.h);
    for (let i = 0; i < tri.length; i++) {
      const v = p.data[4 * i]; // grey: R = G = B; as the command line reads it, anything but 0 and 255 is unknown
      tri[i] = v === 0 ? 0 : v === 255 ? 255 : 128;
    }
    pushUndo();
    S.trimap = tri;
    $("view").value = "trimap";
    render(); enable();
    status(`trimap ${file.name} loaded; paint to correct it, then Run.`);
    setState("trimap");
  } catch (e) {
    status(`cannot use this trimap: ${e.message}`, true);
  }
}
$("open-trimap").addEventListener("click", () => $("trimap-file").click());
$("trimap-file").addEventListener("change", (e) => { openTrimap(e.target.files[0]); e.target.value = ""; });

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
// Out of range is refused with a message, never silently changed into another number.
function steps() {
  const raw = $("steps").value.trim(), n = Number(raw);
  if (raw === "" || !Number.isInteger(n) || n < 1 || n > S.maxSteps) {
    status(`steps must be a whole number from 1 to ${S.maxSteps}, got "${raw}"`, true);
    $("steps").focus();
    return null;
  }
  return n;
}
function seed() { return Math.max(0, Math.round(+$("seed").value || 0)); }

async function showMatte(blob) {
  S.alpha = await greyOf(blob);
  S.alphaPng = blob;
}

async function updateCutout() {
  const gen = S.generation, alphaPng = S.alphaPng, despill = $("despill").checked;
  const current = () => gen === S.generation && alphaPng === S.alphaPng && despill === $("despill").checked;
  S.cutout = null; S.cutoutPng = null; enable();
  $("save-cutout").textContent = "Download cutout (estimating colours…)";
  try {
    const blob = await (await post("/api/cutout", { image: S.file, alpha: alphaPng, despill: despill ? 1 : 0 })).blob();
    const p = await pixels(blob);
    // Dropped if another image opened, the matte changed or the spill setting changed meanwhile
    // (a download must match the screen).
    if (!current()) return;
    S.cutout = p.data; S.cutoutPng = blob; S.cutoutDespill = despill;
    if ($("view").value === "cutout" || $("view").value === "compare") render();
  } catch (e) {
    if (gen === S.generation) status(`cutout: ${e.message}`, true);
  } finally {
    if (current()) $("save-cutout").textContent = "Download cutout";
    enable();
  }
}

async function run() {
  const n = steps();
  if (n === null) return;
  if (!hasKnown()) { status("the trimap has no foreground or background: mark some first (Automatic, or paint)", true); return; }
  const gen = S.generation;
  S.busy = true; enable(); setState("running");
  S.frames = 0; canvas.dataset.frames = "0";
  $("progress").max = n; $("progress").value = 0;
  status(`matting: encoder…`);
  const t0 = performance.now();
  try {
    const seeds = $("unsure").checked ? 4 : 1;
    const response = await post("/api/matte/stream", { image: S.file, trimap: await trimapBlob(), steps: n, seed: seed(), seeds });
    forgetUnsure();
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
        if (gen !== S.generation) { reader.cancel(); return; } // another image opened meanwhile
        if (item.error) throw new Error(item.error);
        if (item.done) {
          await showMatte(b64ToBlob(item.alpha));
          if (item.uncertainty) {
            S.unsure = await greyOf(b64ToBlob(item.uncertainty));
            S.suggestions = item.suggestions || [];
          }
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
    if (S.unsure) {
      $("view").value = "uncertainty";
      render();
      status(`matte done: ${n} steps, ${seeds} seeds in ${secs} s. Red: where the seeds disagree; a stroke in the ` +
        `outlined window helps most (the dashed ones next).`);
    }
    setState("done");
    S.busy = false; enable();
    $("run").focus(); // the button was disabled while running, which took the focus away
    await updateCutout();
  } catch (e) {
    status(e.message, true); setState("error");
  } finally {
    S.busy = false; enable();
  }
}

// A correction (the stroke's box, the steps field) or, with `more`, the outlined window where
// the seeds disagree most, re-matted with twice the steps.
async function refine(more = false) {
  const box = S.box, gen = S.generation;
  const asked = steps();
  if (asked === null) { S.stroke = null; render(); return; }
  const n = more ? Math.min(2 * asked, S.maxSteps) : asked;
  S.busy = true; enable(); setState("refining");
  status(more ? `re-matting the outlined window with ${n} steps…` : "re-matting around the stroke…");
  const t0 = performance.now();
  try {
    const response = await post("/api/refine", {
      image: S.file, trimap: await trimapBlob(), alpha: S.alphaPng,
      // The smallest window the server allows around the stroke: it grows to hold the stroke
      // plus 64 px of context on every side, so a short stroke re-mattes fast (under a second
      // on a 960 px photo, benchmarks/serve_latency.py) and a long one still gets its context.
      box: box.join(","), steps: n, seed: seed(), window: REFINE_WINDOW,
    });
    const win = response.headers.get("X-Diffmatte-Window");
    const blob = await response.blob();
    if (gen !== S.generation) return;
    await showMatte(blob);
    forgetUnsure();
    S.stroke = null;
    if ($("view").value === "trimap") $("view").value = "alpha";
    render();
    const ms = Math.round(performance.now() - t0);
    status(`re-matted the window ${win} (left,top,right,bottom) with ${n} steps in ${ms} ms.`);
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
$("rematte").addEventListener("click", () => {
  if (!S.suggestions.length || S.busy) return;
  pushUndo(); // Undo takes the re-matted window back, as for a stroke
  S.box = S.suggestions[0].slice();
  refine(true);
});

// -- views and downloads ------------------------------------------------------------------------
for (const id of ["view", "bg", "colour", "split"]) $(id).addEventListener("input", () => render());
$("despill").addEventListener("change", () => { if (S.alphaPng !== null) updateCutout(); });

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
  S.maxSteps = h.max_sample_steps;
  S.maxPixels = h.max_pixels || 0;
  $("steps").max = h.max_sample_steps;
  $("steps").value = Math.min(h.default_steps, h.max_sample_steps);
}).catch(() => status("the server does not answer", true));
enable();
