// What the import takes from headscale's config.yaml: the settings clients depend on (server_url,
// prefixes, DNS, DERP), turned into a Headway config fragment (Headway reads headscale's key names
// for these, see config/headscale-keys.ts), plus where headscale kept its Noise key and policy.
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { configFromObject, ConfigError } from '../../config/index.js';
import { ImportErrors, importError } from '../errors.js';

export interface HeadscaleSettings {
  path: string;
  serverUrl: string | null;
  noiseKeyPath: string | null;
  policyMode: 'file' | 'database';
  policyPath: string | null;
  databaseLocation: string | null;
  /** The Headway config keys to add (server_url, prefixes, dns, derp), as YAML. */
  fragment: string;
  warnings: string[];
}

function record(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? value as Record<string, unknown> : {};
}

function text(value: unknown): string | null {
  return typeof value === 'string' && value.trim() !== '' ? value.trim() : null;
}

export async function readHeadscaleConfig(path: string): Promise<HeadscaleSettings> {
  let raw: string;
  try {
    raw = await readFile(path, 'utf8');
  } catch (err) {
    throw importError(ImportErrors.sourceUnreadable, `--headscale-config ${path}: cannot read it: ${err instanceof Error ? err.message : String(err)}`, err);
  }
  let doc: Record<string, unknown>;
  try {
    doc = record(parseYaml(raw));
  } catch (err) {
    throw importError(ImportErrors.sourceUnreadable, `--headscale-config ${path}: not YAML: ${err instanceof Error ? err.message : String(err)}`, err);
  }
  const base = dirname(resolve(path));
  const pathOf = (value: unknown) => {
    const p = text(value);
    return p === null ? null : isAbsolute(p) ? p : resolve(base, p);
  };
  const policy = record(doc['policy']);
  const database = record(doc['database']);
  const databaseLocation = database['type'] === 'postgres'
    ? null // headscale's host/port/user form; the operator gives --database as a URL
    : pathOf(record(database['sqlite'])['path']);

  const fragment: Record<string, unknown> = {};
  if (text(doc['server_url']) !== null) fragment['server_url'] = text(doc['server_url']);
  const prefixes = record(doc['prefixes']);
  if (Object.keys(prefixes).length > 0) fragment['prefixes'] = prefixes;
  if (Object.keys(record(doc['dns'])).length > 0) fragment['dns'] = doc['dns'];
  const derp = record(doc['derp']);
  if (Object.keys(derp).length > 0) {
    const server = record(derp['server']);
    // The DERP server's key is per server; Headway keeps its own in data_dir.
    const { private_key_path: _derpKey, ...serverRest } = server;
    fragment['derp'] = { ...derp, ...(Object.keys(server).length > 0 ? { server: serverRest } : {}), ...(Array.isArray(derp['paths']) ? { paths: (derp['paths'] as unknown[]).map(pathOf).filter((p) => p !== null) } : {}) };
  }
  const warnings: string[] = [];
  try {
    configFromObject({ ...fragment, data_dir: base }, { source: `${path} (server_url, prefixes, dns, derp)`, baseDir: base });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    warnings.push(`the DNS/DERP settings need editing before Headway accepts them: ${err.message}`);
  }
  return {
    path,
    serverUrl: text(doc['server_url']),
    noiseKeyPath: pathOf(record(doc['noise'])['private_key_path']),
    policyMode: policy['mode'] === 'database' ? 'database' : 'file',
    policyPath: pathOf(policy['path']),
    databaseLocation,
    fragment: Object.keys(fragment).length === 0 ? '' : stringifyYaml(fragment),
    warnings,
  };
}
