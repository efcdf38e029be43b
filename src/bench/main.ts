// `npm run bench -- <scenario> [options]`: human-readable by default; with --json the last line
// of output is one JSON object. Scenarios:
//   engine  --policy fullmesh|members|segmented --nodes N [--seed S] [--capver V] [--cold MIB]
//   network --policy ... --nodes N [--churn R] [--duration S]
//   network --target URL --authkey KEY --nodes N [--server-pid PID] [--churn R] [--duration S]
//           (any running TS2021 server; its policy must let every node see every other)
//   policy  [case]   (policy compile cases)
//   ha      --policy ... --nodes N --instances K [--churn R] [--duration S]  (docs/ha.md)
//   hostile --policy ... --nodes N [--stalled S] [--handshakes H] (network, quiet and under attack)
//   soak    --policy ... [--nodes N] --minutes M [--churn R] (2,000 nodes by default; docs/benchmarks.md)
//   console --devices N [--loads L]  (the web console in Chromium: machines page load and scroll)
//   report  [--quick] runs the standard matrix and rewrites docs/benchmarks.md and its charts
import { parseArgs } from 'node:util';
import { ENGINE_EVENTS, runEngine, type EventStats } from './engine.js';
import { runHaBench } from './ha.js';
import { runNetwork } from './network.js';
import { runTargetNetwork } from './network-target.js';
import { runHostile } from './hostile.js';
import { runSoak } from './soak.js';
import { writeReport } from './report.js';
import { ENGINE_POLICIES, type EnginePolicy } from './workload.js';

const USAGE = `usage: npm run bench -- <scenario> [options]
  engine  --policy fullmesh|members|segmented --nodes N [--seed S] [--capver V] [--cold MIB] [--json]
          (--cold: also time endpoint events that start after sweeping MIB MiB through the caches)
  network --policy fullmesh|members|segmented --nodes N [--churn R] [--duration S] [--json]
  network --target URL --authkey KEY --nodes N [--server-pid PID] [--churn R] [--duration S]
          [--idle S] [--concurrency C] [--join-timeout S] [--json]
  hostile --policy fullmesh|members|segmented --nodes N [--stalled S] [--handshakes H] [--churn R] [--duration S] [--json]
  policy  [case] [--json]
  ha      --policy fullmesh|members|segmented --nodes N --instances K [--churn R] [--duration S] [--json]
  soak    --policy fullmesh|members|segmented [--nodes N] --minutes M [--churn R] [--round S] [--json]
  console [--devices N] [--loads L] [--json]   (default 10000 devices, 5 loads)
  report  [--quick]`;

