// Headless check of the dashboard served by the Orleans.MoE front end.
//
//   node dashboard-check.mjs <baseUrl> <expectedSilos> <expectedCells> [apiKey]
//
// Opens the page in Debian's Chromium, waits for the mesh to be live, counts silo cards and expert
// cells, and streams one completion through the playground. Prints one JSON line with what it saw
// and exits 0, or prints the reason to stderr and exits 1. DASHBOARD_SCREENSHOT=<file.png> saves
// a full-page screenshot (also on failure).
import { chromium } from 'playwright-core';

const OVERALL_MS = 60_000;
const STEP_MS = 15_000;
const PROMPT = 'def fibonacci(n):';
const KEY_STORAGE = 'orleans-moe.apiKey'; // the same key as dashboard.js
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

const testId = id => `[data-testid="${id}"]`;

function parseArguments(argv) {
  const [baseUrl, silos, cells, apiKey] = argv;
  const expectedSilos = Number(silos);
  const expectedCells = Number(cells);
  if (!baseUrl || !Number.isInteger(expectedSilos) || !Number.isInteger(expectedCells)) {
    throw new Error('usage: node dashboard-check.mjs <baseUrl> <expectedSilos> <expectedCells> [apiKey]');
  }
  return { baseUrl, expectedSilos, expectedCells, apiKey };
}

// Polls `read` until `accept` holds; on timeout throws with the last value seen.
async function waitFor(what, read, accept, timeoutMs = STEP_MS) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await read();
    if (accept(last)) return last;
    if (Date.now() > deadline) throw new Error(`${what}: gave up after ${timeoutMs / 1000} s, last saw ${JSON.stringify(last)}`);
    await new Promise(resolve => setTimeout(resolve, 200));
  }
}

async function checkMesh(page, { expectedSilos, expectedCells }) {
  const status = page.locator(testId('mesh-status'));
  const seen = await waitFor('mesh-status should become "live"', () => status.textContent(),
    text => ['live', 'unauthorized'].includes(text?.trim()));
  if (seen.trim() === 'unauthorized') throw new Error('GET /api/mesh answered 401: pass the API key as the 4th argument');
  const silos = await waitFor(`expected ${expectedSilos} silo cards`,
    () => page.locator(testId('silo-card')).count(), count => count === expectedSilos);
  const cells = await waitFor(`expected ${expectedCells} expert cells, each naming a silo`,
    () => page.locator(testId('expert-cell')).evaluateAll(nodes => ({
      count: nodes.length,
      unplaced: nodes.filter(node => !node.dataset.silos).map(node => `L${node.dataset.layer}/E${node.dataset.expert}`),
    })),
    seen => seen.count === expectedCells && seen.unplaced.length === 0);
  const events = await page.locator(testId('event-row')).count();
  return { silos, cells: cells.count, events };
}

// Records the output length at every DOM mutation until the status reads "done" or "error: …".
function watchStream([outputSelector, statusSelector, timeoutMs]) {
  const output = document.querySelector(outputSelector);
  const status = document.querySelector(statusSelector);
  return new Promise((resolve, reject) => {
    const lengths = [];
    const finished = () => /^(done|error:)/.test(status.textContent.trim());
    const observer = new MutationObserver(() => {
      const length = output.textContent.length;
      if (!finished() && length > (lengths.at(-1) ?? 0)) lengths.push(length);
      if (finished()) {
        observer.disconnect();
        clearTimeout(timer);
        resolve({ status: status.textContent.trim(), lengths });
      }
    });
    const timer = setTimeout(() => {
      observer.disconnect();
      reject(new Error(`no "done" after ${timeoutMs / 1000} s; status "${status.textContent.trim()}", output lengths ${JSON.stringify(lengths)}`));
    }, timeoutMs);
    observer.observe(output, { childList: true, characterData: true, subtree: true });
    observer.observe(status, { childList: true, characterData: true, subtree: true });
  });
}

async function checkPlayground(page) {
  await waitFor('the playground model list should fill from /v1/models',
    () => page.locator('#pg-model option').count(), count => count > 0);
  await page.locator(testId('playground-prompt')).fill(PROMPT);
  const watching = page.evaluate(watchStream, [testId('playground-output'), testId('playground-status'), STEP_MS])
    .catch(error => ({ error }));
  await page.locator(testId('playground-send')).click();
  const seen = await watching;
  if (seen.error) throw new Error(`playground: ${seen.error.message}`);
  if (seen.status !== 'done') throw new Error(`playground ended with "${seen.status}"`);
  const output = await page.locator(testId('playground-output')).textContent();
  if (!output.trim()) throw new Error('playground: the stream finished but the output is empty');
  if (seen.lengths.length < 2) {
    throw new Error(`playground: the output grew in ${seen.lengths.length} step(s) before "done"; streaming needs at least 2 (lengths ${JSON.stringify(seen.lengths)})`);
  }
  return { output, growth_steps: seen.lengths.length };
}

async function run(page, options, errors) {
  page.on('console', message => {
    // A failed poll of /api/mesh (a busy machine) is the page's own business: it shows "disconnected"
    // and recovers, and the checks below still need it live. Every other error fails the check.
    const failedPoll = message.text().startsWith('Failed to load resource') && message.location().url?.includes('/api/mesh');
    if (message.type() === 'error' && !failedPoll) errors.push(`console: ${message.text()}`);
    else if (failedPoll) console.error(`dashboard check: a poll of /api/mesh failed (${message.text()}); the page must recover`);
  });
  page.on('pageerror', error => errors.push(`page error: ${error.message}`));
  const response = await page.goto(options.baseUrl, { waitUntil: 'load', timeout: STEP_MS });
  if (!response?.ok()) throw new Error(`GET ${options.baseUrl} answered ${response?.status()}`);
  const mesh = await checkMesh(page, options);
  const playground = await checkPlayground(page);
  if (errors.length) throw new Error(`the page logged errors:\n  ${errors.join('\n  ')}`);
  return { ...mesh, ...playground };
}

async function main() {
  const options = parseArguments(process.argv.slice(2));
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS, timeout: STEP_MS });
  const overall = setTimeout(() => {
    console.error(`dashboard check: no result within ${OVERALL_MS / 1000} s`);
    process.exit(1);
  }, OVERALL_MS);
  const errors = [];
  try {
    const context = await browser.newContext({ viewport: { width: 1440, height: 1000 } });
    if (options.apiKey) {
      await context.addInitScript(([name, key]) => localStorage.setItem(name, key), [KEY_STORAGE, options.apiKey]);
    }
    const page = await context.newPage();
    try {
      const result = await run(page, options, errors);
      console.log(JSON.stringify(result));
    } finally {
      if (process.env.DASHBOARD_SCREENSHOT) {
        await page.evaluate(() => window.scrollTo(0, 0)); // else the sticky header lands mid-page
        await page.screenshot({ path: process.env.DASHBOARD_SCREENSHOT, fullPage: true });
      }
    }
  } finally {
    clearTimeout(overall);
    await browser.close();
  }
}

main().catch(error => {
  console.error(`dashboard check failed: ${error.message}`);
  process.exit(1);
});
