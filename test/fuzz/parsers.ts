// Property-based fuzz targets for every parser a stranger's bytes reach, called in process with
// the real code (issue 17, item 1). Each property feeds random and mutated-valid input and
// accepts exactly two outcomes: a value, or one of our clear errors (HeadwayError and the
// parsers' own error classes). A TypeError, RangeError or any other escape is a crash finding.
// Hangs are caught by fast-check's per-run timeout; allocation is bounded by asserting that the
// parsers hold no more than the input they were given (see each target).
import fc from 'fast-check';
import { beginClientHandshake, acceptClientHandshake, RecordDecoder, encodeRecords } from '../../src/noise/index.js';
import { Curve25519PrivateKey } from '../../src/key/index.js';
import { parseBindingRequest, parseBindingResponse, stunBindingRequest, parseDerpMapText } from '../../src/derp/index.js';
import { FrameReader, FrameRejectedError, MAX_PACKET_BYTES, FRAME_HEADER_BYTES } from '../../src/derp/frame.js';
import { parseMapRequest, parseRegisterRequest } from '../../src/control/machine-request.js';
import { compilePolicyText } from '../../src/policy/index.js';
import { configFromText } from '../../src/config/index.js';
import { DnsConfigError, parseExtraRecords } from '../../src/dns/dns-config.js';
import { readEarlyPayload } from '../../src/client/early-payload-reader.js';
import { StreamReader } from '../../src/client/stream-reader.js';
import { HeadwayError } from '../../src/util/headway-error.js';
import { PassThrough } from 'node:stream';

/** How long one run may take before fast-check calls it a hang (generous: shared machines). */
export const RUN_TIMEOUT_MS = 30_000;

export interface FuzzBudget {
  /** Cases to run (npm test); ignored when `timeLimitMs` is set. */
  readonly numRuns?: number;
  /** Run until this much time has passed (npm run fuzz). */
  readonly timeLimitMs?: number;
  readonly seed?: number;
}

export interface FuzzTarget {
  readonly name: string;
  /** Cases worth running inside `npm test` (slow targets ask for fewer). */
  readonly testRuns: number;
  run(budget: FuzzBudget): Promise<void>;
}

/** fast-check parameters for a budget: a count, or a time limit that ends the run without failing. */
export function parameters(budget: FuzzBudget): { numRuns: number; interruptAfterTimeLimit?: number; markInterruptAsFailure: boolean; seed?: number; timeout: number; endOnFailure?: boolean } {
  return {
    numRuns: budget.timeLimitMs !== undefined ? Number.MAX_SAFE_INTEGER : (budget.numRuns ?? 100),
    ...(budget.timeLimitMs !== undefined ? { interruptAfterTimeLimit: budget.timeLimitMs } : {}),
    markInterruptAsFailure: false,
    ...(budget.seed !== undefined ? { seed: budget.seed } : {}),
    timeout: RUN_TIMEOUT_MS,
    ...(process.env['HEADWAY_FUZZ_NO_SHRINK'] === '1' ? { endOnFailure: true } : {}),
  };
}

/** A clear, intended rejection: anything else that escapes a parser is a bug. */
export function isCleanRejection(err: unknown): boolean {
  return err instanceof HeadwayError || err instanceof DnsConfigError || err instanceof FrameRejectedError;
}

function expectValueOrCleanError(parse: () => unknown): void {
  try {
    parse();
  } catch (err) {
    if (!isCleanRejection(err)) throw err;
    if ((err as Error).message.trim() === '') throw new Error('a rejection without a message', { cause: err });
  }
}

async function expectValueOrCleanErrorAsync(parse: () => Promise<unknown>): Promise<void> {
  try {
    await parse();
  } catch (err) {
    if (!isCleanRejection(err)) throw err;
  }
}

// --- generators -------------------------------------------------------------------------------

const bytes = (maxLength: number) => fc.uint8Array({ maxLength }).map((b) => Buffer.from(b));

