// HuJSON (JSON with comments and trailing commas) read with jsonc-parser's tree API, so every
// value keeps its offset and errors can say line:column. The tree is walked by parse.ts.
import { parseTree, printParseErrorCode, type Node as JsonNode, type ParseError } from 'jsonc-parser';
import { PolicyError, type PolicyErrorKind, type PolicyErrorLocation } from './errors.js';

export type { JsonNode };

/** The text of one policy file with its name, for locating offsets. */
export class PolicySource {
  readonly text: string;
  readonly file: string;
  readonly #lineStarts: number[];

  constructor(text: string, file: string) {
    this.text = text;
    this.file = file;
    this.#lineStarts = [0];
    for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10) this.#lineStarts.push(i + 1);
  }

  /** 1-based line and column of a character offset. */
  position(offset: number): { line: number; column: number } {
    const starts = this.#lineStarts;
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (starts[mid]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo + 1, column: offset - starts[lo]! + 1 };
  }

  locate(offset: number, path: string): PolicyErrorLocation {
    const { line, column } = this.position(offset);
    return { file: this.file, line, column, path };
  }

  error(kind: PolicyErrorKind, detail: string, at: JsonNode | number | null, path: string): PolicyError {
    const offset = at === null ? 0 : typeof at === 'number' ? at : at.offset;
    return new PolicyError(kind, detail, this.locate(offset, path));
  }
}

/**
 * Parses HuJSON into a tree. An empty document (only whitespace and comments) is `null`:
 * the caller treats it as "no policy".
 */
export function parseHuJson(source: PolicySource): JsonNode | null {
  const errors: ParseError[] = [];
  const root = parseTree(source.text, errors, { allowTrailingComma: true, disallowComments: false, allowEmptyContent: true });
  if (errors.length > 0) {
    const first = errors[0]!;
    throw source.error('syntax', `invalid HuJSON: ${describeParseError(printParseErrorCode(first.error))}`, first.offset, '');
  }
  return root ?? null;
}

function describeParseError(code: string): string {
  switch (code) {
    case 'InvalidSymbol':
      return 'unexpected character';
    case 'PropertyNameExpected':
      return 'expected a quoted key';
    case 'ValueExpected':
      return 'expected a value';
    case 'ColonExpected':
      return 'expected ":" after the key';
    case 'CommaExpected':
      return 'expected "," between entries';
    case 'CloseBraceExpected':
      return 'expected "}"';
    case 'CloseBracketExpected':
      return 'expected "]"';
    case 'EndOfFileExpected':
      return 'unexpected content after the end of the document';
    case 'UnexpectedEndOfComment':
      return 'unterminated /* comment';
    case 'UnexpectedEndOfString':
      return 'unterminated string';
    default:
      return code;
  }
}

/** The JSON value of a subtree (strings, numbers, objects...), for pass-through values like app caps. */
export function nodeValue(node: JsonNode): unknown {
  switch (node.type) {
    case 'object': {
      const out: Record<string, unknown> = {};
      for (const prop of node.children ?? []) {
        const [key, value] = prop.children ?? [];
        if (key !== undefined && value !== undefined) out[String(key.value)] = nodeValue(value);
      }
      return out;
    }
    case 'array':
      return (node.children ?? []).map(nodeValue);
    default:
      return node.value as unknown;
  }
}
