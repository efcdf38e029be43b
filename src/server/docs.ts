// Reference documents generated from the code that defines them, so they cannot drift:
// docs/configuration.md from the config key table, docs/errors.md from every part's error
// table. `npm run docs` rewrites them; a test fails when they are stale.
import { writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CONFIG_REFERENCE } from '../config/index.js';
import { errorTables, type ErrorSpec } from '../util/headway-error.js';
// Import every part so that each registers its error table.
import '../api/index.js';
import '../client/index.js';
import '../config/index.js';
import '../control/index.js';
import '../derp/index.js';
import '../identity/index.js';
import '../import/index.js';
import '../webhooks/index.js';
import '../ha/index.js';
import '../noise/index.js';
import '../policy/index.js';
import '../scim/index.js';
import '../state/index.js';
import '../store/index.js';
import '../web-session/index.js';
import './index.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

export function configurationMarkdown(): string {
  const lines = [
    '# Configuration reference',
    '',
    'Generated from `src/config/reference.ts` by `npm run docs`; do not edit by hand.',
    '',
    'Headway reads one YAML file: `headway serve --config FILE` or `HEADWAY_CONFIG=FILE`. Without a file it runs on the defaults below. A commented example is `config.example.yaml` at the repository root. Unknown keys are errors; headscale keys that Headway does not use are ignored with a warning; durations use Go syntax plus `d` and `w` (`90d`, `24h`, `30m`); relative paths resolve against the file\'s directory.',
    '',
    '| key | type | default | meaning | headscale |',
    '|---|---|---|---|---|',
  ];
  for (const key of CONFIG_REFERENCE) {
    lines.push(`| \`${key.key}\` | ${cell(key.type)} | ${cell(key.default)} | ${cell(key.description)} | ${cell(key.headscale)} |`);
  }
  return `${lines.join('\n')}\n`;
}

export function allErrorSpecs(): ErrorSpec[] {
  const specs = errorTables.flatMap((table) => Object.values(table));
  return [...new Map(specs.map((s) => [s.code, s])).values()].sort((a, b) => a.code.localeCompare(b.code));
}

export function errorsMarkdown(): string {
  const lines = [
    '# Error codes',
    '',
    'Generated from each part\'s `errors.ts` by `npm run docs`; do not edit by hand. Every error Headway raises on purpose carries one of these stable codes; match on the code, not on the message.',
    '',
    '| code | HTTP status | meaning | fix |',
    '|---|--:|---|---|',
  ];
  for (const spec of allErrorSpecs()) lines.push(`| \`${spec.code}\` | ${spec.status} | ${cell(spec.meaning)} | ${cell(spec.fix)} |`);
  return `${lines.join('\n')}\n`;
}

export const GENERATED_DOCS: ReadonlyArray<{ readonly path: string; readonly render: () => string }> = [
  { path: 'docs/configuration.md', render: configurationMarkdown },
  { path: 'docs/errors.md', render: errorsMarkdown },
];

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  for (const doc of GENERATED_DOCS) {
    writeFileSync(join(repoRoot, doc.path), doc.render());
    process.stdout.write(`wrote ${doc.path}\n`);
  }
}
