import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CAPVER_OF_RELEASE, CapVer, CURRENT_CAPVER, MIN_CAPVER } from './capver.js';

describe('capability versions', () => {
  it('names only gates the server can meet between the oldest and newest client it knows', () => {
    for (const [name, value] of Object.entries(CapVer)) {
      assert.ok(value <= CURRENT_CAPVER, `${name} = ${value} is newer than CURRENT_CAPVER`);
    }
    assert.ok(MIN_CAPVER < CURRENT_CAPVER);
  });

  it('maps releases to non-decreasing capability versions', () => {
    const entries = Object.entries(CAPVER_OF_RELEASE).sort(([a], [b]) => Number(a.split('.')[1]) - Number(b.split('.')[1]));
    let last = 0;
    for (const [release, capver] of entries) {
      assert.ok(capver >= last, `${release} -> ${capver} goes backwards`);
      last = capver;
    }
    assert.equal(CAPVER_OF_RELEASE['1.34'], MIN_CAPVER, 'Tailscale 1.34 is the oldest supported client');
    assert.equal(CAPVER_OF_RELEASE['1.78'], 109);
  });
});
