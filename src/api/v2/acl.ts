// The policy file as Tailscale's API serves it: GET .../acl as HuJSON (Accept: application/hujson,
// the text exactly as stored) or as JSON, with an ETag; POST .../acl replaces it, honouring
// If-Match (`"ts-default"` = only while no policy was ever set, what the Terraform provider sends
// to avoid overwriting one); POST .../acl/validate answers 200 with `{}` or Tailscale's
// `{"message", "data"}` verdict.
import { createHash } from 'node:crypto';
import { parse as parseJsonc, printParseErrorCode, type ParseError } from 'jsonc-parser';
import { z } from 'zod';
import { ALLOW_ALL_POLICY_TEXT, PolicyError, parsePolicy, type Policy } from '../../policy/index.js';
import type { TailnetState } from '../../state/index.js';
import { prefixContains, tryParseIP } from '../../util/ip.js';
import { requireDatabaseMode, validatePolicy } from '../policy.js';
import { ApiV2Errors } from './errors.js';
import { v2Error } from './handler.js';
import { reply, v2Route, type CompiledV2Route, type V2Context } from './route.js';

export const DEFAULT_POLICY_ETAG = 'ts-default';

export function policyEtag(text: string): string {
  return `"${createHash('sha256').update(text, 'utf8').digest('hex')}"`;
}

function wantsHujson(ctx: V2Context): boolean {
  return /application\/hujson/i.test(String(ctx.headers.accept ?? ''));
}

function isDefault(tailnet: TailnetState): boolean {
  return tailnet.policyText === null || tailnet.policyText === ALLOW_ALL_POLICY_TEXT;
}

function policyText(tailnet: TailnetState): string {
  return tailnet.policyText ?? ALLOW_ALL_POLICY_TEXT;
}

function asJson(text: string): unknown {
  const errors: ParseError[] = [];
  const value: unknown = parseJsonc(text, errors, { allowTrailingComma: true, disallowComments: false });
  if (errors.length > 0) throw v2Error(ApiV2Errors.badRequest, `policy: ${printParseErrorCode(errors[0]!.error)} at offset ${errors[0]!.offset}`);
  return value;
}

function policyReply(ctx: V2Context, tailnet: TailnetState) {
  const text = policyText(tailnet);
  const headers = { ETag: policyEtag(text) };
  if (wantsHujson(ctx)) return reply({ text: { contentType: 'application/hujson', value: text }, headers });
  return reply({ body: asJson(text), headers });
}

/** The body of a POST: HuJSON or JSON text; an empty body means "back to the default policy". */
function bodyText(ctx: V2Context): string {
  return typeof ctx.body === 'string' ? ctx.body : '';
}

function portText(range: { first: number; last: number }): string {
  if (range.first === 0 && range.last === 65535) return '*';
  return range.first === range.last ? String(range.first) : `${range.first}-${range.last}`;
}

/**
 * Rules that apply to a user (`type=user`: the rule's src names the user, one of their groups,
 * their domain, `*` or autogroup:member) or to an `ip:port` (`type=ipport`: a dst of `*` or a
 * prefix covering the address, with the port in range), as Tailscale's rule preview lists them.
 * Tags and hosts in dst are not resolved to addresses here.
 */
function previewMatches(policy: Policy, text: string, type: string, previewFor: string): Array<{ users: string[]; ports: string[]; lineNumber: number }> {
  const line = (at: number) => text.slice(0, at).split('\n').length;
  const matches: Array<{ users: string[]; ports: string[]; lineNumber: number }> = [];
  const login = previewFor.toLowerCase();
  const groups = new Set([...policy.groups].filter(([, members]) => members.some((m) => m.toLowerCase() === login)).map(([name]) => name));
  let ip: string | null = null;
  let port = -1;
  if (type === 'ipport') {
    const colon = previewFor.lastIndexOf(':');
    ip = previewFor.slice(0, colon).replace(/^\[|\]$/g, '');
    port = Number(previewFor.slice(colon + 1));
    if (colon === -1 || tryParseIP(ip) === null || !Number.isInteger(port)) throw v2Error(ApiV2Errors.badRequest, `previewFor: want ip:port for type=ipport, got ${JSON.stringify(previewFor)}`);
  }
  for (const rule of policy.acls ?? []) {
    let hit = false;
    if (type === 'user') {
      hit = rule.src.some((s) => {
        const a = s.alias;
        return a.kind === 'wildcard' || (a.kind === 'user' && a.login.toLowerCase() === login) || (a.kind === 'group' && groups.has(a.name))
          || (a.kind === 'userDomain' && login.endsWith(`@${a.domain.toLowerCase()}`)) || (a.kind === 'autogroup' && a.name === 'member');
      });
    } else {
      const addr = tryParseIP(ip!)!;
      hit = rule.dst.some((d) => (d.alias.kind === 'wildcard' || (d.alias.kind === 'prefix' && prefixContains(d.alias.prefix, addr)))
        && d.ports.some((r) => r.first <= port && port <= r.last));
    }
    if (hit) matches.push({ users: rule.src.map((s) => s.text), ports: rule.dst.map((d) => `${d.text}:${d.ports.map(portText).join(',')}`), lineNumber: line(rule.at) });
  }
  return matches;
}

