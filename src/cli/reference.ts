// docs/cli.md's command reference, rendered from the commander tree itself (usage, arguments,
// options, defaults) and EXAMPLES, so the documentation is the program's own description.
import type { Command } from 'commander';
import { EXAMPLES } from './examples.js';

export const CLI_REFERENCE_BEGIN = '<!-- BEGIN GENERATED: command reference (src/cli/reference.ts) -->';
export const CLI_REFERENCE_END = '<!-- END GENERATED: command reference -->';

/** `users create`, `nodes routes approve` ... */
export function commandPath(command: Command): string {
  const names: string[] = [];
  for (let c: Command | null = command; c !== null && c.parent !== null; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

/** Every command that runs something (no group commands, no `help`). */
export function leafCommands(program: Command): Command[] {
  const out: Command[] = [];
  const walk = (command: Command): void => {
    for (const sub of command.commands) {
      if (sub.commands.length > 0) walk(sub);
      else out.push(sub);
    }
  };
  walk(program);
  return out;
}

function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function cell(text: string): string {
  return escapeHtml(text).replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

/** Inside a code span `<` is literal; only the table's `|` needs escaping. */
function codeCell(text: string): string {
  return text.replace(/\|/g, '\\|');
}

function sentence(text: string): string {
  const escaped = escapeHtml(text);
  return `${escaped.charAt(0).toUpperCase()}${escaped.slice(1)}.`;
}

export function renderCliReference(program: Command): string {
  const help = program.createHelp();
  const out: string[] = [CLI_REFERENCE_BEGIN, '', '## Options every command takes', '', '| Option | Description |', '|---|---|'];
  for (const option of help.visibleOptions(program)) {
    if (option.long === '--help' || option.long === '--version') continue;
    out.push(`| \`${codeCell(help.optionTerm(option))}\` | ${cell(help.optionDescription(option))} |`);
  }
  out.push('', '## Commands', '', '| Command | What it does |', '|---|---|');
  const leaves = leafCommands(program);
  for (const command of leaves) {
    const path = commandPath(command);
    out.push(`| [\`headway ${path}\`](#${path.replace(/ /g, '-')}) | ${cell(command.description())} |`);
  }
  for (const command of leaves) {
    const path = commandPath(command);
    out.push('', `<a id="${path.replace(/ /g, '-')}"></a>`, `### headway ${path}`, '', sentence(command.description()), '', '```', `headway ${path} ${help.commandUsage(command).split(' ').slice(path.split(' ').length + 1).join(' ')}`.trimEnd(), '```');
    const args = help.visibleArguments(command);
    const options = help.visibleOptions(command).filter((o) => o.long !== '--help');
    if (args.length > 0 || options.length > 0) {
      out.push('', '| Argument or option | Description |', '|---|---|');
      for (const arg of args) out.push(`| \`${codeCell(help.argumentTerm(arg))}\` | ${cell(help.argumentDescription(arg) || '')} |`);
      for (const option of options) out.push(`| \`${codeCell(help.optionTerm(option))}\` | ${cell(help.optionDescription(option))} |`);
    }
    const examples = EXAMPLES[path] ?? [];
    if (examples.length > 0) out.push('', examples.length === 1 ? 'Example:' : 'Examples:', '', '```sh', ...examples, '```');
  }
  out.push('', CLI_REFERENCE_END);
  return out.join('\n');
}