function fail(message: string): never {
  process.stderr.write(`bench: ${message}\n${USAGE}\n`);
  process.exit(2);
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      policy: { type: 'string', default: 'segmented' },
      nodes: { type: 'string' },
      minutes: { type: 'string', default: '5' },
      round: { type: 'string', default: '60' },
      seed: { type: 'string', default: '42' },
      capver: { type: 'string' },
      cold: { type: 'string' },
      churn: { type: 'string' },
      target: { type: 'string' },
      authkey: { type: 'string' },
      'server-pid': { type: 'string' },
      idle: { type: 'string' },
      concurrency: { type: 'string' },
      'join-timeout': { type: 'string' },
      instances: { type: 'string', default: '3' },
      duration: { type: 'string', default: '20' },
      stalled: { type: 'string', default: '1000' },
      handshakes: { type: 'string', default: '1000' },
      devices: { type: 'string', default: '10000' },
      loads: { type: 'string', default: '5' },
      json: { type: 'boolean', default: false },
      quick: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const scenario = positionals[0];
  if (values.help || scenario === undefined) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const policy = values.policy as EnginePolicy;
  if (!ENGINE_POLICIES.includes(policy)) fail(`--policy: "${values.policy}" is not one of ${ENGINE_POLICIES.join(', ')}`);
  const nodesText = values.nodes ?? (scenario === 'soak' ? '2000' : '1000');
  const nodes = Number(nodesText);
  if (!Number.isInteger(nodes) || nodes < 2) fail(`--nodes: "${nodesText}" is not an integer of at least 2`);
  const seed = Number(values.seed);
  const say = (line: string) => { if (!values.json) process.stdout.write(`${line}\n`); };
  const progress = (line: string) => process.stderr.write(`  ${line}\n`);

  switch (scenario) {
    case 'engine': {
      const result = await runEngine({
        policy, nodes, seed, progress,
        ...(values.capver !== undefined ? { capVersion: Number(values.capver) } : {}),
        ...(values.cold !== undefined ? { coldSweepMb: positiveNumber('cold', values.cold) } : {}),
      });
      say(`engine ${policy} n=${result.nodes}: build ${result.build_ms} ms, rss ${result.rss_mb} MB (load ${result.load_ms} ms)`);
      const row = (event: string, s: EventStats) =>
        say(`  ${event.padEnd(12)} median ${fmtUs(s.median_us).padStart(10)}  p99 ${fmtUs(s.p99_us).padStart(10)}  recipients ${String(s.recipients).padStart(6)}  bytes ${s.bytes}`);
      for (const event of ENGINE_EVENTS) row(event, result.events[event]);
      if (result.endpoint_cold !== undefined) row('endpoint_cold', result.endpoint_cold);
      if (values.json) process.stdout.write(`${JSON.stringify(result)}\n`);
      return;
    }
    case 'network': {
      if (values.target !== undefined) {
        if (values.authkey === undefined || values.authkey === '') fail('--target needs --authkey (a reusable pre-auth key of that server)');
        const result = await runTargetNetwork({
          target: values.target, authKey: values.authkey, nodes, seed, progress,
          churnPerSecond: positiveNumber('churn', values.churn ?? '5'),
          durationS: positiveNumber('duration', values.duration),
          ...(values['server-pid'] !== undefined ? { serverPid: positiveNumber('server-pid', values['server-pid']) } : {}),
          ...(values.idle !== undefined ? { idleS: positiveNumber('idle', values.idle) } : {}),
          ...(values.concurrency !== undefined ? { concurrency: positiveNumber('concurrency', values.concurrency) } : {}),
          ...(values['join-timeout'] !== undefined ? { joinTimeoutS: positiveNumber('join-timeout', values['join-timeout']) } : {}),
        });
        const { join, churn, idle } = result;
        say(`network --target ${result.target} n=${result.nodes}: join ${join.converged ? '' : 'NOT converged, '}${join.wall_s} s${join.server_cpu_s === null ? '' : ` (server cpu ${join.server_cpu_s} s)`}, ${join.complete}/${result.nodes} hold all ${join.expected_peers} peers`);
        if (churn !== null) say(`  churn: ${churn.changes} changes, p50 ${churn.p50_ms} ms, p99 ${churn.p99_ms} ms, undelivered ${churn.undelivered}, server cpu ${churn.server_cpu_pct ?? '?'}% (${churn.server_us_per_frame ?? '?'} µs per frame)`);
        if (idle !== null) say(`  idle: server cpu ${idle.server_cpu_pct ?? '?'}%, rss ${idle.server_rss_mb ?? '?'} MB`);
        if (result.failures.count > 0) say(`  failures: ${result.failures.count}: ${result.failures.first.join('; ')}`);
        if (values.json) process.stdout.write(`${JSON.stringify(result)}\n`);
        return;
      }
      const result = await runNetwork({ policy, nodes, seed, churnPerSecond: positiveNumber('churn', values.churn ?? '10'), durationS: positiveNumber('duration', values.duration), progress });
      say(`network ${policy} n=${result.nodes}: storm ${result.storm_s} s, latency p50 ${result.latency_p50_ms} ms p99 ${result.latency_p99_ms} ms, server cpu ${result.server_cpu_pct}%, rss ${result.server_rss_mb} MB, idle cpu ${result.idle_cpu_pct}%, ${result.server_us_per_frame} µs per frame, ${result.server_kb_per_node} KB per node`);
      if (values.json) process.stdout.write(`${JSON.stringify(result)}\n`);
      return;
    }
    case 'ha': {
      const result = await runHaBench({ policy, nodes, instances: positiveNumber('instances', values.instances), seed, churnPerSecond: positiveNumber('churn', values.churn ?? '10'), durationS: positiveNumber('duration', values.duration), progress });
      say(`ha ${policy} ${nodes} nodes on ${result.instances} instance(s): storm ${result.storm_s} s, latency p50 ${result.latency_p50_ms} ms p99 ${result.latency_p99_ms} ms, ${result.undelivered} of ${result.changes} changes undelivered`);
      if (values.json) process.stdout.write(`${JSON.stringify(result)}\n`);
      break;
    }
    case 'hostile': {
      const result = await runHostile({
        policy, nodes, seed, churnPerSecond: positiveNumber('churn', values.churn ?? '10'), durationS: positiveNumber('duration', values.duration), progress,
        stalled: Number(values.stalled), handshakes: Number(values.handshakes),
      });
      for (const [label, r] of [['quiet', result.quiet], ['hostile', result.hostile]] as const) {
        say(`${label.padEnd(8)} latency p50 ${r.latency_p50_ms} ms p99 ${r.latency_p99_ms} ms, undelivered ${r.undelivered}, server cpu ${r.server_cpu_pct}%, rss during churn ${r.server_rss_churn_mb} MB`);
      }
      say(`p99 ratio ${result.p99_ratio}x; strangers: ${JSON.stringify(result.hostile.background ?? {})}`);
      if (values.json) process.stdout.write(`${JSON.stringify(result)}\n`);
      return;
    }
    case 'soak': {
      const result = await runSoak({
        policy, nodes, seed, progress,
        minutes: positiveNumber('minutes', values.minutes),
        roundS: positiveNumber('round', values.round),
        churnPerSecond: positiveNumber('churn', values.churn ?? '5'),
      });
      say(`soak ${policy} n=${result.nodes}, ${result.rounds.length} round(s) of ${result.round_s} s: after ${result.warmup_rounds} warm-up round(s) heap ${result.heap_after_warmup_mb} MB, max drift ${result.heap_max_drift_pct}%, trend ${result.heap_trend_pct}% (rss ${result.rss_after_warmup_mb} MB, ${result.rss_max_drift_pct}%, trend ${result.rss_trend_pct}%), undelivered ${result.undelivered}, log errors ${result.log_errors} (warnings ${result.log_warnings}), client failures ${result.client_failures}`);
      for (const line of result.first_log_errors) say(`  log error: ${line}`);
      for (const line of result.first_client_failures) say(`  client failure: ${line}`);
      if (values.json) process.stdout.write(`${JSON.stringify(result)}\n`);
      return;
    }
    case 'policy': {
      const { policyBenchCases } = await import('../policy/policy.bench.js');
      const only = positionals[1];
      const results = [];
      for (const c of policyBenchCases) {
        if (only !== undefined && !c.name.includes(only)) continue;
        const r = c.run();
        results.push({ name: c.name, ...r });
        say(`${c.name}: compile ${r.compile_ms} ms, build ${r.build_ms} ms, classes ${r.classes}, rss ${r.rss_mb} MB`);
      }
      if (values.json) process.stdout.write(`${JSON.stringify({ scenario: 'policy', cases: results })}\n`);
      return;
    }
    case 'console': {
      const { runConsoleBench } = await import('./console.js');
      const result = await runConsoleBench({ devices: positiveNumber('devices', values.devices), loads: positiveNumber('loads', values.loads), seed, progress });
      say(`console ${result.devices} devices, ${result.loads} loads: rows painted median ${result.rows_visible_median_ms} ms (GET /nodes ${result.nodes_request_median_ms} ms, ${result.nodes_response_kb} KB), scroll to the last device median ${result.scroll_to_end_median_ms} ms, at most ${result.rendered_rows_max} rows in the page, scrolling frames median ${result.scroll_frame_median_ms} ms p95 ${result.scroll_frame_p95_ms} ms`);
      say(`  loads: ${result.rows_visible_ms.join(', ')} ms; machine ${result.machine.cpus} x ${result.machine.model}, load average ${result.machine.load_before.join(' ')} -> ${result.machine.load_after.join(' ')}`);
      if (values.json) process.stdout.write(`${JSON.stringify(result)}\n`);
      return;
    }
    case 'report':
      await writeReport({ quick: values.quick, progress });
      return;
    default:
      fail(`unknown scenario "${scenario}"`);
  }
}

function positiveNumber(option: string, text: string): number {
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0) fail(`--${option}: "${text}" is not a positive number`);
  return value;
}

function fmtUs(us: number): string {
  return us >= 1000 ? `${(us / 1000).toFixed(2)} ms` : `${us.toFixed(0)} µs`;
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
