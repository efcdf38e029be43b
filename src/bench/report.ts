// `npm run bench -- report`: runs the standard matrix, each run in a fresh child process (so one
// run's heap does not skew the next), and rewrites docs/benchmarks.md with the machine, date,
// commit, command lines, medians, ratios and the targets of issue #5, plus SVG charts of cost
// against N. Hand-written analysis lives in docs/benchmarks-notes.md and is included verbatim.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, totalmem, type as osType, release } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { EngineEvent, EngineResult } from './engine.js';
import type { NetworkResult } from './network.js';
import type { EnginePolicy } from './workload.js';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, '..', '..', '..');
const mainScript = join(here, 'main.js');

interface EngineRun { policy: EnginePolicy; nodes: number }
interface NetworkRun { policy: EnginePolicy; nodes: number; churn: number; duration: number }

const FULL_MATRIX: { engine: EngineRun[]; network: NetworkRun[] } = {
  engine: [
    { policy: 'fullmesh', nodes: 1_000 }, { policy: 'fullmesh', nodes: 5_000 }, { policy: 'fullmesh', nodes: 10_000 },
    { policy: 'members', nodes: 1_000 }, { policy: 'members', nodes: 5_000 }, { policy: 'members', nodes: 10_000 },
    { policy: 'segmented', nodes: 5_000 }, { policy: 'segmented', nodes: 20_000 }, { policy: 'segmented', nodes: 50_000 },
    { policy: 'segmented', nodes: 100_000 },
  ],
  network: [
    { policy: 'fullmesh', nodes: 2_000, churn: 10, duration: 20 },
    { policy: 'segmented', nodes: 10_000, churn: 10, duration: 20 },
  ],
};

const QUICK_MATRIX: typeof FULL_MATRIX = {
  engine: [
    { policy: 'fullmesh', nodes: 500 }, { policy: 'fullmesh', nodes: 2_000 },
    { policy: 'members', nodes: 500 }, { policy: 'members', nodes: 2_000 },
    { policy: 'segmented', nodes: 2_000 }, { policy: 'segmented', nodes: 5_000 },
  ],
  network: [{ policy: 'fullmesh', nodes: 200, churn: 10, duration: 5 }],
};

function commandOf(args: readonly string[]): string {
  return `npm run bench -- ${args.join(' ')}`;
}

/** Runs one scenario in a child process and returns the JSON object on its last line. */
async function runChild<T>(args: readonly string[], progress: (line: string) => void): Promise<T> {
  progress(commandOf(args));
  const child = spawn(process.execPath, ['--expose-gc', '--max-old-space-size=6144', '--enable-source-maps', mainScript, ...args, '--json'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => { out += chunk.toString(); });
  const code = await new Promise<number | null>((r) => child.once('exit', r));
  if (code !== 0) throw new Error(`${commandOf(args)} exited with code ${code}`);
  const last = out.trim().split('\n').pop()!;
  return JSON.parse(last) as T;
}

export async function writeReport(options: { quick: boolean; progress: (line: string) => void }): Promise<void> {
  const matrix = options.quick ? QUICK_MATRIX : FULL_MATRIX;
  const engine: Array<{ args: string[]; result: EngineResult }> = [];
  for (const run of matrix.engine) {
    const args = ['engine', '--policy', run.policy, '--nodes', String(run.nodes)];
    engine.push({ args, result: await runChild<EngineResult>(args, options.progress) });
  }
  const policy = await runChild<{ cases: PolicyCase[] }>(['policy'], options.progress);
  const network: Array<{ args: string[]; result: NetworkResult }> = [];
  for (const run of matrix.network) {
    const args = ['network', '--policy', run.policy, '--nodes', String(run.nodes), '--churn', String(run.churn), '--duration', String(run.duration)];
    network.push({ args, result: await runChild<NetworkResult>(args, options.progress) });
  }
  const docs = join(repoRoot, 'docs');
  await mkdir(join(docs, 'benchmarks'), { recursive: true });
  for (const event of ['endpoint', 'join'] as const) {
    await writeFile(join(docs, 'benchmarks', `engine-${event}.svg`), chart(engine.map((e) => e.result), event));
  }
  await writeFile(join(docs, 'benchmarks.md'), markdown(engine, network, policy.cases, options.quick));
  options.progress('wrote docs/benchmarks.md and docs/benchmarks/*.svg');
}

function machine(): string {
  const cpu = cpus();
  return `${cpu[0]?.model ?? 'unknown CPU'}, ${cpu.length} cores, ${Math.round(totalmem() / 1073741824)} GiB RAM, ${osType()} ${release()}, Node.js ${process.version}`;
}

function commit(): string {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: repoRoot }).toString().trim();
  } catch {
    return 'unknown';
  }
}

