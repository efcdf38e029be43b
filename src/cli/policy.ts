// headway policy get|set|check talk to the server, which validates (syntax, references, the
// policy's own tests against the tailnet's devices); the CLI only reads the file and prints the
// answer. policy compile|explain and check --offline run the policy engine here, on a topology
// file, with no server: what a change would do before it is made.
import { readFile } from 'node:fs/promises';
import type { PolicyCheckJson, PolicyExplainJson, PolicyJson } from '../api/index.js';
import { usageError } from './errors.js';
import { EXIT_FAILED, type Cli } from './program.js';
import type { CliIo } from './output.js';

/** Reads a policy file, or stdin for `-`. */
export async function readPolicyFile(path: string, io: CliIo): Promise<string> {
  if (path === '-') {
    const chunks: Buffer[] = [];
    for await (const chunk of io.stdin) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
    return Buffer.concat(chunks).toString('utf8');
  }
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'it is a directory' : (err as Error).message;
    throw usageError(`<file>: cannot read ${JSON.stringify(path)}: ${reason}`);
  }
}

/**
 * Reads a topology: a conformance case's `topology` object (with the case's `tailnet` object
 * under the key `tailnet`), or a whole case file holding both.
 */
async function readTopology(path: string, io: CliIo): Promise<unknown> {
  let text: string;
  try {
    text = path === '-' ? await readPolicyFile('-', io) : await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw usageError(`--topology: cannot read ${JSON.stringify(path)}: ${code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw usageError(`--topology: ${path} is not JSON (${(err as Error).message})`);
  }
  if (typeof value === 'object' && value !== null && !('nodes' in value) && 'topology' in value) {
    const whole = value as { topology: unknown; tailnet?: unknown };
    if (whole.tailnet === undefined || typeof whole.topology !== 'object' || whole.topology === null) return whole.topology;
    return { ...whole.topology, tailnet: whole.tailnet };
  }
  return value;
}

function fileLabel(path: string): string {
  return path === '-' ? 'stdin' : (path.split('/').pop() ?? path);
}

export function registerPolicyCommands({ program, action }: Cli): void {
  const policy = program.command('policy').description('read, replace or check the tailnet access policy (HuJSON)');

  policy.command('get')
    .description('print the policy exactly as stored, comments included')
    .action(action(async (ctx) => {
      const current = await ctx.call<PolicyJson>('GET', '/policy', { query: { tailnet: ctx.globals.tailnet } });
      if (ctx.globals.output !== 'json' && current.policy === null) {
        ctx.io.stderr.write(`tailnet "${current.tailnet}" has no policy: every node may reach every node\n`);
        return;
      }
      ctx.print(current, () => (current.policy!.endsWith('\n') ? current.policy! : `${current.policy}\n`));
    }));

  policy.command('set')
    .description('replace the policy (database mode): validated, tests included, then stored as a new version')
    .argument('<file>', 'HuJSON policy file, or - for stdin')
    .action(action(async (ctx, [file]) => {
      const text = await readPolicyFile(file!, ctx.io);
      ctx.fields({ 'body.policy': '<file>' });
      const stored = await ctx.call<PolicyJson>('PUT', '/policy', { query: { tailnet: ctx.globals.tailnet }, body: { policy: text } });
      ctx.print(stored, () => `stored policy version ${stored.version?.id ?? '?'} for tailnet "${stored.tailnet}"\n`);
    }));

  policy.command('check')
    .description('check a policy without storing it: on the server against the tailnet\'s devices, or --offline')
    .argument('<file>', 'HuJSON policy file, or - for stdin')
    .option('--offline', 'check here without a server: tests run on --topology, or on one device per user and tag the policy names')
    .option('--topology <file>', 'with --offline: a topology (JSON, as in a conformance case) to run the tests on')
    .action(action(async (ctx, [file], options) => {
      const text = await readPolicyFile(file!, ctx.io);
      let result: PolicyCheckJson;
      if (options['offline'] === true || options['topology'] !== undefined) {
        const { checkPolicy } = await import('../policy/index.js');
        const topology = options['topology'] === undefined ? undefined : await readTopology(options['topology'] as string, ctx.io);
        const checked = checkPolicy(text, { file: fileLabel(file!), topology });
        result = {
          ok: checked.ok,
          error: checked.error ?? null,
          tests: checked.tests === undefined ? null : {
            total: checked.tests.total,
            passed: checked.tests.passed,
            failures: checked.tests.failures.map((f) => ({ section: f.section, index: f.index, path: f.path, message: f.message })),
          },
        };
      } else {
        ctx.fields({ 'body.policy': '<file>' });
        result = await ctx.call<PolicyCheckJson>('POST', '/policy/check', { query: { tailnet: ctx.globals.tailnet }, body: { policy: text } });
      }
      if (ctx.globals.output === 'json') ctx.print(result, () => '');
      else if (result.ok) ctx.io.stdout.write(`ok: the policy is valid${result.tests && result.tests.total > 0 ? ` and its ${result.tests.total} tests pass` : ''}\n`);
      else ctx.io.stderr.write(`error: ${result.error}\n`);
      if (!result.ok) ctx.exit(EXIT_FAILED);
    }));

  policy.command('compile')
    .description('offline: what each node would receive (packet filter, SSH rules, peers) under a policy and a topology; prints {"rejected": ..., "nodes"|"error": ...}')
    .argument('[file]', 'HuJSON policy file, or - for stdin (or --policy)')
    .option('--policy <file>', 'HuJSON policy file (the same as the argument)')
    .requiredOption('--topology <file>', 'the tailnet: a topology (JSON, as in a conformance case)')
    .option('--node <name>', 'only this node')
    .option('--whois', 'include what each peer may do towards the node (capabilities)')
    .action(action(async (ctx, [fileArg], options) => {
      const file = policyFileOption(fileArg, options['policy']);
      if (file === undefined) throw usageError('policy compile: give the policy file (--policy FILE or as the argument)');
      const { compileTopology } = await import('../policy/index.js');
      const text = await readPolicyFile(file, ctx.io);
      const topology = await readTopology(options['topology'] as string, ctx.io);
      const result = compileTopology(text, topology, {
        file: fileLabel(file),
        node: options['node'] as string | undefined,
        whois: options['whois'] === true,
      });
      // The same JSON either way: a dry run users and checkers read with tools.
      ctx.io.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      if (result.rejected) ctx.exit(EXIT_FAILED);
    }));

  policy.command('explain')
    .description('may <src> open <dst>, and which acl or grant allows it: against the running tailnet, or offline with a policy and a topology')
    .argument('[file]', 'offline: HuJSON policy file, or - for stdin (or --policy); needs --topology')
    .option('--policy <file>', 'offline: HuJSON policy file (the same as the argument)')
    .option('--topology <file>', 'offline: the tailnet as a topology (JSON, as in a conformance case)')
    .requiredOption('--src <node>', 'the node that opens the connection')
    .requiredOption('--dst <node:port>', 'the node (or address) and port it connects to')
    .option('--proto <protocol>', 'tcp, udp, sctp, icmp or an IANA number', 'tcp')
    .action(action(async (ctx, [fileArg], options) => {
      const file = policyFileOption(fileArg, options['policy']);
      const topologyFile = options['topology'] as string | undefined;
      if ((file === undefined) !== (topologyFile === undefined)) {
        throw usageError('policy explain: offline needs both a policy file and --topology; without either it asks the running server');
      }
      const query = { src: options['src'] as string, dst: options['dst'] as string, proto: options['proto'] as string };
      let result: PolicyExplainJson;
      if (file !== undefined && topologyFile !== undefined) {
        const { explain } = await import('../policy/index.js');
        const offline = explain(await readPolicyFile(file, ctx.io), await readTopology(topologyFile, ctx.io), query, { file: fileLabel(file) });
        result = { ...offline, matches: [...offline.matches], reason: offline.reason ?? null };
      } else {
        ctx.fields({ 'body.src': '--src', 'body.dst': '--dst', 'body.proto': '--proto' });
        result = await ctx.call<PolicyExplainJson>('POST', '/policy/explain', { query: { tailnet: ctx.globals.tailnet }, body: query });
      }
      ctx.print(result, () => {
        const lines = [`${result.src} -> ${result.dst} (${result.proto}): ${result.allowed ? 'allowed' : 'denied'}`];
        for (const m of result.matches) lines.push(`  by ${m.section}[${m.index}] at ${m.location}: ${m.rule}`);
        if (result.reason !== null) lines.push(`  ${result.reason}`);
        lines.push(`  peers: ${result.peers ? 'yes (they see each other)' : 'no'}`);
        return `${lines.join('\n')}\n`;
      });
    }));
}

/** The policy file from the argument or --policy (one of them, not two different ones). */
function policyFileOption(argument: string | undefined, option: unknown): string | undefined {
  const fromOption = typeof option === 'string' && option !== '' ? option : undefined;
  const fromArgument = argument !== undefined && argument !== '' ? argument : undefined;
  if (fromOption !== undefined && fromArgument !== undefined && fromOption !== fromArgument) {
    throw usageError(`give the policy file once: the argument ${JSON.stringify(fromArgument)} and --policy ${JSON.stringify(fromOption)} differ`);
  }
  return fromOption ?? fromArgument;
}
