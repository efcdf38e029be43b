import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, configFromText } from './index.js';

function fromYaml(text: string) {
  return configFromText(text, { source: 'config.yaml', baseDir: '/etc/headway', cwd: '/srv' });
}

function problemsOf(text: string): readonly string[] {
  try {
    fromYaml(text);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return assert.fail('expected a ConfigError');
}

const POSTGRES = 'database: { type: postgres, postgres: { host: 127.0.0.1, name: headway } }\n';

describe('ha config', () => {
  it('is off by default', () => {
    assert.equal(fromYaml('').ha, null);
    assert.equal(fromYaml('ha: { enabled: false }').ha, null);
  });

  it('reads every key with PostgreSQL', () => {
    const config = fromYaml(`${POSTGRES}ha:
  enabled: true
  instance_id: hw-1
  advertise_url: http://10.0.0.1:8080
  secret: 0123456789abcdef0123
  lease_duration: 6s
  heartbeat_interval: 1s
`);
    assert.deepEqual(config.ha, {
      instanceId: 'hw-1', advertiseUrl: 'http://10.0.0.1:8080/', secret: '0123456789abcdef0123', leaseDurationMs: 6_000, heartbeatIntervalMs: 1_000,
    });
  });

  it('defaults the instance id and the lease timings', () => {
    const ha = fromYaml(`${POSTGRES}ha: { enabled: true, secret: 0123456789abcdef }`).ha;
    assert.ok(ha !== null && ha.instanceId.length > 0);
    assert.equal(ha.leaseDurationMs, 10_000);
    assert.equal(ha.heartbeatIntervalMs, 2_000);
  });

  it('refuses HA on SQLite with a clear error', () => {
    const problems = problemsOf('ha: { enabled: true, secret: 0123456789abcdef }');
    assert.deepEqual(problems, ['config.yaml: ha.enabled: high availability needs database.type postgres (several instances share one PostgreSQL; SQLite is a single-instance database)']);
  });

  it('refuses a missing secret and a heartbeat slower than half the lease', () => {
    const problems = problemsOf(`${POSTGRES}ha: { enabled: true, lease_duration: 4s, heartbeat_interval: 3s }`);
    assert.equal(problems.length, 2);
    assert.match(problems[0]!, /ha\.secret: must be at least 16 characters/);
    assert.match(problems[1]!, /ha\.heartbeat_interval: 3s must be above 0 and at most half of ha\.lease_duration \(4s\)/);
  });
});
