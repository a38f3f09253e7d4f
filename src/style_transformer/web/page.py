"""The editor's single page (HTML, CSS and JavaScript inline: no external assets, works offline)."""

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>style-transformer editor</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font-family:system-ui,sans-serif;margin:1.5em;max-width:1100px;color:#222}
h1{font-size:1.4em;margin:0 0 .6em}
.row{display:flex;gap:1.2em;flex-wrap:wrap;align-items:flex-start}
figure{margin:0;text-align:center}
figure img{width:256px;height:256px;image-rendering:pixelated;background:#eee;border:1px solid #ccc}
figcaption{font-size:.9em;color:#555}
#samples img{width:48px;height:48px;cursor:pointer;border:1px solid #ccc;margin-right:4px;image-rendering:pixelated}
.slider{display:grid;grid-template-columns:11em 1fr 4em;gap:.5em;align-items:center;margin:.2em 0}
#msg{min-height:1.4em;color:#b00020;font-weight:600}
#status{color:#555;font-size:.9em}
fieldset{border:1px solid #ccc;border-radius:6px;margin:.8em 0}
button{padding:.3em .8em}
a.dl{margin-right:1em}
</style></head>
<body>
<h1>Style Transformer: invert and edit</h1>
<div id="msg" role="alert"></div>
<fieldset><legend>Image</legend>
  <input type="file" id="upload" accept="image/*">
  <span id="status"></span>
  <div id="samples">or pick a sample: </div>
</fieldset>
<div class="row">
  <figure><img id="input" alt="input"><figcaption>input</figcaption></figure>
  <figure><img id="recon" alt="reconstruction"><figcaption id="recon-cap">reconstruction</figcaption></figure>
  <figure><img id="edited" alt="edited"><figcaption>edited</figcaption></figure>
</div>
<fieldset><legend>Attribute directions</legend><div id="sliders"></div>
  <button id="reset">reset sliders</button></fieldset>
<fieldset><legend>Reference-based editing</legend>
  <input type="file" id="ref-upload" accept="image/*">
  <select id="ref-attr"></select>
  <label>strength <input type="number" id="ref-strength" min="0.25" max="10" step="0.25" placeholder="calibrated" style="width:7em"
    title="scale of the editor's move (empty: the calibrated one; 1: the editor as trained)"></label>
  <button id="ref-apply" disabled>transfer from the reference</button>
  <button id="ref-clear">clear</button>
  <span id="ref-status"></span>
</fieldset>
<p><a class="dl" id="dl-png" href="#">download edited image</a><a class="dl" id="dl-npz" href="#">download latents (.npz)</a></p>
<script>
let info = null, current = null, refId = null, useRef = false, timer = null, pending = 0;
const $ = (id) => document.getElementById(id);
function say(text) { $("msg").textContent = text || ""; }
function busy(d) { pending += d; $("status").textContent = pending > 0 ? "working..." : ""; }
async function api(path, body, json) {
  busy(1);
  try {
    const opts = body === undefined ? {} : {method: "POST", body: json ? JSON.stringify(body) : body,
      headers: {"Content-Type": json ? "application/json" : "application/octet-stream"}};
    const r = await fetch(path, opts);
    const out = await r.json();
    if (!r.ok) { throw new Error(out.error || ("error " + r.status)); }
    return out;
  } finally { busy(-1); }
}
function sliderValues() {
  const v = {};
  document.querySelectorAll("#sliders input[type=range]").forEach((s) => { v[s.dataset.name] = parseFloat(s.value); });
  return v;
}
async function invertBlob(blob) {
  if (blob.size > info.max_upload_mb * 1048576) {
    say("That file is " + (blob.size / 1048576).toFixed(1) + " MB; the limit is " + info.max_upload_mb + " MB.");
    return null;
  }
  try { const out = await api("/api/invert", blob, false); say(""); return out; }
  catch (e) { say(e.message); return null; }
}
function show(out) {
  current = out.id;
  $("input").src = out.input; $("recon").src = out.reconstruction; $("edited").src = out.reconstruction;
  $("recon-cap").textContent = "reconstruction (PSNR " + out.psnr + " dB)";
  $("dl-png").href = "/api/download/" + current + ".png"; $("dl-npz").href = "/api/download/" + current + ".npz";
  $("ref-apply").disabled = !(refId && current);
  scheduleEdit();
}
async function doEdit() {
  if (!current) { return; }
  const body = {id: current, sliders: sliderValues()};
  if (useRef && refId) {
    body.reference = refId; body.reference_attribute = $("ref-attr").value;
    const scale = parseFloat($("ref-strength").value);
    if (scale > 0) { body.reference_strength = scale; }
  }
  try { const out = await api("/api/edit", body, true); $("edited").src = out.image; say(""); }
  catch (e) { say(e.message); }
}
function scheduleEdit() { clearTimeout(timer); timer = setTimeout(doEdit, 120); }
async function init() {
  info = await api("/api/info");
  for (let i = 0; i < info.samples; i++) {
    const img = document.createElement("img");
    img.src = "/api/sample/" + i + ".png"; img.alt = "sample " + i; img.id = "sample-" + i;
    img.onclick = async () => { const b = await (await fetch(img.src)).blob(); const out = await invertBlob(b); if (out) show(out); };
    $("samples").appendChild(img);
  }
  for (const s of info.sliders) {
    const row = document.createElement("div"); row.className = "slider";
    const label = document.createElement("label"); label.textContent = s.name;
    const input = document.createElement("input");
    Object.assign(input, {type: "range", min: -s.max, max: s.max, step: s.max / 50, value: 0, id: "slider-" + s.name});
    input.dataset.name = s.name;
    const val = document.createElement("span"); val.textContent = "0";
    input.addEventListener("input", () => { val.textContent = parseFloat(input.value).toFixed(2); scheduleEdit(); });
    row.append(label, input, val); $("sliders").appendChild(row);
  }
  if (!info.sliders.length) { $("sliders").textContent = "no editing models loaded"; }
  for (const a of info.editors) { const o = document.createElement("option"); o.value = o.textContent = a; $("ref-attr").appendChild(o); }
  $("upload").onchange = async (ev) => { const f = ev.target.files[0]; if (!f) return; const out = await invertBlob(f); if (out) show(out); };
  $("ref-upload").onchange = async (ev) => {
    const f = ev.target.files[0]; if (!f) return; const out = await invertBlob(f);
    if (out) { refId = out.id; $("ref-status").textContent = "reference ready"; $("ref-apply").disabled = !current; }
  };
  $("ref-apply").onclick = () => { useRef = true; doEdit(); };
  $("ref-strength").oninput = () => { if (useRef) { scheduleEdit(); } };
  $("ref-clear").onclick = () => { useRef = false; refId = null; $("ref-status").textContent = ""; $("ref-apply").disabled = true; doEdit(); };
  $("reset").onclick = () => { document.querySelectorAll("#sliders input[type=range]").forEach((s) => { s.value = 0; s.dispatchEvent(new Event("input")); }); };
}
init().catch((e) => say("could not start: " + e.message));
</script>
</body></html>
"""
