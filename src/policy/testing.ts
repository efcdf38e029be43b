// Test-only helpers for the policy part: loading the Tailscale SaaS conformance cases and
// comparing our output with what the service delivered. Production code never imports this.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { sharedVectorsDir } from '../util/testing.js';
import type { TailnetSettings } from './facts.js';
import { compileTopology, type CompileResult } from './offline.js';

export interface SaasCase {
  readonly id: string;
  readonly category: string;
  readonly description: string;
  readonly policy: string;
  readonly tailnet: { readonly dns?: unknown; readonly settings?: Readonly<Record<string, unknown>> };
  readonly rejected: boolean;
  readonly error_message?: string;
  readonly capture_error?: string;
  readonly topology: { readonly users: readonly { id: number; name: string; email: string }[]; readonly nodes: Readonly<Record<string, Readonly<Record<string, unknown>>>> };
  readonly expect: Readonly<Record<string, ExpectedNode>>;
  readonly file: string;
}

export interface ExpectedNode {
  readonly packet_filter: readonly unknown[];
  readonly ssh_rules: readonly unknown[];
  readonly self: Readonly<Record<string, unknown>>;
  readonly peers: readonly Readonly<Record<string, unknown>>[];
  readonly whois?: Readonly<Record<string, { CapMap?: unknown; Node?: { Created?: string; ComputedName?: string } }>>;
}

/**
 * Where the cases live: $HEADWAY_SAAS_VECTORS, else the shared vectors (../shared, or the
 * compressed copy in test/fixtures; see util/testing.ts).
 */
export function saasVectorsDir(): string | null {
  const env = process.env['HEADWAY_SAAS_VECTORS'];
  if (env !== undefined && env !== '') return existsSync(env) ? env : null;
  return join(sharedVectorsDir(), 'tailscale-saas');
}

export function loadSaasCases(dir: string): SaasCase[] {
  const out: SaasCase[] = [];
  const walk = (d: string): void => {
    for (const name of readdirSync(d).sort()) {
      const path = join(d, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (name.endsWith('.json')) out.push({ ...(JSON.parse(readFileSync(path, 'utf8')) as Omit<SaasCase, 'file'>), file: path });
    }
  };
  walk(dir);
  return out;
}

/**
 * When the service began sending `default-auto-update`. Every case captured before this day
 * (all its nodes registered earlier) received no such capability, whatever the setting; every
 * later one received it on every node. The day is read from the topology's `created` times, an
 * input: it dates the service the case ran against, not the case's outcome.
 */
export const AUTO_UPDATE_CAP_SINCE = Date.parse('2026-04-14T00:00:00Z');

/** Whether every node of the case registered before the service sent `default-auto-update`. */
export function capturedBeforeAutoUpdateCap(c: SaasCase): boolean {
  const created = Object.values(c.topology.nodes).map((n) => (typeof n['created'] === 'string' ? Date.parse(n['created']) : NaN));
  return created.length > 0 && created.every((t) => !Number.isNaN(t) && t < AUTO_UPDATE_CAP_SINCE);
}

/**
 * Settings the runner passes beside the case's own `tailnet` object: the name of the tailnet
 * the captures ran in, and, for captures from before the service sent `default-auto-update`,
 * that it was not sent.
 */
export function settingsOfCase(c: SaasCase): TailnetSettings {
  // Every case was captured in one tailnet, owned by odin@example.com, whose display name is
  // that login; cases whose topology lists no users still ran there.
  const base: TailnetSettings = { displayName: CAPTURE_TAILNET_OWNER };
  if (capturedBeforeAutoUpdateCap(c)) return { ...base, autoUpdate: undefined };
  return base;
}

const CAPTURE_TAILNET_OWNER = 'odin@example.com';

/**
 * The topology as `headway policy compile --topology` reads it: the case's `topology` with its
 * `tailnet` object under the key `tailnet`. Registration order (which router of a shared
 * prefix is primary) comes from each node's `created` time. Nothing is read from `expect`.
 */
export function topologyOfCase(c: SaasCase): unknown {
  return { ...c.topology, tailnet: c.tailnet };
}

export function compileCase(c: SaasCase): CompileResult {
  // Whether to ask for whois output is a question about what to print, not an input.
  const wantWhois = Object.values(c.expect).some((n) => n.whois !== undefined);
  return compileTopology(c.policy, topologyOfCase(c), { settings: settingsOfCase(c), whois: wantWhois, file: `${c.id}.hujson` });
}

// --- comparison -----------------------------------------------------------------------------

/** Values as compared: order-insensitive lists sorted, absent lists and empty lists equal. */
function sortedStrings(v: unknown): string[] {
  return Array.isArray(v) ? v.map(String).sort() : [];
}

function canonicalRule(rule: unknown): unknown {
  const r = rule as { SrcIPs?: unknown; DstPorts?: unknown[]; IPProto?: unknown; CapGrant?: { Dsts?: unknown; CapMap?: unknown }[] };
  const out: Record<string, unknown> = { SrcIPs: sortedStrings(r.SrcIPs) };
  if (r.DstPorts !== undefined) out['DstPorts'] = r.DstPorts.map((d) => JSON.stringify(d, Object.keys(d as object).sort())).sort();
  if (r.IPProto !== undefined) out['IPProto'] = r.IPProto;
  if (r.CapGrant !== undefined) out['CapGrant'] = r.CapGrant.map((g) => ({ Dsts: sortedStrings(g.Dsts), CapMap: g.CapMap }));
  return out;
}

function canonicalSsh(rule: unknown): unknown {
  const r = rule as { principals?: { nodeIP?: string }[]; sshUsers?: unknown; action?: unknown; acceptEnv?: unknown };
  // The service's principal order varies between identical captures: compare as a multiset.
  return {
    principals: (r.principals ?? []).map((p) => JSON.stringify(p)).sort(),
    sshUsers: r.sshUsers ?? {},
    action: r.action ?? {},
    acceptEnv: r.acceptEnv ?? null,
  };
}

function canonicalSelf(self: Readonly<Record<string, unknown>>): unknown {
  const capMap = (self['CapMap'] as Record<string, unknown> | undefined) ?? {};
  return {
    Addresses: sortedStrings(self['Addresses']),
    AllowedIPs: sortedStrings(self['AllowedIPs']),
    PrimaryRoutes: sortedStrings(self['PrimaryRoutes']),
    Tags: sortedStrings(self['Tags']),
    CapMap: capMap,
  };
}

function canonicalPeer(peer: Readonly<Record<string, unknown>>): unknown {
  return {
    name: peer['name'],
    AllowedIPs: sortedStrings(peer['AllowedIPs']),
    PrimaryRoutes: sortedStrings(peer['PrimaryRoutes']),
    Tags: sortedStrings(peer['Tags']),
    CapMap: peer['CapMap'] ?? null,
  };
}

function canonicalWhois(whois: Readonly<Record<string, { CapMap?: unknown }>>): unknown {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(whois).sort()) out[key] = whois[key]!.CapMap ?? null;
  return out;
}

