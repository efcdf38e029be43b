// Device posture conditions (`postures`, `srcPosture`, `defaultSrcPosture`): a posture is a list
// of conditions a device must all meet, such as `node:os == 'macos'` or
// `node:tsVersion >= '1.60'`; a rule listing postures admits a source device that meets any of
// them. Attributes come from the node facts; a missing attribute fails every condition except
// `NOT SET`, so an unknown device never gains access through a posture.

export type PostureValue = string | number | boolean;

export interface PostureCondition {
  readonly text: string;
  readonly attribute: string;
  readonly op: '==' | '!=' | '<' | '<=' | '>' | '>=' | 'IN' | 'NOT IN' | 'IS SET' | 'NOT SET';
  readonly values: readonly PostureValue[];
}

const CONDITION = /^\s*([A-Za-z][A-Za-z0-9]*:[A-Za-z0-9_.-]+)\s+(==|!=|<=|>=|<|>|NOT IN|IN|IS SET|NOT SET)\s*(.*?)\s*$/;

/** Parses one condition; returns a message describing the problem instead when malformed. */
export function parsePostureCondition(text: string): PostureCondition | string {
  const m = CONDITION.exec(text);
  if (m === null) return `${JSON.stringify(text)}: want "<namespace:attribute> <operator> <value>", e.g. "node:os == 'macos'"`;
  const attribute = m[1]!;
  const op = m[2]! as PostureCondition['op'];
  const rest = m[3]!;
  if (op === 'IS SET' || op === 'NOT SET') {
    if (rest !== '') return `${JSON.stringify(text)}: ${op} takes no value`;
    return { text, attribute, op, values: [] };
  }
  if (op === 'IN' || op === 'NOT IN') {
    if (!rest.startsWith('[') || !rest.endsWith(']')) return `${JSON.stringify(text)}: ${op} wants a list like ['a', 'b']`;
    const inner = rest.slice(1, -1).trim();
    const values: PostureValue[] = [];
    if (inner !== '') {
      for (const item of inner.split(',')) {
        const v = parseValue(item.trim());
        if (v === null) return `${JSON.stringify(text)}: bad list value ${JSON.stringify(item.trim())}`;
        values.push(v);
      }
    }
    return { text, attribute, op, values };
  }
  const v = parseValue(rest);
  if (v === null) return `${JSON.stringify(text)}: bad value ${JSON.stringify(rest)} (quote strings: 'macos')`;
  return { text, attribute, op, values: [v] };
}

function parseValue(text: string): PostureValue | null {
  const quoted = /^'([^']*)'$|^"([^"]*)"$/.exec(text);
  if (quoted !== null) return quoted[1] ?? quoted[2] ?? '';
  if (text === 'true') return true;
  if (text === 'false') return false;
  if (/^-?[0-9]+(\.[0-9]+)?$/.test(text)) return Number(text);
  return null;
}

/** Whether a device with these attributes meets every condition of a posture. */
export function meetsPosture(conditions: readonly PostureCondition[], attributes: Readonly<Record<string, PostureValue>> | undefined): boolean {
  return conditions.every((c) => meetsCondition(c, attributes?.[c.attribute]));
}

function meetsCondition(c: PostureCondition, actual: PostureValue | undefined): boolean {
  if (c.op === 'IS SET') return actual !== undefined;
  if (c.op === 'NOT SET') return actual === undefined;
  if (actual === undefined) return false;
  switch (c.op) {
    case '==':
      return compare(actual, c.values[0]!) === 0;
    case '!=':
      return compare(actual, c.values[0]!) !== 0;
    case '<':
      return compare(actual, c.values[0]!) < 0;
    case '<=':
      return compare(actual, c.values[0]!) <= 0;
    case '>':
      return compare(actual, c.values[0]!) > 0;
    case '>=':
      return compare(actual, c.values[0]!) >= 0;
    case 'IN':
      return c.values.some((v) => compare(actual, v) === 0);
    case 'NOT IN':
      return !c.values.some((v) => compare(actual, v) === 0);
  }
}

/** Numbers numerically, dotted versions component by component, other strings as text. */
function compare(a: PostureValue, b: PostureValue): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  const as = String(a);
  const bs = String(b);
  const version = /^v?[0-9]+(\.[0-9]+)*$/;
  if (version.test(as) && version.test(bs)) {
    const ap = as.replace(/^v/, '').split('.').map(Number);
    const bp = bs.replace(/^v/, '').split('.').map(Number);
    for (let i = 0; i < Math.max(ap.length, bp.length); i++) {
      const d = (ap[i] ?? 0) - (bp[i] ?? 0);
      if (d !== 0) return d;
    }
    return 0;
  }
  return as < bs ? -1 : as > bs ? 1 : 0;
}
