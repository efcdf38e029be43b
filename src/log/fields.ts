// Log field names, snake_case, units as suffixes. One place so every part spells them alike.
export const F = {
  part: 'part',
  tailnet: 'tailnet',
  node: 'node',
  nodeId: 'node_id',
  machine: 'machine',
  capver: 'capver',
  session: 'session',
  requestId: 'request_id',
  remote: 'remote',
  durationMs: 'duration_ms',
  bytes: 'bytes',
  recipients: 'recipients',
  err: 'err',
  path: 'path',
  listen: 'listen',
  dataDir: 'data_dir',
} as const;