export const aclRoutes: readonly CompiledV2Route[] = [
  v2Route({
    operationId: 'v2GetAcl', method: 'GET', path: '/tailnet/{tailnet}/acl', summary: 'Get the policy file (HuJSON with Accept: application/hujson, else JSON) and its ETag', scope: 'policy_file',
    response: z.record(z.string(), z.unknown()),
    async handle(ctx) {
      return policyReply(ctx, ctx.tailnet());
    },
  }),
  v2Route({
    operationId: 'v2SetAcl', method: 'POST', path: '/tailnet/{tailnet}/acl', summary: 'Replace the policy file (If-Match: its ETag, or "ts-default"); an empty body restores the default', scope: 'policy_file',
    rawBody: true, response: z.record(z.string(), z.unknown()),
    async handle(ctx) {
      const tailnet = ctx.tailnet();
      requireDatabaseMode(ctx.config);
      const ifMatch = ctx.headers['if-match'];
      if (typeof ifMatch === 'string' && ifMatch.trim() !== '' && ifMatch.trim() !== '*') {
        const wanted = ifMatch.trim();
        const unquoted = wanted.replace(/^"(.*)"$/, '$1');
        const ok = unquoted === DEFAULT_POLICY_ETAG ? isDefault(tailnet) : wanted === policyEtag(policyText(tailnet)) || `"${unquoted}"` === policyEtag(policyText(tailnet));
        if (!ok) throw v2Error(ApiV2Errors.preconditionFailed, 'precondition failed, invalid old hash');
      }
      const text = bodyText(ctx);
      if (text.trim() === '') {
        // The store keeps text, so "the default" is stored as the default's text.
        await tailnet.setPolicy(ALLOW_ALL_POLICY_TEXT, ctx.principal.actor, { persist: true });
      } else {
        validatePolicy(text, tailnet, ctx.config);
        await tailnet.setPolicy(text, ctx.principal.actor, { persist: true });
      }
      return policyReply(ctx, tailnet);
    },
  }),
  v2Route({
    operationId: 'v2PreviewAcl', method: 'POST', path: '/tailnet/{tailnet}/acl/preview', summary: 'Which acl rules of the given policy apply to a user (type=user) or an ip:port (type=ipport)', scope: 'policy_file',
    rawBody: true,
    response: z.object({ matches: z.array(z.object({ users: z.array(z.string()), ports: z.array(z.string()), lineNumber: z.number().int() })), type: z.string(), previewFor: z.string() }),
    async handle(ctx) {
      ctx.tailnet();
      const type = ctx.query.get('type') ?? '';
      const previewFor = ctx.query.get('previewFor') ?? '';
      if (type !== 'user' && type !== 'ipport') throw v2Error(ApiV2Errors.badRequest, 'type: want user or ipport');
      if (previewFor === '') throw v2Error(ApiV2Errors.badRequest, 'previewFor: required');
      const text = bodyText(ctx);
      const policy = parsePolicy(text);
      return { matches: previewMatches(policy, text, type, previewFor), type, previewFor };
    },
  }),
  v2Route({
    operationId: 'v2ValidateAcl', method: 'POST', path: '/tailnet/{tailnet}/acl/validate', summary: 'Check a policy (or run a list of tests) without storing it: `{}` when fine, else `{"message", "data"}`', scope: 'policy_file',
    rawBody: true, response: z.object({ message: z.string().optional(), data: z.array(z.object({ user: z.string(), errors: z.array(z.string()) })).optional() }),
    async handle(ctx) {
      const tailnet = ctx.tailnet();
      let text = bodyText(ctx);
      const trimmed = text.trim();
      // A JSON list is a set of tests to run against the current policy.
      if (trimmed.startsWith('[')) {
        const current = asJson(policyText(tailnet)) as Record<string, unknown>;
        text = JSON.stringify({ ...current, tests: asJson(trimmed) });
      }
      try {
        validatePolicy(text, tailnet, ctx.config);
        return {};
      } catch (err) {
        if (!(err instanceof PolicyError)) throw err;
        return { message: err.message, data: [{ user: '', errors: [err.message] }] };
      }
    },
  }),
];