function us(value: number): string {
  return value >= 1000 ? `${(value / 1000).toFixed(2)} ms` : `${Math.round(value)} µs`;
}

const EVENTS: readonly EngineEvent[] = ['endpoint', 'join', 'leave', 'retag', 'route', 'policy_edit'];

interface PolicyCase {
  name: string;
  policy: string;
  nodes: number;
  rules: number;
  classes: number;
  compile_ms: number;
  build_ms: number;
  cpu_ms: number;
  rss_mb: number;
}

function markdown(engine: Array<{ args: string[]; result: EngineResult }>, network: Array<{ args: string[]; result: NetworkResult }>, policyCases: readonly PolicyCase[], quick: boolean): string {
  const lines: string[] = [];
  lines.push('# Benchmarks', '');
  lines.push('Generated by `npm run bench -- report' + (quick ? ' --quick' : '') + '`; every row below is one command you can rerun.', '');
  lines.push(`- Machine: ${machine()}`);
  lines.push(`- Date: ${new Date().toISOString().slice(0, 10)}`);
  lines.push(`- Commit: ${commit()}`, '');
  lines.push('## Engine (in process, no network)', '');
  lines.push('Time from the state command until every recipient\'s frame is compressed, framed and handed to its session; median and p99 over repeated events. Recipients and bytes are medians per event.', '');
  lines.push('| policy | nodes | build | RSS | ' + EVENTS.map((e) => `${e} median (p99) / recipients / bytes`).join(' | ') + ' |');
  lines.push('|---|--:|--:|--:|' + EVENTS.map(() => '--:').join('|') + '|');
  for (const { result: r } of engine) {
    const cells = EVENTS.map((e) => {
      const s = r.events[e];
      return `${us(s.median_us)} (${us(s.p99_us)}) / ${s.recipients} / ${s.bytes}`;
    });
    lines.push(`| ${r.policy} | ${r.nodes} | ${Math.round(r.build_ms)} ms | ${r.rss_mb} MB | ${cells.join(' | ')} |`);
  }
  lines.push('', 'Commands:', '');
  for (const { args } of engine) lines.push(`    ${commandOf(args)}`);
  lines.push('', '![endpoint change median against N](benchmarks/engine-endpoint.svg)', '', '![join median against N](benchmarks/engine-join.svg)', '');

  lines.push('### Ratios', '');
  for (const policy of ['fullmesh', 'members', 'segmented'] as const) {
    const runs = engine.map((e) => e.result).filter((r) => r.policy === policy).sort((a, b) => a.nodes - b.nodes);
    if (runs.length < 2) continue;
    const small = runs[0]!;
    const big = runs[runs.length - 1]!;
    const ratio = (e: EngineEvent) => (small.events[e].median_us > 0 ? (big.events[e].median_us / small.events[e].median_us).toFixed(2) : 'n/a');
    lines.push(`- ${policy}: N x${(big.nodes / small.nodes).toFixed(0)} (${small.nodes} -> ${big.nodes}): endpoint median x${ratio('endpoint')}, join x${ratio('join')}, leave x${ratio('leave')}, retag x${ratio('retag')}; recipients of an endpoint change ${small.events.endpoint.recipients} -> ${big.events.endpoint.recipients}.`);
  }
  lines.push('');

  lines.push('## Policy compile (issue #4)', '');
  lines.push('Parsing and compiling the policy text, then binding it to the tailnet (identity classes, selector resolution, visibility, per-class filter templates). `npm run bench -- policy`.', '');
  lines.push('| case | nodes | rules | classes | compile | build | CPU | RSS |');
  lines.push('|---|--:|--:|--:|--:|--:|--:|--:|');
  for (const c of policyCases) lines.push(`| ${c.name} | ${c.nodes} | ${c.rules} | ${c.classes} | ${c.compile_ms} ms | ${c.build_ms} ms | ${c.cpu_ms} ms | ${c.rss_mb} MB |`);
  lines.push('');

  lines.push('## Network (real clients on loopback, server in its own process)', '');
  lines.push('| policy | nodes | storm (server CPU) | latency p50 | latency p99 | server CPU (churn) | server CPU per frame | clients CPU (churn) | server RSS (per node) | idle CPU | changes (undelivered) |');
  lines.push('|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|');
  for (const { result: r } of network) {
    lines.push(`| ${r.policy} | ${r.nodes} | ${r.storm_s} s (${r.storm_cpu_pct}%) | ${r.latency_p50_ms} ms | ${r.latency_p99_ms} ms | ${r.server_cpu_pct}% of a core | ${r.server_us_per_frame} µs | ${r.client_cpu_pct}% | ${r.server_rss_mb} MB (${r.server_kb_per_node} KB) | ${r.idle_cpu_pct}% | ${r.changes} (${r.undelivered}) |`);
  }
  lines.push('', 'Commands:', '');
  for (const { args } of network) lines.push(`    ${commandOf(args)}`);
  lines.push('');

  lines.push('## Targets', '');
  const find = (policy: EnginePolicy, nodes: number) => engine.map((e) => e.result).find((r) => r.policy === policy && r.nodes === nodes);
  const net = (policy: EnginePolicy, nodes: number) => network.map((e) => e.result).find((r) => r.policy === policy && r.nodes === nodes);
  const check = (label: string, value: number | undefined, limit: number, unit: string) =>
    lines.push(`- ${label}: ${value === undefined ? 'not run' : `${value}${unit}`} (target ≤ ${limit}${unit}) ${value === undefined ? '' : value <= limit ? 'met' : '**not met**'}`);
  const compile50 = policyCases.find((c) => c.policy === 'segmented' && c.nodes >= 50_000);
  check('policy compile, segmented 50,000 (issue #4): compile + build', compile50 && Math.round(compile50.compile_ms + compile50.build_ms), 2000, ' ms');
  const seg50 = find('segmented', 50_000);
  const seg5 = find('segmented', 5_000);
  check('engine segmented 50,000: build', seg50 && Math.round(seg50.build_ms), 3000, ' ms');
  check('engine segmented 50,000: RSS', seg50?.rss_mb, 1536, ' MB');
  check('engine segmented 50,000: endpoint median', seg50 && Math.round(seg50.events.endpoint.median_us), 1000, ' µs');
  if (seg50 && seg5) check('engine segmented: endpoint median 50,000 / 5,000', Math.round((seg50.events.endpoint.median_us / seg5.events.endpoint.median_us) * 100) / 100, 1.5, 'x');
  const full10 = find('fullmesh', 10_000);
  check('engine fullmesh 10,000: endpoint median', full10 && Math.round(full10.events.endpoint.median_us / 100) / 10, 30, ' ms');
  check('engine fullmesh 10,000: join median', full10 && Math.round(full10.events.join.median_us / 100) / 10, 50, ' ms');
  const mem10 = find('members', 10_000);
  check('engine members 10,000: join median', mem10 && Math.round(mem10.events.join.median_us / 100) / 10, 100, ' ms');
  const nf = net('fullmesh', 2_000);
  check('network fullmesh 2,000: storm', nf?.storm_s, 30, ' s');
  check('network fullmesh 2,000: p99 latency at 10 changes/s', nf?.latency_p99_ms, 500, ' ms');
  check('network fullmesh 2,000: server CPU at 10 changes/s', nf?.server_cpu_pct, 50, '%');
  const ns = net('segmented', 10_000);
  check('network segmented 10,000: storm', ns?.storm_s, 60, ' s');
  check('network segmented 10,000: idle server CPU', ns?.idle_cpu_pct, 5, '%');
  // Issue 15.
  const seg100 = find('segmented', 100_000);
  check('engine segmented 100,000: build', seg100 && Math.round(seg100.build_ms), 2000, ' ms');
  check('engine segmented 100,000: RSS', seg100?.rss_mb, 1024, ' MB');
  check('engine segmented 100,000: endpoint median', seg100 && Math.round(seg100.events.endpoint.median_us), 100, ' µs');
  if (seg100 && seg5) check('engine segmented: endpoint median 100,000 / 5,000', Math.round((seg100.events.endpoint.median_us / seg5.events.endpoint.median_us) * 100) / 100, 1.5, 'x');
  check('engine segmented 100,000: policy edit median', seg100 && Math.round(seg100.events.policy_edit.median_us / 1000), 1000, ' ms');
  check('network fullmesh 2,000: server CPU per map frame (issue 15)', nf?.server_us_per_frame, 15, ' µs');
  check('network fullmesh 2,000: p99 latency at 10 changes/s (issue 15)', nf?.latency_p99_ms, 250, ' ms');
  check('network fullmesh 2,000: storm (issue 15)', nf?.storm_s, 8, ' s');
  check('network segmented 10,000: p99 latency (issue 15)', ns?.latency_p99_ms, 400, ' ms');
  check('network segmented 10,000: server memory per connected node', ns?.server_kb_per_node, 40, ' KB');
  lines.push('');

  const notes = join(repoRoot, 'docs', 'benchmarks-notes.md');
  if (existsSync(notes)) lines.push(readFileSync(notes, 'utf8').trim(), '');
  return lines.join('\n');
}

