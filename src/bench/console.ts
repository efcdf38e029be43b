// The web console with a big tailnet (`npm run bench -- console --devices 10000`): a real
// Headway on a loopback port with N devices (written through the store in one transaction, the
// fastest honest path), the console opened in Debian's Chromium (playwright-core), and two
// numbers per load: navigation to the first machine rows painted, and scrolling to the end
// until the last device is painted. Also: how many rows the virtualised list keeps in the page,
// and the frame intervals while scrolling through the whole list (smoothness).
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createApiHandler } from '../api/index.js';
import { sendTestRequest } from '../api/testing.js';
import { configFromObject, type Config } from '../config/index.js';
import { silentLogger } from '../log/index.js';
import { startServer } from '../server/index.js';
import { loopbackServerConfig } from '../server/testing.js';
import { openStore } from '../store/index.js';
import { storeWorkload } from './seed.js';
import { engineWorkload, fakeKeyHex, seededRandom } from './workload.js';
import type { MachinePublicKey, NodePublicKey } from '../key/index.js';

export const CHROMIUM_PATH = process.env['HEADWAY_CHROMIUM'] ?? '/usr/bin/chromium';

/**
 * Writes `count` devices (and their users, the members workload of the engine benchmark) into
 * the store `config` names, in one transaction. Every tenth device advertises a subnet route.
 */
export async function seedFleet(config: Config, count: number, seed = 42): Promise<{ names: string[] }> {
  const workload = engineWorkload('members', count, seed);
  const random = seededRandom(seed);
  const store = await openStore(config);
  try {
    await storeWorkload(store, workload, (_index, n) => {
      const routes = n.id % 10 === 0 ? [`10.${(n.id >> 8) & 255}.${n.id & 255}.0/24`] : [];
      return {
        machineKey: `mkey:${fakeKeyHex(random)}` as MachinePublicKey,
        nodeKey: `nodekey:${fakeKeyHex(random)}` as NodePublicKey,
        discoKey: null,
        advertisedRoutes: routes,
        endpoints: [`203.0.113.${n.id % 250}:41641`],
        hostinfo: { Hostname: n.name, OS: 'linux', IPNVersion: '1.78.3-t1234', ...(routes.length > 0 ? { RoutableIPs: routes } : {}) },
      };
    }, { policy: false });
    return { names: workload.nodes.map((n) => n.name) };
  } finally {
    await store.close();
  }
}

export interface ConsoleBenchResult {
  scenario: 'console';
  devices: number;
  loads: number;
  seed_ms: number;
  /** Navigation start to the first machine rows painted, per load. */
  rows_visible_ms: number[];
  rows_visible_median_ms: number;
  /** GET /api/v1/nodes as the browser saw it (request to last byte), per load. */
  nodes_request_ms: number[];
  nodes_request_median_ms: number;
  nodes_response_kb: number;
  /** Jump to the end of the list until the last device's row is painted, per load. */
  scroll_to_end_ms: number[];
  scroll_to_end_median_ms: number;
  /** Rows in the page at once (the list is virtualised): at most this many. */
  rendered_rows_max: number;
  /** Scrolling through the whole list 800 px per frame: frame intervals. */
  scroll_frames: number;
  scroll_frame_median_ms: number;
  scroll_frame_p95_ms: number;
  machine: { cpus: number; model: string; load_before: number[]; load_after: number[] };
}

interface PageLoad { timeline: string[]; rowsAt: number; nodesMs: number; nodesBytes: number; scrollMs: number; maxRows: number; frames: number[] }

