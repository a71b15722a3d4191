// What the server's page and the exported web page share: the look, the drop zone, and
// drawing an image's top-k as bars. Both pages are single files with no outside resources.

/** JSON for inlining in a <script>: no '</script>' or '<!--' can close or confuse it. */
export function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

const STYLE = `
  :root { color-scheme: light; --ink: #1d2433; --muted: #5b6476; --accent: #2f6fde; --line: #d9deea; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); background: #f5f7fb; }
  main { max-width: 880px; margin: 0 auto; padding: 28px 20px 48px; }
  h1 { font-size: 22px; margin: 0 0 4px; }
  .sub { color: var(--muted); margin: 0 0 20px; font-size: 13px; word-break: break-all; }
  #drop { border: 2px dashed #9fb0d0; border-radius: 12px; background: #fff; padding: 28px; text-align: center; cursor: pointer; transition: background .15s; }
  #drop.over { background: #e8f0ff; border-color: var(--accent); }
  #drop strong { color: var(--accent); }
  #status { margin: 14px 0 0; color: var(--muted); min-height: 1.4em; }
  #prediction { font-weight: 600; color: var(--ink); }
  #results { display: grid; gap: 14px; margin-top: 18px; }
  .card { display: grid; grid-template-columns: 112px 1fr; gap: 16px; background: #fff; border: 1px solid var(--line); border-radius: 12px; padding: 14px; align-items: start; }
  .card img { width: 112px; height: 112px; object-fit: contain; image-rendering: pixelated; background: #eef1f7; border-radius: 8px; }
  .card h2 { font-size: 14px; margin: 0 0 8px; font-weight: 600; word-break: break-all; }
  .row { display: grid; grid-template-columns: 130px 1fr 56px; gap: 8px; align-items: center; font-size: 13px; margin: 3px 0; }
  .row .name { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
  .bar { height: 12px; background: #e7ebf3; border-radius: 6px; overflow: hidden; }
  .bar span { display: block; height: 100%; background: var(--accent); border-radius: 6px; }
  .row:first-of-type .bar span { background: #1f9d63; }
  .row .p { text-align: right; font-variant-numeric: tabular-nums; color: var(--muted); }
  .error { color: #b42318; font-size: 13px; }
`;

/** Browser code: drop zone wiring and drawing results. `classify(file)` resolves to [{class, probability}] or throws. */
export const PAGE_SCRIPT = `
function drawResult(name, imageUrl, predictions, error) {
  var card = document.createElement('div');
  card.className = 'card';
  var img = document.createElement('img');
  img.src = imageUrl; img.alt = name;
  var body = document.createElement('div');
  var title = document.createElement('h2');
  title.textContent = name;
  body.appendChild(title);
  if (error) {
    var e = document.createElement('div'); e.className = 'error'; e.textContent = error; body.appendChild(e);
  } else {
    predictions.forEach(function (p) {
      var row = document.createElement('div'); row.className = 'row';
      var n = document.createElement('span'); n.className = 'name'; n.textContent = p['class']; n.title = p['class'];
      var bar = document.createElement('div'); bar.className = 'bar';
      var fill = document.createElement('span'); fill.style.width = (100 * p.probability).toFixed(1) + '%'; bar.appendChild(fill);
      var pct = document.createElement('span'); pct.className = 'p'; pct.textContent = (100 * p.probability).toFixed(1) + '%';
      row.appendChild(n); row.appendChild(bar); row.appendChild(pct); body.appendChild(row);
    });
  }
  card.appendChild(img); card.appendChild(body);
  var results = document.getElementById('results');
  results.insertBefore(card, results.firstChild);
}
function setStatus(text) { document.getElementById('status').textContent = text; }
async function classifyFiles(files) {
  for (var i = 0; i < files.length; i++) {
    var f = files[i];
    var url = URL.createObjectURL(f);
    try {
      var preds = await classify(f);
      drawResult(f.name, url, preds, null);
      setTopOne(preds[0]['class']);
    } catch (err) {
      drawResult(f.name, url, null, String(err && err.message || err));
    }
  }
}
function setTopOne(name) {
  var p = document.getElementById('prediction');
  p.textContent = name;
  p.setAttribute('data-done', 'true');
}
function wireDropZone() {
  var drop = document.getElementById('drop');
  var input = document.getElementById('file');
  drop.addEventListener('click', function () { input.click(); });
  input.addEventListener('change', function () { var files = Array.prototype.slice.call(input.files); input.value = ''; classifyFiles(files); });
  ['dragenter', 'dragover'].forEach(function (t) { drop.addEventListener(t, function (e) { e.preventDefault(); drop.classList.add('over'); }); });
  ['dragleave', 'drop'].forEach(function (t) { drop.addEventListener(t, function (e) { e.preventDefault(); drop.classList.remove('over'); }); });
  drop.addEventListener('drop', function (e) { classifyFiles(e.dataTransfer.files); });
}
`;

export interface PageOptions {
  title: string;
  subtitle: string;
  /** Classes, for the hint under the drop zone. */
  classes: string[];
  /** Extra <head> content (scripts to load). */
  head?: string;
  /** Browser code defining classify(file) and starting the page (after PAGE_SCRIPT). */
  script: string;
}

export function renderPage(o: PageOptions): string {
  const shown = o.classes.slice(0, 12).map(escapeHtml).join(', ') + (o.classes.length > 12 ? `, ... (${o.classes.length} in all)` : '');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>${escapeHtml(o.title)}</title>
<style>${STYLE}</style>
${o.head ?? ''}
</head>
<body>
<main>
  <h1>${escapeHtml(o.title)}</h1>
  <p class="sub">${escapeHtml(o.subtitle)}</p>
  <div id="drop" role="button" tabindex="0">
    <p><strong>Choose images</strong> or drop them here</p>
    <p class="sub" style="margin:0">Classes: ${shown}</p>
    <input id="file" type="file" accept="image/*" multiple hidden>
  </div>
  <p id="status"></p>
  <p>Top-1: <span id="prediction"></span></p>
  <div id="results"></div>
</main>
<script>
${PAGE_SCRIPT}
${o.script}
</script>
</body>
</html>
`;
}