/** A valid input with a few bytes overwritten, then maybe cut short or extended. */
function mutated(valid: Buffer | (() => Buffer)): fc.Arbitrary<Buffer> {
  const base = typeof valid === 'function' ? valid : () => valid;
  return fc.record({
    edits: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
    cut: fc.option(fc.nat(), { nil: undefined }),
    tail: bytes(64),
  }).map(({ edits, cut, tail }) => {
    const out = Buffer.from(base());
    for (const [at, value] of edits) if (out.length > 0) out[at % out.length] = value;
    if (cut !== undefined) return out.subarray(0, cut % (out.length + 1));
    return tail.length > 0 && edits.length % 2 === 1 ? Buffer.concat([out, tail]) : out;
  });
}

/** A buffer split at random points, the way TCP may deliver it. */
function chunked(input: fc.Arbitrary<Buffer>): fc.Arbitrary<Buffer[]> {
  return fc.tuple(input, fc.array(fc.nat(), { maxLength: 5 })).map(([whole, cuts]) => {
    const points = [...new Set(cuts.map((c) => (whole.length === 0 ? 0 : c % whole.length)))].sort((a, b) => a - b);
    const parts: Buffer[] = [];
    let from = 0;
    for (const p of points) { parts.push(whole.subarray(from, p)); from = p; }
    parts.push(whole.subarray(from));
    return parts;
  });
}

/** Arbitrary JSON values, with the field names the parser looks for mixed in. */
function jsonWithFields(fields: readonly string[]): fc.Arbitrary<unknown> {
  const value = fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.string(), fc.constantFrom('nodekey:' + '00'.repeat(32), 'discokey:' + 'ab'.repeat(32), 'mkey:zz', ''));
  return fc.oneof(
    fc.dictionary(fc.constantFrom(...fields), value, { maxKeys: fields.length }),
    fc.jsonValue({ maxDepth: 3 }),
  );
}

const CONTROL_KEY = Curve25519PrivateKey.generate();

function validInitiation(): Buffer {
  return beginClientHandshake({ machineKey: Curve25519PrivateKey.generate(), controlPublic: CONTROL_KEY.publicBytes, protocolVersion: 130 }).message;
}

// --- targets -----------------------------------------------------------------------------------