/** A small log-log line chart of one event's median against N, one line per policy. */
function chart(results: readonly EngineResult[], event: EngineEvent): string {
  const width = 560;
  const height = 320;
  const pad = { left: 70, right: 130, top: 30, bottom: 45 };
  const points = results.filter((r) => r.events[event].median_us > 0);
  if (points.length === 0) return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"><text x="20" y="40">no data</text></svg>\n`;
  const xs = points.map((r) => Math.log10(r.nodes));
  const ys = points.map((r) => Math.log10(r.events[event].median_us));
  const [x0, x1] = [Math.min(...xs) - 0.1, Math.max(...xs) + 0.1];
  const [y0, y1] = [Math.floor(Math.min(...ys)), Math.ceil(Math.max(...ys))];
  const sx = (v: number) => pad.left + ((v - x0) / (x1 - x0)) * (width - pad.left - pad.right);
  const sy = (v: number) => height - pad.bottom - ((v - y0) / Math.max(1e-9, y1 - y0)) * (height - pad.top - pad.bottom);
  const colors: Record<EnginePolicy, string> = { fullmesh: '#d62728', members: '#1f77b4', segmented: '#2ca02c' };
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`);
  parts.push(`<text x="${pad.left}" y="18" font-size="14">${event} event: median time against N (log-log)</text>`);
  for (let d = y0; d <= y1; d++) {
    parts.push(`<line x1="${pad.left}" x2="${width - pad.right}" y1="${sy(d)}" y2="${sy(d)}" stroke="#ddd"/>`);
    parts.push(`<text x="${pad.left - 8}" y="${sy(d) + 4}" text-anchor="end">${us(10 ** d)}</text>`);
  }
  for (const r of points) {
    parts.push(`<text x="${sx(Math.log10(r.nodes))}" y="${height - pad.bottom + 18}" text-anchor="middle">${r.nodes}</text>`);
  }
  parts.push(`<text x="${(pad.left + width - pad.right) / 2}" y="${height - 8}" text-anchor="middle">nodes</text>`);
  let legend = 0;
  for (const policy of ['fullmesh', 'members', 'segmented'] as const) {
    const series = points.filter((r) => r.policy === policy).sort((a, b) => a.nodes - b.nodes);
    if (series.length === 0) continue;
    const path = series.map((r, i) => `${i === 0 ? 'M' : 'L'}${sx(Math.log10(r.nodes)).toFixed(1)},${sy(Math.log10(r.events[event].median_us)).toFixed(1)}`).join(' ');
    parts.push(`<path d="${path}" fill="none" stroke="${colors[policy]}" stroke-width="2"/>`);
    for (const r of series) parts.push(`<circle cx="${sx(Math.log10(r.nodes)).toFixed(1)}" cy="${sy(Math.log10(r.events[event].median_us)).toFixed(1)}" r="3" fill="${colors[policy]}"/>`);
    parts.push(`<text x="${width - pad.right + 10}" y="${pad.top + 20 + legend * 18}" fill="${colors[policy]}">${policy}</text>`);
    legend++;
  }
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
