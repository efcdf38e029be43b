// headway policy get|set|check. The server validates (syntax, references, the policy's own
// tests against the tailnet's nodes); the CLI only reads the file and prints the answer.
import { readFile } from 'node:fs/promises';
import type { PolicyJson } from '../api/index.js';
import { usageError } from './errors.js';
import type { CliIo } from './output.js';
import type { Cli } from './program.js';

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
}
