// The tailnet policy: read it (text exactly as stored, comments intact), replace it (database
// mode; validated, tests included, before it is stored), check a candidate without storing.
// The policy's `tests` and `sshTests` run against the tailnet as it is now: its users and
// devices, with their addresses, tags and approved routes.
import { z } from 'zod';
import type { Config } from '../config/index.js';
import {
  ALLOW_ALL_POLICY_TEXT, assertTestsPass, compilePolicyText, explainFacts, PolicyError, PolicyIndex, runPolicyTests, type TestReport, tailnetFactsFromModel, withDevicesForTests, type CompiledPolicy, type TailnetFacts,
} from '../policy/index.js';
import type { NodeId } from '../model/index.js';
import type { TailnetState } from '../state/index.js';
import { ApiErrors, apiError } from './errors.js';
import { defineRoute, type Route } from './route.js';

export const policySchema = z.object({
  tailnet: z.string(),
  mode: z.enum(['database', 'file']).describe('database: set through the API and CLI, every version kept; file: read from `path`.'),
  path: z.string().nullable().describe('The policy file in file mode; null in database mode.'),
  policy: z.string().nullable().describe('The HuJSON text exactly as written; null when the tailnet has no policy (every node may reach every node).'),
  version: z.object({
    id: z.number().int().positive(),
    author: z.string().describe('The actor who stored it.'),
    created_at: z.iso.datetime(),
  }).nullable().describe('The stored version (database mode); null in file mode or when none was stored.'),
});
export type PolicyJson = z.output<typeof policySchema>;

export const policyCheckSchema = z.object({
  ok: z.boolean().describe('The policy parses, validates and its tests pass: `PUT /policy` would store it.'),
  error: z.string().nullable().describe('The first problem, with file:line:column and the JSON path.'),
  tests: z.object({
    total: z.number().int().nonnegative(),
    passed: z.boolean(),
    failures: z.array(z.object({
      section: z.enum(['tests', 'sshTests']),
      index: z.number().int().nonnegative(),
      path: z.string(),
      message: z.string(),
    })),
  }).nullable().describe('Results of tests and sshTests; null when the policy did not compile.'),
});
export type PolicyCheckJson = z.output<typeof policyCheckSchema>;

const policyBody = z.strictObject({
  policy: z.string().min(1).describe('The policy as HuJSON text (JSON with comments and trailing commas), kept exactly as sent.'),
});

/**
 * What the policy engine sees of a tailnet, built as the server's pipeline builds it
 * (server/tailnet-policy.ts `tailnetFacts`, which this part may not import): tagged nodes are
 * owned by their tags, every user is a member.
 */
/**
 * The tailnet the policy's tests run against: its devices, plus a stand-in for each user and
 * tag the policy names that has no device yet (tests are about identities).
 */
export function testFactsFor(compiled: CompiledPolicy, tailnet: TailnetState): TailnetFacts {
  return withDevicesForTests(compiled, tailnetFactsFromModel(tailnet.users(), tailnet.nodes(), (id) => tailnet.presence(id as NodeId).online, tailnet.settings));
}

/** The name errors are located in: the policy file in file mode (as the server names it). */
export function policyFileName(config: Config): string {
  return config.policy.mode === 'file' && config.policy.path !== null ? config.policy.path : 'policy.hujson';
}

export function requireDatabaseMode(config: Config): void {
  if (config.policy.mode === 'file') {
    throw apiError(ApiErrors.policyFileMode, `the policy is managed by the file at ${config.policy.path ?? '(no file set)'} (policy.mode: file); edit that file instead`);
  }
}

/** Compiles and runs the policy's tests against the tailnet; throws PolicyError on the first problem. */
export function validatePolicy(text: string, tailnet: TailnetState, config: Config): void {
  const compiled = compilePolicyText(text, { file: policyFileName(config) });
  assertTestsPass(new PolicyIndex(compiled, testFactsFor(compiled, tailnet)));
}

function reportJson(report: TestReport): NonNullable<PolicyCheckJson['tests']> {
  return {
    total: report.total,
    passed: report.passed,
    failures: report.failures.map((f) => ({ section: f.section, index: f.index, path: f.path, message: f.message })),
  };
}

async function currentPolicy(tailnet: TailnetState, config: Config, readLatest: (t: TailnetState) => Promise<{ id: number; author: string; createdAt: Date; text: string } | undefined>): Promise<PolicyJson> {
  const { mode, path } = config.policy;
  if (mode === 'file') return { tailnet: tailnet.name, mode, path, policy: tailnet.policyText, version: null };
  const latest = await readLatest(tailnet);
  return {
    tailnet: tailnet.name,
    mode,
    path: null,
    policy: latest?.text ?? null,
    version: latest === undefined ? null : { id: latest.id, author: latest.author, created_at: latest.createdAt.toISOString() },
  };
}

export const explainSchema = z.object({
  allowed: z.boolean(),
  src: z.string(),
  dst: z.string(),
  proto: z.string(),
  matches: z.array(z.object({
    section: z.enum(['acls', 'grants', 'default']),
    index: z.number().int(),
    location: z.string().describe('line:column of the rule in the policy'),
    rule: z.string().describe('a one-line rendering of the rule'),
  })),
  peers: z.boolean().describe('whether the two nodes see each other in their netmaps'),
  reason: z.string().nullable(),
});