export interface CaseDiff {
  readonly node: string;
  readonly field: string;
  readonly want: unknown;
  readonly got: unknown;
}

export type CaseOutcome = { readonly pass: true } | { readonly pass: false; readonly reason: string; readonly diffs: readonly CaseDiff[] };

export function checkCase(c: SaasCase, result: CompileResult): CaseOutcome {
  if (c.rejected) {
    if (!result.rejected) return { pass: false, reason: `the service rejected the policy (${c.error_message}); we accepted it`, diffs: [] };
    if (!result.error.includes(c.error_message ?? '')) return { pass: false, reason: `error message mismatch: want it to contain ${JSON.stringify(c.error_message)}, got ${JSON.stringify(result.error)}`, diffs: [] };
    return { pass: true };
  }
  if (result.rejected) return { pass: false, reason: `we rejected a policy the service accepted: ${result.error}`, diffs: [] };
  const diffs: CaseDiff[] = [];
  const eq = (a: unknown, b: unknown): boolean => stable(a) === stable(b);
  for (const [name, want] of Object.entries(c.expect)) {
    const got = result.nodes[name];
    if (got === undefined) {
      diffs.push({ node: name, field: 'node', want: 'present', got: 'missing' });
      continue;
    }
    const wf = want.packet_filter.map(canonicalRule);
    const gf = got.packet_filter.map(canonicalRule);
    if (!eq(wf, gf)) diffs.push({ node: name, field: 'packet_filter', want: want.packet_filter, got: got.packet_filter });
    const ws = want.ssh_rules.map(canonicalSsh);
    const gs = got.ssh_rules.map(canonicalSsh);
    if (!eq(ws, gs)) diffs.push({ node: name, field: 'ssh_rules', want: want.ssh_rules, got: got.ssh_rules });
    if (!eq(canonicalSelf(want.self), canonicalSelf(got.self as unknown as Record<string, unknown>))) {
      diffs.push({ node: name, field: 'self', want: want.self, got: got.self });
    }
    const wp = want.peers.map(canonicalPeer);
    const gp = got.peers.map((p) => canonicalPeer(p as unknown as Record<string, unknown>));
    if (!eq(wp, gp)) diffs.push({ node: name, field: 'peers', want: want.peers, got: got.peers });
    if (want.whois !== undefined) {
      const ww = canonicalWhois(want.whois);
      const gw = canonicalWhois(got.whois ?? {});
      if (!eq(ww, gw)) diffs.push({ node: name, field: 'whois', want: ww, got: gw });
    }
  }
  return diffs.length === 0 ? { pass: true } : { pass: false, reason: `${diffs.length} node field(s) differ`, diffs };
}

/** JSON with object keys sorted, for structural equality. */
export function stable(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stable).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .sort()
      .filter((k) => o[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${stable(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}
