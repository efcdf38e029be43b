// Turns zod issues into messages that name the field and say what was expected, in the style of
// the config loader: `body.tags[1]: want a string, got the number 3`. A client that sends
// garbage learns exactly which field to fix.
import type { z } from 'zod';

type Issue = z.core.$ZodIssue;
type PathSegment = PropertyKey;

export function formatFieldPath(root: string, path: readonly PathSegment[]): string {
  let out = root;
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else if (typeof segment === 'string' && /^[A-Za-z_][A-Za-z0-9_]*$/.test(segment)) out += `.${segment}`;
    else out += `[${JSON.stringify(String(segment))}]`;
  }
  return out;
}

export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
  if (typeof value === 'number') return Number.isNaN(value) ? 'not a number' : `the number ${value}`;
  if (typeof value === 'boolean') return `the boolean ${value}`;
  if (Array.isArray(value)) return 'a list';
  return `a ${typeof value === 'object' ? 'JSON object' : typeof value}`;
}

const TYPE_NAMES: Readonly<Record<string, string>> = {
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'true or false',
  array: 'a list',
  object: 'a JSON object',
  null: 'null',
  undefined: 'nothing',
};

function typeName(expected: string): string {
  return TYPE_NAMES[expected] ?? expected;
}

export function describeIssue(issue: Issue, root: string, schema: z.ZodType): { field: string; problem: string } {
  const field = formatFieldPath(root, issue.path);
  switch (issue.code) {
    case 'invalid_type':
      if (issue.input === undefined) return { field, problem: `required (want ${typeName(issue.expected)})` };
      return { field, problem: `want ${typeName(issue.expected)}, got ${describeValue(issue.input)}` };
    case 'unrecognized_keys': {
      const key = issue.keys[0] ?? '';
      const allowed = objectKeysAt(schema, issue.path);
      const what = root === 'body' ? 'field' : 'parameter';
      const hint = allowed === undefined ? '' : allowed.length === 0 ? ' (none are accepted here)' : ` (allowed: ${allowed.join(', ')})`;
      return { field: formatFieldPath(root, [...issue.path, key]), problem: `unknown ${what}${hint}` };
    }
    case 'too_small':
      return { field, problem: sizeProblem('at least', issue.origin, issue.minimum, issue.inclusive !== false, issue.input) };
    case 'too_big':
      return { field, problem: sizeProblem('at most', issue.origin, issue.maximum, issue.inclusive !== false, issue.input) };
    case 'invalid_format':
      if (issue.format === 'regex' && issue.pattern !== undefined) {
        return { field, problem: `${describeValue(issue.input)} does not match ${issue.pattern}` };
      }
      return { field, problem: `${describeValue(issue.input)} is not a valid ${issue.format}` };
    case 'invalid_value':
      return { field, problem: `want ${issue.values.map((v) => JSON.stringify(v)).join(' or ')}, got ${describeValue(issue.input)}` };
    case 'invalid_union': {
      // Prefer a branch that got past the type check: its problem is the specific one.
      for (const branch of issue.errors) {
        const first = branch[0];
        if (first !== undefined && first.code !== 'invalid_type') {
          return describeIssue({ ...first, path: [...issue.path, ...first.path] } as Issue, root, schema);
        }
      }
      const expected = issue.errors.map((b) => b[0]).filter((i) => i?.code === 'invalid_type').map((i) => typeName((i as { expected: string }).expected));
      const want = expected.length > 0 ? [...new Set(expected)].join(' or ') : 'another form';
      if (issue.input === undefined) return { field, problem: `required (want ${want})` };
      return { field, problem: `want ${want}, got ${describeValue(issue.input)}` };
    }
    case 'not_multiple_of':
      return { field, problem: `want a multiple of ${String(issue.divisor)}, got ${describeValue(issue.input)}` };
    default:
      return { field, problem: issue.message };
  }
}

function sizeProblem(bound: string, origin: string, limit: number | bigint, inclusive: boolean, input: unknown): string {
  const n = Number(limit);
  switch (origin) {
    case 'string':
      if (bound === 'at least' && n === 1) return 'must not be empty';
      return `want ${bound} ${n} characters, got ${typeof input === 'string' ? input.length : describeValue(input)}`;
    case 'array':
      return `want ${bound} ${n} items`;
    default: {
      const relation = bound === 'at least' ? (inclusive ? '>=' : '>') : inclusive ? '<=' : '<';
      return `want a number ${relation} ${n}, got ${describeValue(input)}`;
    }
  }
}

/** The keys an object schema accepts at `path` (through optional/default/nullable wrappers). */
function objectKeysAt(schema: z.ZodType, path: readonly PathSegment[]): string[] | undefined {
  let current: unknown = schema;
  for (let i = 0; i <= path.length; i++) {
    current = unwrap(current);
    if (i === path.length) break;
    const def = defOf(current);
    const segment = path[i];
    if (def?.type === 'object' && typeof segment === 'string') current = (def.shape as Record<string, unknown>)[segment];
    else if (def?.type === 'array') current = def.element;
    else return undefined;
  }
  const def = defOf(current);
  return def?.type === 'object' ? Object.keys(def.shape as Record<string, unknown>) : undefined;
}

interface LooseDef {
  type: string;
  shape?: unknown;
  element?: unknown;
  innerType?: unknown;
}

function defOf(schema: unknown): LooseDef | undefined {
  if (typeof schema !== 'object' || schema === null || !('_zod' in schema)) return undefined;
  const zod = (schema as { _zod: { def: LooseDef } })._zod;
  return zod.def;
}

function unwrap(schema: unknown): unknown {
  let current = schema;
  for (let guard = 0; guard < 10; guard++) {
    const def = defOf(current);
    if (def !== undefined && ['optional', 'nullable', 'default', 'prefault', 'readonly', 'nonoptional'].includes(def.type) && def.innerType !== undefined) {
      current = def.innerType;
    } else {
      return current;
    }
  }
  return current;
}
