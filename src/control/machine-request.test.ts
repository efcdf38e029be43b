// The bodies real Tailscale clients sent (1.34.2 and 1.78.3, ../shared/vectors/client-*) must
// parse as they are, and map to the changes the server should apply for each client generation.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { sharedVectorsDir } from '../util/testing.js';
import { liveUpdateOf } from './map-handler.js';
import { parseMapRequest, parseRegisterRequest } from './machine-request.js';

function samples(version: string): Record<string, unknown> {
  return JSON.parse(readFileSync(join(sharedVectorsDir(), `client-${version}`, 'requests.json'), 'utf8')) as Record<string, unknown>;
}

const body = (value: unknown) => Buffer.from(JSON.stringify(value));

describe('requests of real clients', () => {
  for (const version of ['1.34.2', '1.78.3']) {
    it(`parses every request body Tailscale ${version} sent`, () => {
      const bodies = samples(version);
      let parsed = 0;
      for (const [what, value] of Object.entries(bodies)) {
        if (what.startsWith('POST /machine/register')) {
          const req = parseRegisterRequest(body(value));
          assert.match(req.nodeKey, /^nodekey:[0-9a-f]{64}$/, what);
          parsed++;
        } else if (what.startsWith('POST /machine/map')) {
          const req = parseMapRequest(body(value));
          assert.match(req.nodeKey, /^nodekey:[0-9a-f]{64}$/, what);
          assert.equal(req.compress, 'zstd', what);
          parsed++;
        }
      }
      assert.ok(parsed >= 4, `${version}: ${parsed} bodies`);
    });
  }

  it('reads a fresh 1.34.2 register: zero OldNodeKey is absent, the auth key is found among empty fields', () => {
    const req = parseRegisterRequest(body(samples('1.34.2')['POST /machine/register']));
    assert.equal(req.oldNodeKey, null);
    assert.equal(req.expiry, null, 'zero time = no expiry request');
    assert.notEqual(req.authKey, null);
    assert.equal(req.version, 51);
  });

  it('takes endpoints from a 1.34.2 streaming poll but not from its ReadOnly first poll', () => {
    const bodies = samples('1.34.2');
    const first = parseMapRequest(body(bodies['POST /machine/map (Stream, first, ReadOnly)']));
    assert.equal(first.readOnly, true);
    assert.equal(liveUpdateOf(first, 51)?.endpoints, undefined);
    // ReadOnly keeps the endpoints out, not the hostinfo: its NetInfo may be the only home-region report.
    assert.deepEqual(liveUpdateOf(first, 51)?.hostinfo, first.hostinfo);
    const reopened = parseMapRequest(body(bodies['POST /machine/map (Stream, with Endpoints)']));
    assert.ok((liveUpdateOf(reopened, 51)?.endpoints?.length ?? 0) > 0);
  });

  it('takes 1.78.3 endpoints from lite updates, and its logout register as a past expiry', () => {
    const bodies = samples('1.78.3');
    const stream = parseMapRequest(body(bodies['POST /machine/map (Stream, the only streaming poll)']));
    assert.equal(stream.stream, true);
    assert.equal(liveUpdateOf(stream, 109)?.endpoints, undefined, 'capver 109 streaming polls carry no endpoints');
    const lite = parseMapRequest(body(bodies['POST /machine/map (lite, OmitPeers, with Endpoints and NetInfo)']));
    const update = liveUpdateOf(lite, 109);
    assert.ok((update?.endpoints?.length ?? 0) > 0);
    assert.ok(update?.hostinfo?.NetInfo?.PreferredDERP !== undefined);
    const logout = parseRegisterRequest(body(bodies['POST /machine/register (logout at shutdown, ephemeral node)']));
    assert.ok(logout.expiry !== null && logout.expiry.getTime() < Date.now());
  });

  it('names the field of a malformed body', () => {
    assert.throws(() => parseMapRequest(Buffer.from('{"NodeKey":"nodekey:12"}')), /NodeKey: node key: want nodekey: followed by 64 hex digits/);
    assert.throws(() => parseRegisterRequest(Buffer.from('[]')), /body must be a JSON object/);
    assert.throws(() => parseMapRequest(Buffer.from('{"NodeKey":"nodekey:' + '1'.repeat(64) + '","Endpoints":"x"}')), /Endpoints must be a list/);
  });
});
