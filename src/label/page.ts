// The labeling page: one suggested image at a time, large; keys 1-9 and 0 (or a click) give
// its class, s or space skips it, u or Backspace undoes the last answer. Each answer is
// saved to the CSV at once; reopening starts at the first image with no answer.
export function labelPage(): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>simclr-ts: label images</title>
<style>
body { font: 15px system-ui, sans-serif; margin: 0; background: #f4f4f4; color: #222; }
main { max-width: 900px; margin: 0 auto; padding: 16px; text-align: center; }
#image { width: min(70vmin, 640px); height: min(70vmin, 640px); object-fit: contain; image-rendering: pixelated; background: #fff; border: 1px solid #ccc; }
#classes { display: flex; flex-wrap: wrap; gap: 6px; justify-content: center; margin: 12px 0; }
#classes button { font-size: 15px; padding: 6px 12px; cursor: pointer; }
#classes kbd { color: #777; margin-right: 4px; }
#progress, #why { color: #555; margin: 6px 0; }
#done { font-size: 18px; }
</style></head>
<body><main>
<div id="progress"></div>
<img id="image" alt="the image to label">
<div id="why"></div>
<div id="classes"></div>
<div><button id="skip">skip (s)</button> <button id="undo">undo (u)</button></div>
<p id="done" hidden>Every image has an answer. Next: <code>simclr finetune --from RUN --labeled FILE.csv</code></p>
</main>
<script>
var state = null, at = 0, answered = [];
var keys = ['1','2','3','4','5','6','7','8','9','0'];
function open(row) { var r = state.rows[row]; return !r.label && !r.skipped; }
function next(from) { for (var i = from; i < state.rows.length; i++) if (open(i)) return i; for (var j = 0; j < from; j++) if (open(j)) return j; return -1; }
function show() {
  var done = state.rows.filter(function (r) { return r.label || r.skipped; }).length;
  document.getElementById('progress').textContent = done + ' of ' + state.rows.length + ' answered';
  var img = document.getElementById('image');
  document.getElementById('done').hidden = at >= 0;
  img.hidden = at < 0;
  if (at < 0) { document.getElementById('why').textContent = ''; return; }
  img.src = 'image/' + at;
  img.dataset.row = String(at);
  document.getElementById('why').textContent = state.rows[at].why;
}
async function answer(label, skipped) {
  if (at < 0) return;
  var row = at, before = { label: state.rows[row].label, skipped: state.rows[row].skipped };
  await post(row, label, skipped);
  answered.push({ row: row, before: before });
  state.rows[row] = { label: skipped ? '' : label, skipped: skipped, why: state.rows[row].why };
  at = next(row + 1);
  show();
}
async function undo() {
  var last = answered.pop();
  if (!last) return;
  await post(last.row, last.before.label, last.before.skipped);
  state.rows[last.row].label = last.before.label;
  state.rows[last.row].skipped = last.before.skipped;
  at = last.row;
  show();
}
async function post(row, label, skipped) {
  var res = await fetch('label', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ row: row, label: label, skipped: skipped }) });
  if (!res.ok) { var e = await res.json(); alert('not saved: ' + e.error); throw new Error(e.error); }
}
document.addEventListener('keydown', function (e) {
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  var k = keys.indexOf(e.key);
  if (k >= 0 && k < state.classes.length) { e.preventDefault(); answer(state.classes[k], false); }
  else if (e.key === 's' || e.key === ' ') { e.preventDefault(); answer('', true); }
  else if (e.key === 'u' || e.key === 'Backspace') { e.preventDefault(); undo(); }
});
document.getElementById('skip').onclick = function () { answer('', true); };
document.getElementById('undo').onclick = undo;
fetch('state').then(function (r) { return r.json(); }).then(function (s) {
  state = s;
  var box = document.getElementById('classes');
  s.classes.forEach(function (c, i) {
    var b = document.createElement('button');
    if (i < keys.length) { var kbd = document.createElement('kbd'); kbd.textContent = keys[i]; b.appendChild(kbd); }
    b.appendChild(document.createTextNode(c));
    b.onclick = function () { answer(c, false); };
    box.appendChild(b);
  });
  at = next(0);
  show();
  document.body.dataset.ready = 'yes';
});
</script></body></html>`;
}