export type PolicyExplainJson = z.infer<typeof explainSchema>;

export const policyRoutes: readonly Route[] = [
  defineRoute({
    operationId: 'getPolicy',
    method: 'GET',
    path: '/policy',
    group: 'policy',
    scope: 'tailnet',
    summary: 'Get the tailnet policy',
    response: policySchema,
    errors: [404],
    async handle({ tailnet, deps }) {
      return currentPolicy(tailnet, deps.config, (t) => deps.state.store.read.policies.latest(t.id));
    },
  }),
  defineRoute({
    operationId: 'setPolicy',
    method: 'PUT',
    path: '/policy',
    group: 'policy',
    scope: 'tailnet',
    summary: 'Replace the tailnet policy',
    description:
      'Database mode only (in file mode: 409). The policy is parsed, validated and its `tests` and `sshTests` are run ' +
      'against the tailnet\'s current users and devices; any problem is a 400 whose message gives file:line:column ' +
      'and the JSON path, and nothing is stored. Otherwise the text is stored as a new version, exactly as sent ' +
      '(comments included), with its audit entry, and every node gets its new packet filter.',
    body: policyBody,
    response: policySchema,
    errors: [404, 409],
    async handle({ tailnet, deps, body, actor }) {
      requireDatabaseMode(deps.config);
      validatePolicy(body.policy, tailnet, deps.config);
      await tailnet.setPolicy(body.policy, actor, { persist: true });
      return currentPolicy(tailnet, deps.config, (t) => deps.state.store.read.policies.latest(t.id));
    },
  }),
  defineRoute({
    operationId: 'listPolicyVersions',
    method: 'GET',
    path: '/policy/versions',
    group: 'policy',
    scope: 'tailnet',
    summary: 'List the stored versions of the tailnet policy, newest first (database mode)',
    description: 'Each version with its full text, author and time. Roll back by sending an old text with `PUT /policy`.',
    response: z.object({ versions: z.array(z.object({ id: z.number().int(), author: z.string(), created_at: z.string(), policy: z.string() })) }),
    errors: [404],
    async handle({ tailnet, deps }) {
      const versions = await deps.state.store.read.policies.list(tailnet.id);
      return {
        versions: versions.map((v) => ({ id: Number(v.id), author: v.author, created_at: v.createdAt.toISOString(), policy: v.text }))
          .sort((a, b) => b.id - a.id),
      };
    },
  }),
  defineRoute({
    operationId: 'checkPolicy',
    method: 'POST',
    path: '/policy/check',
    group: 'policy',
    scope: 'tailnet',
    summary: 'Check a policy without storing it',
    description:
      'Runs the same validation as `PUT /policy` (tests included, against the tailnet\'s current devices) and ' +
      'answers 200 with the verdict: `ok` false with the error when the policy would be refused. Works in file mode too.',
    body: policyBody,
    response: policyCheckSchema,
    errors: [404],
    async handle({ tailnet, deps, body }) {
      let report: TestReport | null = null;
      try {
        const compiled = compilePolicyText(body.policy, { file: policyFileName(deps.config) });
        const index = new PolicyIndex(compiled, testFactsFor(compiled, tailnet));
        report = runPolicyTests(index);
        // The same check PUT makes, for the same message.
        if (!report.passed) assertTestsPass(index);
        return { ok: true, error: null, tests: reportJson(report) };
      } catch (err) {
        if (err instanceof PolicyError) return { ok: false, error: err.message, tests: report === null ? null : reportJson(report) };
        throw err;
      }
    },
  }),
  defineRoute({
    operationId: 'explainPolicy',
    method: 'POST',
    path: '/policy/explain',
    group: 'policy',
    scope: 'tailnet',
    summary: 'Say whether one node may reach another, and which rule allows it',
    description:
      'Evaluates the policy in force against the tailnet\'s devices: may `src` (a node name) open `dst` (`node:port` ' +
      'or `address:port`) with `proto` (default tcp)? Answers with the verdict, every acl or grant that allows it ' +
      '(with its line and column), and whether the two nodes see each other. Like the rule preview of Tailscale\'s ' +
      'admin console.',
    body: z.strictObject({
      src: z.string().min(1).max(253).describe('The node that opens the connection (its name).'),
      dst: z.string().min(3).max(300).describe('`node:port` or `address:port`.'),
      proto: z.string().min(1).max(16).optional().describe('tcp (default), udp, sctp, icmp or an IANA number.'),
    }),
    response: explainSchema,
    errors: [400, 404],
    async handle({ tailnet, deps, body }) {
      const facts = tailnetFactsFromModel(tailnet.users(), tailnet.nodes(), (id) => tailnet.presence(id as NodeId).online, tailnet.settings);
      const text = tailnet.policyText ?? ALLOW_ALL_POLICY_TEXT;
      const result = explainFacts(text, facts, { src: body.src, dst: body.dst, ...(body.proto !== undefined ? { proto: body.proto } : {}) }, { file: policyFileName(deps.config) });
      return { ...result, matches: [...result.matches], reason: result.reason ?? null };
    },
  }),
];

