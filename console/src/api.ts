// The admin API as the console uses it: JSON over fetch with the session cookie, the CSRF token
// on every change, and the server's error message surfaced as-is.
export interface Session {
  signed_in: boolean;
  actor: string | null;
  kind: string;
  admin: boolean;
  role: string | null;
  user: string | null;
  user_id: number | null;
  tailnet: string | null;
  csrf_token: string | null;
  idle_timeout_seconds: number | null;
  expires_at: string | null;
}

export interface SignInOptions { oidc: boolean; oidc_provider: string | null; oidc_start_path: string | null; login_link: boolean }

export interface NodeInfo {
  id: number;
  stable_id: string;
  name: string;
  hostname: string;
  user: string | null;
  user_id: number | null;
  tags: string[];
  ipv4: string | null;
  ipv6: string | null;
  online: boolean;
  last_seen: string | null;
  key_expiry: string | null;
  expired: boolean;
  ephemeral: boolean;
  advertised_routes: string[];
  approved_routes: string[];
  machine_key: string;
  node_key: string;
  os: string;
  client_version: string;
  endpoints?: string[];
  derp_region?: number | null;
  /** Reported by servers with device approval (identity work); absent otherwise. */
  approved?: boolean;
  created_at: string;
}

/** A machine as the lists get it (GET /nodes?view=list): what a row, a filter or a picker needs. */
export type NodeListItem = Pick<NodeInfo, 'id' | 'name' | 'hostname' | 'user' | 'user_id' | 'tags' | 'ipv4' | 'ipv6' | 'online' | 'last_seen'
  | 'key_expiry' | 'expired' | 'ephemeral' | 'advertised_routes' | 'approved_routes' | 'os' | 'client_version' | 'approved'>;

export interface UserInfo { id: number; name: string; display_name: string; email: string; role: string; created_at: string }
export interface PreAuthKeyInfo {
  id: number; prefix: string; user: string | null; tags: string[]; reusable: boolean; ephemeral: boolean;
  used_count: number; expiration: string | null; revoked_at: string | null; expired: boolean; usable: boolean; created_at: string;
}
export interface ApiKeyInfo { id: number; prefix: string; expiration: string | null; expired: boolean; last_used_at: string | null; created_at: string }
export interface AuditEntry { id: number; tailnet: string | null; actor: string; action: string; target: string; details: Record<string, unknown>; from: string | null; created_at: string }
export interface PolicyInfo { tailnet: string; mode: string; path: string | null; policy: string | null; version: { id: number; author: string; created_at: string } | null }
export interface PolicyVersionInfo { id: number; author: string; created_at: string; policy: string }
export interface PolicyCheck { ok: boolean; error: string | null; tests: { total: number; passed: boolean; failures: Array<{ section: string; index: number; path: string; message: string }> } | null }
export interface ExplainResult {
  allowed: boolean; src: string; dst: string; proto: string; peers: boolean; reason: string | null;
  matches: Array<{ section: string; index: number; location: string; rule: string }>;
}
export interface Settings {
  tailnet: string; display_name: string; server_url: string; magic_dns: boolean; base_domain: string; override_local_dns: boolean;
  nameservers: string[]; split_dns: Record<string, string[]>; search_domains: string[];
  extra_records: Array<{ name: string; type: string; value: string }>; default_key_expiry_seconds: number;
  default_key_expiry_source: 'tailnet' | 'config'; dns_source: 'tailnet' | 'config';
  device_approval: boolean | null;
  derp_regions: Array<{ id: number; code: string; name: string; nodes: Array<{ name: string; host: string; stun_port: number | null; derp_port: number | null }> }>;
}

export class ApiError extends Error {
  constructor(readonly status: number, readonly code: string, message: string, readonly field?: string) {
    super(message);
  }
}

let csrfToken: string | null = null;
export function setCsrfToken(token: string | null): void {
  csrfToken = token;
}

export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && csrfToken !== null) headers['x-csrf-token'] = csrfToken;
  let res: Response;
  try {
    res = await fetch(`/api/v1${path}`, { method, headers, credentials: 'same-origin', body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    throw new ApiError(0, 'NETWORK', 'the server cannot be reached; check your connection');
  }
  const text = await res.text();
  let json: unknown = undefined;
  try {
    json = text === '' ? undefined : JSON.parse(text);
  } catch {
    /* not JSON: reported below */
  }
  if (!res.ok) {
    const error = (json as { error?: { code?: string; message?: string; field?: string } } | undefined)?.error;
    throw new ApiError(res.status, error?.code ?? `HTTP_${res.status}`, error?.message ?? `the server answered ${res.status}`, error?.field);
  }
  return json as T;
}

/** `?tailnet=<name>` plus more query parameters. */
export function q(tailnet: string, extra: Record<string, string | undefined> = {}): string {
  const params = new URLSearchParams({ tailnet });
  for (const [k, v] of Object.entries(extra)) if (v !== undefined && v !== '') params.set(k, v);
  return `?${params.toString()}`;
}

export const enc = encodeURIComponent;
