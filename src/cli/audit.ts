// headway audit list
import type { AuditEntryJson } from '../api/index.js';
import { usageError } from './errors.js';
import { renderTable, time } from './output.js';
import type { Cli } from './program.js';

export function registerAuditCommands({ program, action }: Cli): void {
  const audit = program.command('audit').description('read the audit log of admin changes');

  audit.command('list')
    .description('list audit entries, newest first (every tailnet unless --tailnet is given)')
    .option('-n, --limit <count>', 'at most this many entries (1-10000)', '100')
    .action(action(async (ctx, _args, options) => {
      const limit = String(options['limit']);
      if (!/^[0-9]+$/.test(limit) || Number(limit) < 1 || Number(limit) > 10_000) {
        throw usageError(`--limit: want a whole number from 1 to 10000, got ${JSON.stringify(limit)}`);
      }
      const { audit: rows } = await ctx.call<{ audit: AuditEntryJson[] }>('GET', '/audit', {
        query: { limit, tailnet: ctx.tailnetGiven ? ctx.globals.tailnet : undefined },
      });
      ctx.print(rows, () => renderTable(rows, [
        { header: 'ID', value: (e) => String(e.id) },
        { header: 'TIME', value: (e) => time(e.created_at) },
        { header: 'TAILNET', value: (e) => e.tailnet ?? '-' },
        { header: 'ACTOR', value: (e) => e.actor },
        { header: 'FROM', value: (e) => e.from ?? '-' },
        { header: 'ACTION', value: (e) => e.action },
        { header: 'TARGET', value: (e) => e.target },
        { header: 'DETAILS', value: (e) => truncate(JSON.stringify(e.details), 80) },
      ]));
    }));
}

function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 3)}...`;
}
