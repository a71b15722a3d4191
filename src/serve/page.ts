// GET / of `simclr serve`: choose or drop images; each is POSTed to /predict and its top-k drawn.
import { renderPage, scriptJson } from '../export/page-kit';

export function servePage(o: { model: string; classes: string[]; top: number }): string {
  return renderPage({
    title: 'simclr-ts classifier',
    subtitle: `${o.model}: POST /predict with an image body or multipart files`,
    classes: o.classes,
    script: `
var TOP = ${scriptJson(o.top)};
async function classify(file) {
  var res = await fetch('predict?top=' + TOP, { method: 'POST', headers: { 'content-type': file.type || 'application/octet-stream' }, body: file });
  var body = await res.json();
  if (!res.ok) throw new Error(body.error || ('HTTP ' + res.status));
  return body.predictions;
}
wireDropZone();
setStatus('Ready.');
`,
  });
}
