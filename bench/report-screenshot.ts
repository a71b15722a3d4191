// The README's picture of a report: writes a run's full report to a temporary file (the run
// folder is only read) and takes a full-page screenshot of it in headless Chromium.
//   node dist/bench/report-screenshot.js RUN docs/report.png
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import sharp from 'sharp';
import { buildReport } from '../src/report';
import { launchBrowser } from '../test/browser';
import { tempDir } from '../test/helpers';

async function main(): Promise<void> {
  const [run, png] = process.argv.slice(2);
  if (!run || !png) throw new Error('usage: node dist/bench/report-screenshot.js RUN OUT.png');
  const file = join(tempDir('simclr-report-shot-'), 'report.html');
  await buildReport({ run, out: file });
  const browser = await launchBrowser();
  try {
    const page = await browser.newPage();
    const problems: string[] = [];
    page.on('console', (m) => (m.type() === 'error' || m.type() === 'warn') && problems.push(m.text()));
    page.on('pageerror', (e) => problems.push(String(e)));
    await page.setViewport({ width: 1100, height: 900 });
    await page.goto(pathToFileURL(file).href);
    await page.waitForSelector('body[data-rendered], body[data-render-error]', { timeout: 60_000 });
    if (problems.length) throw new Error(`the page reported: ${problems.join('; ')}`);
    // A palette PNG: a page of flat colours keeps its look at a fraction of the bytes.
    const shot = await page.screenshot({ fullPage: true });
    await sharp(Buffer.from(shot)).png({ palette: true, effort: 10 }).toFile(png);
    console.log(`wrote ${png} (the report of ${run}, ${file})`);
  } finally {
    await browser.close();
  }
}

main().catch((e: unknown) => {
  console.error(String(e));
  process.exitCode = 1;
});