export async function runConsoleBench(options: { devices: number; loads: number; seed?: number; progress?: (line: string) => void }): Promise<ConsoleBenchResult> {
  if (!existsSync(CHROMIUM_PATH)) throw new Error(`no Chromium at ${CHROMIUM_PATH} (apt-get install chromium, or set HEADWAY_CHROMIUM)`);
  const progress = options.progress ?? (() => undefined);
  const loadBefore = loadavg().map((l) => Math.round(l * 100) / 100);
  const dir = await mkdtemp(join(tmpdir(), 'hw-bench-console-'));
  const config = configFromObject(loopbackServerConfig(dir), { source: 'console bench', baseDir: dir });
  const seedStart = performance.now();
  await seedFleet(config, options.devices, options.seed ?? 42);
  const seedMs = performance.now() - seedStart;
  progress(`seeded ${options.devices} devices in ${Math.round(seedMs)} ms`);
  const server = await startServer(config, { logger: silentLogger(), api: (deps) => createApiHandler(deps) });
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({
    executablePath: CHROMIUM_PATH, headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const loads: PageLoad[] = [];
  try {
    for (let i = 0; i < options.loads; i++) {
      const link = await sendTestRequest({ url: server.url, socketPath: server.socketPath }, 'POST', '/api/v1/console/login-links', { transport: 'unix', body: {} });
      if (link.status !== 201) throw new Error(`cannot create a sign-in link: ${link.text}`);
      const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
      try {
        const page = await context.newPage();
        // Signs in (the cookie), then the measured navigation: a fresh document each time.
        await page.goto(`${server.url}${(link.json as { path: string }).path}`);
        await page.waitForSelector('[data-machine]', { timeout: 60_000 });
        await page.addInitScript(ROWS_PAINTED_PROBE);
        // A reload: a new document in the same renderer (as a user pressing F5, or opening the
        // console in a tab of a browser already running).
        await page.reload();
        // (waitForFunction would evaluate a string in the page, which the console's CSP forbids.)
        await page.waitForSelector('html[data-hw-rows-painted]', { state: 'attached', timeout: 60_000 });
        const load = await page.evaluate(`(${MEASURE_IN_PAGE})(${options.devices})`) as PageLoad;
        loads.push(load);
        if (i === 0) progress(`first load: ${load.timeline.join('; ')}`);
        progress(`load ${i + 1}/${options.loads}: rows painted at ${Math.round(load.rowsAt)} ms (GET /nodes ${Math.round(load.nodesMs)} ms, ${Math.round(load.nodesBytes / 1024)} KB), scroll to end ${Math.round(load.scrollMs)} ms, ${load.maxRows} rows in the page`);
      } finally {
        await context.close();
      }
    }
  } finally {
    await browser.close().catch(() => undefined);
    await server.close();
    await rm(dir, { recursive: true, force: true });
  }
  const frames = loads.flatMap((l) => l.frames).sort((a, b) => a - b);
  const median = (values: number[]) => round([...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0);
  return {
    scenario: 'console',
    devices: options.devices,
    loads: loads.length,
    seed_ms: Math.round(seedMs),
    rows_visible_ms: loads.map((l) => round(l.rowsAt)),
    rows_visible_median_ms: median(loads.map((l) => l.rowsAt)),
    nodes_request_ms: loads.map((l) => round(l.nodesMs)),
    nodes_request_median_ms: median(loads.map((l) => l.nodesMs)),
    nodes_response_kb: Math.round((loads[0]?.nodesBytes ?? 0) / 1024),
    scroll_to_end_ms: loads.map((l) => round(l.scrollMs)),
    scroll_to_end_median_ms: median(loads.map((l) => l.scrollMs)),
    rendered_rows_max: Math.max(0, ...loads.map((l) => l.maxRows)),
    scroll_frames: frames.length,
    scroll_frame_median_ms: round(frames[Math.floor(frames.length / 2)] ?? 0),
    scroll_frame_p95_ms: round(frames[Math.floor(frames.length * 0.95)] ?? 0),
    machine: { cpus: cpus().length, model: cpus()[0]?.model ?? 'unknown', load_before: loadBefore, load_after: loadavg().map((l) => Math.round(l * 100) / 100) },
  };
}

const round = (ms: number) => Math.round(ms * 10) / 10;

/**
 * Runs in the page before its scripts: notes when the first machine row is in the document,
 * then the frame after it (painted), relative to the navigation's start.
 */
const ROWS_PAINTED_PROBE = `(() => {
  const Native = window.EventSource;
  window.EventSource = class extends Native {
    constructor(url, init) {
      const started = performance.now();
      super(url, init);
      this.addEventListener('open', () => { window.__hwStream = Math.round(started) + '-' + Math.round(performance.now()); }, { once: true });
    }
  };
  const observer = new MutationObserver(() => {
    if (document.querySelector('[data-machine]') === null) return;
    observer.disconnect();
    requestAnimationFrame(() => {
      window.__hwRowsPaintedAt = performance.now();
      document.documentElement.setAttribute('data-hw-rows-painted', '');
    });
  });
  observer.observe(document, { childList: true, subtree: true });
})();`;

/** In the page, after the rows are painted: the request timing, then scrolling. */
const MEASURE_IN_PAGE = `async (devices) => {
  const frame = () => new Promise((resolve) => requestAnimationFrame(resolve));
  const rowsAt = window.__hwRowsPaintedAt;
  const request = performance.getEntriesByType('resource').find((e) => e.name.includes('/api/v1/nodes?'));
  const body = document.querySelector('.vbody');
  const rowCount = () => document.querySelectorAll('[data-machine]').length;
  let maxRows = rowCount();
  // Jump to the end; wait for the last row (aria-rowindex: header 1, rows from 2) to paint.
  const lastIndex = String(devices + 1);
  const started = performance.now();
  body.scrollTop = body.scrollHeight;
  while (document.querySelector('[role=row][aria-rowindex="' + lastIndex + '"]') === null) {
    await frame();
    if (performance.now() - started > 30000) throw new Error('the last device never rendered');
  }
  await frame();
  const scrollMs = performance.now() - started;
  maxRows = Math.max(maxRows, rowCount());
  // Back to the top, then through the whole list 800 px a frame, timing each frame.
  body.scrollTop = 0;
  await frame();
  const frames = [];
  let last = await frame();
  while (body.scrollTop + body.clientHeight < body.scrollHeight - 1) {
    body.scrollTop += 800;
    const now = await frame();
    frames.push(now - last);
    last = now;
    maxRows = Math.max(maxRows, rowCount());
    if (frames.length > 5000) break;
  }
  const nav = performance.getEntriesByType('navigation')[0];
  const timeline = [
    'document ' + Math.round(nav.responseEnd) + ' domcontentloaded ' + Math.round(nav.domContentLoadedEventEnd) + ' events ' + window.__hwStream,
    ...performance.getEntriesByType('resource').map((e) => e.name.replace(location.origin, '') + ' ' + Math.round(e.startTime) + '-' + Math.round(e.responseEnd)),
  ];
  return { timeline, rowsAt, nodesMs: request ? request.responseEnd - request.requestStart : -1, nodesBytes: request ? request.encodedBodySize : -1, scrollMs, maxRows, frames };
}`;
