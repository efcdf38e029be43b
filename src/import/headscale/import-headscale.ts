// `headway import headscale`: read headscale's database (and optionally its config and policy),
// check the Noise key, then write everything into Headway's store in one transaction. Run it with
// Headway stopped: the server reads the store at start-up.
import { readFile, writeFile } from 'node:fs/promises';
import type { Config } from '../../config/index.js';
import { Curve25519PrivateKey, KeyParseError } from '../../key/index.js';
import { openStore, readPrivateKeyFile, replacePrivateKey, type Store } from '../../store/index.js';
import { ImportErrors, importError } from '../errors.js';
import { applyHeadscaleSnapshot, type ImportReport } from './apply.js';
import { readHeadscaleConfig, type HeadscaleSettings } from './headscale-config.js';
import { readHeadscaleDatabase } from './source.js';

export interface ImportHeadscaleOptions {
  /** Headway's own configuration (the target store, prefixes, Noise key path). */
  config: Config;
  /** headscale's SQLite file or a postgres:// URL; default: database.sqlite.path of --headscale-config. */
  database?: string;
  /** headscale's noise_private.key; default: noise.private_key_path of --headscale-config. */
  noiseKey?: string;
  headscaleConfig?: string;
  /** A policy file that replaces headscale's. */
  policyFile?: string;
  tailnet: string;
  dryRun: boolean;
  merge: boolean;
  /** Where to write the Headway config fragment made from headscale's config (mode 0600). */
  configOut?: string;
  actor?: string;
  /** An open store to use instead of opening config.database (tests). */
  store?: Store;
}

export interface HeadscaleImportResult extends ImportReport {
  noiseKey: 'taken over' | 'already in place' | 'not changed (dry run)';
  /** Where Headway's previous Noise key was moved, when it was replaced. */
  previousNoiseKey: string | null;
  /** Headway config keys to add, from headscale's config (YAML), or ''. */
  configFragment: string;
  warnings: string[];
}

async function readNoiseKey(path: string): Promise<Curve25519PrivateKey> {
  let fileText: string;
  try {
    fileText = await readFile(path, 'utf8');
  } catch (err) {
    throw importError(ImportErrors.sourceUnreadable, `--noise-key ${path}: cannot read it: ${err instanceof Error ? err.message : String(err)}`, err);
  }
  try {
    return Curve25519PrivateKey.fromFileText(fileText);
  } catch (err) {
    if (!(err instanceof KeyParseError)) throw err;
    throw importError(ImportErrors.sourceUnreadable, `--noise-key ${path}: not a headscale noise key file (want "privkey:" and 64 hex digits)`);
  }
}

export async function importHeadscale(options: ImportHeadscaleOptions): Promise<HeadscaleImportResult> {
  const settings: HeadscaleSettings | null = options.headscaleConfig === undefined ? null : await readHeadscaleConfig(options.headscaleConfig);
  const database = options.database ?? settings?.databaseLocation ?? undefined;
  if (database === undefined) {
    throw importError(ImportErrors.sourceUnreadable, '--database is required (headscale\'s SQLite file or a postgres:// URL), unless --headscale-config names a SQLite database');
  }
  const noiseKeyPath = options.noiseKey ?? settings?.noiseKeyPath ?? undefined;
  if (noiseKeyPath === undefined) {
    throw importError(ImportErrors.sourceUnreadable, "--noise-key is required (headscale's noise_private.key), unless --headscale-config names it: without it every client would have to log in again");
  }
  const noiseKey = await readNoiseKey(noiseKeyPath);
  const snapshot = await readHeadscaleDatabase(database);

  let policy: { text: string; source: string } | null = null;
  if (options.policyFile !== undefined) {
    policy = { text: await readText(options.policyFile, '--policy'), source: options.policyFile };
  } else if (settings?.policyMode === 'file' && settings.policyPath !== null) {
    policy = { text: await readText(settings.policyPath, `policy.path of ${settings.path}`), source: settings.policyPath };
  } else if (snapshot.databasePolicy !== null) {
    policy = { text: snapshot.databasePolicy, source: `${snapshot.where} policies table` };
  }

  const warnings = [...(settings?.warnings ?? [])];
  if (settings?.serverUrl !== null && settings?.serverUrl !== undefined && settings.serverUrl !== options.config.serverUrl) {
    warnings.push(`headscale's server_url is ${settings.serverUrl} but Headway's is ${options.config.serverUrl}: clients reconnect only at the URL they know`);
  }
  if (policy !== null && options.config.policy.mode === 'file') {
    warnings.push(`Headway runs with policy.mode: file, so the imported policy (stored in the database) takes effect only with policy.mode: database, or copy ${policy.source} to policy.path`);
  }

  const store = options.store ?? await openStore(options.config);
  try {
    const current = await readPrivateKeyFile(options.config.noise.privateKeyPath);
    const keyMatches = current !== undefined && current.toFileText() === noiseKey.toFileText();
    if (current !== undefined && !keyMatches) {
      const nodes = await store.read.nodes.listAll();
      const sourceKeys = new Set(snapshot.nodes.map((n) => n.nodeKey));
      if (nodes.some((n) => !sourceKeys.has(n.nodeKey))) {
        throw importError(ImportErrors.noiseKeyConflict, `${options.config.noise.privateKeyPath} holds another Noise key and ${nodes.length} Headway node(s) trust it; replacing it would cut them off`);
      }
    }
    const report = await applyHeadscaleSnapshot(store, snapshot, {
      tailnet: options.tailnet,
      prefixes: { v4: options.config.prefixes.v4, v6: options.config.prefixes.v6 },
      policy,
      merge: options.merge,
      dryRun: options.dryRun,
      actor: options.actor ?? 'cli:import',
    });
    let noiseKeyOutcome: HeadscaleImportResult['noiseKey'] = keyMatches ? 'already in place' : 'not changed (dry run)';
    let previousNoiseKey: string | null = null;
    if (!options.dryRun && !keyMatches) {
      previousNoiseKey = (await replacePrivateKey(options.config.noise.privateKeyPath, noiseKey)).replaced;
      noiseKeyOutcome = 'taken over';
    }
    const configFragment = settings?.fragment ?? '';
    if (!options.dryRun && options.configOut !== undefined && configFragment !== '') {
      await writeFile(options.configOut, configFragment, { mode: 0o600 });
    }
    return { ...report, noiseKey: noiseKeyOutcome, previousNoiseKey, configFragment, warnings };
  } finally {
    if (options.store === undefined) await store.close();
  }
}

async function readText(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw importError(ImportErrors.sourceUnreadable, `${what} ${path}: cannot read it: ${err instanceof Error ? err.message : String(err)}`, err);
  }
}