export const PARSER_TARGETS: readonly FuzzTarget[] = [
  {
    name: 'noise: handshake initiation',
    testRuns: 300,
    async run(budget) {
      const initiation = validInitiation();
      fc.assert(fc.property(fc.oneof(bytes(200), mutated(initiation)), (input) => {
        expectValueOrCleanError(() => acceptClientHandshake({ controlKey: CONTROL_KEY, initiation: input }));
      }), parameters(budget));
    },
  },
  {
    name: 'noise: transport records',
    testRuns: 300,
    async run(budget) {
      // Real sessions: records sealed by a client, opened by the server's decoder.
      fc.assert(fc.property(fc.array(bytes(1500), { maxLength: 4 }), fc.boolean(), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }), fc.array(fc.nat(), { maxLength: 4 }),
        (plaintexts, garbage, edits, cuts) => {
          // Each case needs fresh cipher states: a fresh handshake per case is too slow, so the
          // case is either all garbage (the decoder's first record fails) or sealed records
          // with edits (likewise fails at the first bad record, or opens them all).
          const fresh = beginClientHandshake({ machineKey: Curve25519PrivateKey.generate(), controlPublic: CONTROL_KEY.publicBytes, protocolVersion: 130 });
          const server = acceptClientHandshake({ controlKey: CONTROL_KEY, initiation: fresh.message });
          const sender = fresh.finish(server.response);
          let wire = garbage ? Buffer.concat(plaintexts) : encodeRecords(sender.send, plaintexts);
          wire = Buffer.from(wire);
          for (const [at, value] of edits) if (wire.length > 0) wire[at % wire.length] = value;
          const decoder = new RecordDecoder(server.session.receive, () => 'fuzz');
          const points = [...new Set(cuts.map((c) => (wire.length === 0 ? 0 : c % wire.length)))].sort((a, b) => a - b);
          let from = 0;
          expectValueOrCleanError(() => {
            for (const p of [...points, wire.length]) { decoder.decode(wire.subarray(from, p)); from = p; }
          });
          if (decoder.pendingBytes > 4096) throw new Error(`the decoder holds ${decoder.pendingBytes} bytes, more than one record`);
        }), parameters(budget));
    },
  },
  {
    name: 'control: early payload (client side)',
    testRuns: 200,
    async run(budget) {
      const magic = Buffer.from([0xff, 0xff, 0xff, 0x54, 0x53]);
      const framed = fc.tuple(fc.oneof(fc.string(), fc.jsonValue().map((v) => JSON.stringify(v)), fc.constant('{"nodeKeyChallenge":"chalpub:' + '00'.repeat(32) + '"}')), fc.integer({ min: -8, max: 8 }))
        .map(([json, skew]) => {
          const body = Buffer.from(json);
          const head = Buffer.alloc(4);
          head.writeUInt32BE(Math.max(0, body.length + skew));
          return Buffer.concat([magic, head, body]);
        });
      await fc.assert(fc.asyncProperty(fc.oneof(bytes(64), framed, mutated(Buffer.concat([magic, Buffer.from([0xff, 0xff, 0xff, 0xff])]))), async (input) => {
        const stream = new PassThrough();
        const reader = new StreamReader(stream);
        stream.end(input);
        await expectValueOrCleanErrorAsync(() => readEarlyPayload(reader, 'fuzz'));
        reader.release();
      }), parameters(budget));
    },
  },
  {
    name: 'derp: frames',
    testRuns: 300,
    async run(budget) {
      // The relay's rule: a frame longer than the largest packet is refused from its header,
      // before anything is allocated for it.
      const limit = MAX_PACKET_BYTES + 32 + 24 + 1024;
      const frame = fc.tuple(fc.integer({ min: 0, max: 255 }), bytes(300)).map(([type, payload]) => {
        const head = Buffer.alloc(FRAME_HEADER_BYTES);
        head[0] = type;
        head.writeUInt32BE(payload.length, 1);
        return Buffer.concat([head, payload]);
      });
      const stream = fc.oneof(bytes(2000), fc.array(frame, { maxLength: 6 }).map((f) => Buffer.concat(f)), mutated(Buffer.from([0x02, 0xff, 0xff, 0xff, 0xff])));
      fc.assert(fc.property(chunked(stream), (parts) => {
        let largest = 0;
        const reader = new FrameReader((_type, length) => (length > limit ? { reject: 'frame_too_large', detail: `frame of ${length} bytes` } : 'read'));
        expectValueOrCleanError(() => {
          for (const part of parts) {
            reader.push(part);
            for (let f = reader.next(); f !== null; f = reader.next()) largest = Math.max(largest, f.length);
          }
        });
        if (largest > limit + FRAME_HEADER_BYTES) throw new Error(`a frame of ${largest} bytes passed a ${limit}-byte limit`);
      }), parameters(budget));
    },
  },
  {
    name: 'stun: binding requests and responses',
    testRuns: 500,
    async run(budget) {
      const valid = stunBindingRequest(Buffer.alloc(12, 7));
      fc.assert(fc.property(fc.oneof(bytes(600), mutated(valid)), (input) => {
        expectValueOrCleanError(() => parseBindingRequest(input));
        expectValueOrCleanError(() => parseBindingRequest(input, { requireTailscaleSoftware: true }));
        expectValueOrCleanError(() => parseBindingResponse(input));
      }), parameters(budget));
    },
  },
  {
    name: 'control: register and map request bodies',
    testRuns: 300,
    async run(budget) {
      const register = jsonWithFields(['Version', 'NodeKey', 'OldNodeKey', 'Auth', 'Expiry', 'Followup', 'Hostinfo', 'Ephemeral', 'NLKey', 'Timestamp']);
      const map = jsonWithFields(['Version', 'NodeKey', 'DiscoKey', 'Stream', 'OmitPeers', 'ReadOnly', 'Endpoints', 'EndpointTypes', 'Hostinfo', 'KeepAlive', 'Compress', 'DebugFlags']);
      const body = fc.oneof(
        fc.oneof(register, map).map((v) => Buffer.from(JSON.stringify(v) ?? 'null')),
        bytes(300),
        fc.string().map((s) => Buffer.from(s)),
      );
      fc.assert(fc.property(body, (input) => {
        expectValueOrCleanError(() => parseRegisterRequest(input));
        expectValueOrCleanError(() => parseMapRequest(input));
      }), parameters(budget));
    },
  },
  {
    name: 'policy: HuJSON documents',
    testRuns: 200,
    async run(budget) {
      const alias = fc.oneof(fc.constantFrom('*', 'autogroup:member', 'autogroup:self', 'group:eng', 'tag:web', 'alice@', '10.0.0.0/8', 'host1', '100.64.0.1', 'fd7a::/48'), fc.string({ maxLength: 12 }));
      const dst = fc.tuple(alias, fc.constantFrom('*', '22', '80-443', '1,2', 'x', '70000', '')).map(([a, p]) => `${a}:${p}`);
      const acl = fc.record({ action: fc.constantFrom('accept', 'deny', 7), src: fc.array(alias, { maxLength: 3 }), dst: fc.array(dst, { maxLength: 3 }), proto: fc.option(fc.constantFrom('tcp', 'udp', '17', 'x'), { nil: undefined }) }, { requiredKeys: [] });
      const policy = fc.record({
        groups: fc.dictionary(fc.constantFrom('group:eng', 'group:ops', 'eng', 'group:'), fc.array(alias, { maxLength: 3 })),
        tagOwners: fc.dictionary(fc.constantFrom('tag:web', 'tag:db', 'web'), fc.array(alias, { maxLength: 2 })),
        hosts: fc.dictionary(fc.constantFrom('host1', 'host2', 'Bad Host'), fc.oneof(fc.constantFrom('10.1.0.0/16', '100.64.0.9', 'nope'), fc.string())),
        acls: fc.array(acl, { maxLength: 4 }),
        grants: fc.array(fc.record({ src: fc.array(alias, { maxLength: 2 }), dst: fc.array(alias, { maxLength: 2 }), ip: fc.array(fc.constantFrom('*', 'tcp:22', '443', 'icmp:*', 'x'), { maxLength: 2 }) }, { requiredKeys: [] }), { maxLength: 2 }),
        ssh: fc.array(fc.record({ action: fc.constantFrom('accept', 'check'), src: fc.array(alias, { maxLength: 2 }), dst: fc.array(alias, { maxLength: 2 }), users: fc.array(fc.constantFrom('root', 'autogroup:nonroot', ''), { maxLength: 2 }) }, { requiredKeys: [] }), { maxLength: 2 }),
        autoApprovers: fc.record({ routes: fc.dictionary(fc.constantFrom('10.0.0.0/8', '0.0.0.0/0', 'x'), fc.array(alias, { maxLength: 2 })), exitNode: fc.array(alias, { maxLength: 2 }) }, { requiredKeys: [] }),
        tests: fc.array(fc.record({ src: alias, accept: fc.array(dst, { maxLength: 2 }), deny: fc.array(dst, { maxLength: 2 }) }, { requiredKeys: ['src'] }), { maxLength: 2 }),
      }, { requiredKeys: [] });
      // HuJSON extras: comments and trailing commas around a JSON text.
      const hujson = fc.tuple(policy, fc.boolean(), fc.boolean()).map(([p, comment, trailing]) => {
        let text = JSON.stringify(p, null, 1);
        if (trailing) text = text.replace(/\n(\s*)([}\]])/g, ',\n$1$2');
        return comment ? `// policy\n/* block */ ${text}` : text;
      });
      const text = fc.oneof(hujson, mutated(() => Buffer.from('{"acls":[{"action":"accept","src":["*"],"dst":["*:*"]}]}')).map((b) => b.toString('utf8')), fc.string({ maxLength: 200 }), fc.jsonValue().map((v) => JSON.stringify(v)));
      fc.assert(fc.property(text, (input) => {
        expectValueOrCleanError(() => compilePolicyText(input, { file: 'fuzz.hujson' }));
      }), parameters(budget));
    },
  },
  {
    name: 'config: YAML files',
    testRuns: 200,
    async run(budget) {
      const keys = ['server_url', 'listen_addr', 'metrics_listen_addr', 'data_dir', 'unix_socket_permission', 'prefixes', 'database', 'dns', 'derp', 'node_expiry', 'log', 'map', 'policy', 'tls_cert_path'];
      const scalar = fc.oneof(fc.string({ maxLength: 20 }), fc.integer(), fc.boolean(), fc.constant(null), fc.constantFrom('127.0.0.1:0', '"0770"', '30s', '100.64.0.0/10', 'https://x.example.com', '[::1]:9'));
      const value = fc.oneof(scalar, fc.dictionary(fc.constantFrom('v4', 'v6', 'type', 'sqlite', 'path', 'magic_dns', 'base_domain', 'server', 'enabled', 'level', 'x'), scalar, { maxKeys: 3 }), fc.array(scalar, { maxLength: 3 }));
      const doc = fc.dictionary(fc.constantFrom(...keys), value, { maxKeys: 5 }).map((o) => {
        // JSON is YAML; flow style reaches the same schema as block style.
        return JSON.stringify(o);
      });
      const text = fc.oneof(doc, fc.string({ maxLength: 200 }), mutated(Buffer.from('listen_addr: 127.0.0.1:0\ndns:\n  base_domain: ts.example\nprefixes:\n  v4: 100.64.0.0/10\n')).map((b) => b.toString('utf8')));
      fc.assert(fc.property(text, (input) => {
        expectValueOrCleanError(() => configFromText(input, { source: 'fuzz.yaml', baseDir: '/tmp/headway-fuzz' }));
      }), parameters(budget));
    },
  },
  {
    name: 'dns: extra records files',
    testRuns: 300,
    async run(budget) {
      const record = fc.record({ name: fc.oneof(fc.constantFrom('a.ts.example', '', 'x..y', '-a.b'), fc.string({ maxLength: 20 })), type: fc.constantFrom('A', 'AAAA', 'MX', 3), value: fc.oneof(fc.constantFrom('100.64.0.1', 'fd7a::1', '999.1.1.1'), fc.string({ maxLength: 20 })) }, { requiredKeys: [] });
      const text = fc.oneof(fc.array(record, { maxLength: 4 }).map((r) => JSON.stringify(r)), fc.jsonValue().map((v) => JSON.stringify(v)), fc.string({ maxLength: 100 }));
      fc.assert(fc.property(text, (input) => {
        expectValueOrCleanError(() => parseExtraRecords(input, 'fuzz.json'));
      }), parameters(budget));
    },
  },
  {
    name: 'derp: DERP map files',
    testRuns: 200,
    async run(budget) {
      const node = fc.record({ Name: fc.string({ maxLength: 5 }), RegionID: fc.oneof(fc.integer(), fc.string()), HostName: fc.oneof(fc.constantFrom('derp.example.com', ''), fc.string({ maxLength: 10 })), STUNPort: fc.oneof(fc.integer(), fc.constant(-1)), DERPPort: fc.integer() }, { requiredKeys: [] });
      const map = fc.record({ Regions: fc.dictionary(fc.constantFrom('1', '900', 'x', '-2'), fc.record({ RegionID: fc.integer(), RegionCode: fc.string({ maxLength: 4 }), Nodes: fc.array(node, { maxLength: 2 }) }, { requiredKeys: [] })) }, { requiredKeys: [] });
      const text = fc.oneof(map.map((m) => JSON.stringify(m)), fc.string({ maxLength: 100 }), fc.jsonValue().map((v) => JSON.stringify(v)));
      fc.assert(fc.property(text, fc.constantFrom('json', 'yaml', 'auto') as fc.Arbitrary<'json' | 'yaml' | 'auto'>, (input, format) => {
        expectValueOrCleanError(() => parseDerpMapText(input, 'fuzz', format));
      }), parameters(budget));
    },
  },
];
