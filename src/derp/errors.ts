// Error codes of the derp part. Protocol faults of a single client are not errors here: they
// close that connection and count a reason (`headway_derp_connections_closed_total{reason}`).
// These are for the operator: a bad DERP map, a bad listen address, bad options.
import { HeadwayError, registerErrors } from '../util/headway-error.js';

export const DerpErrors = registerErrors({
  mapInvalid: {
    code: 'HW_DERP_MAP_INVALID',
    status: 500,
    meaning: 'A DERP map (from a file, a URL or the embedded region) breaks a rule: a region id that is not a positive integer, a node name used twice, a missing HostName, a bad address or port.',
    fix: 'Correct the value named in the message in that file or at that URL; see derp.md and protocol.md §10.8 for the fields.',
  },
  mapParse: {
    code: 'HW_DERP_MAP_PARSE',
    status: 500,
    meaning: 'A DERP map file or URL body is not valid YAML or JSON, or is not an object with "Regions".',
    fix: 'Fix the syntax at the position named in the message.',
  },
  mapRead: {
    code: 'HW_DERP_MAP_READ',
    status: 500,
    meaning: 'A DERP map file listed in derp.paths could not be read.',
    fix: 'Check that the file exists and is readable by the server user, or remove it from derp.paths.',
  },
  mapFetch: {
    code: 'HW_DERP_MAP_FETCH',
    status: 502,
    meaning: 'A DERP map URL listed in derp.urls could not be fetched (network error, timeout, non-200 status or a body that is too large). The last good map from that URL stays in use.',
    fix: 'Check the URL and the network; the server retries at the next refresh (derp.update_frequency).',
  },
  mapEmpty: {
    code: 'HW_DERP_MAP_EMPTY',
    status: 500,
    meaning: 'The merged DERP map has no regions, so clients would have no relay at all.',
    fix: 'Enable the embedded DERP server (derp.server.enabled) or list at least one map in derp.paths or derp.urls.',
  },
  badServerUrl: {
    code: 'HW_DERP_BAD_SERVER_URL',
    status: 500,
    meaning: 'The embedded DERP region is derived from server_url, and server_url has no usable host or port.',
    fix: 'Set server_url to an absolute URL such as https://hw.example.com or https://hw.example.com:8443.',
  },
  badListenAddr: {
    code: 'HW_DERP_BAD_LISTEN_ADDR',
    status: 500,
    meaning: 'A listen address (derp.server.stun_listen_addr) is not of the form host:port, [v6]:port or :port.',
    fix: 'Write it like 0.0.0.0:3478, [::]:3478 or :3478.',
  },
  stunListen: {
    code: 'HW_DERP_STUN_LISTEN',
    status: 500,
    meaning: 'The STUN server could not bind its UDP socket.',
    fix: 'Check that the port is free and allowed for the server user (ports below 1024 need privileges).',
  },
  badOption: {
    code: 'HW_DERP_BAD_OPTION',
    status: 500,
    meaning: 'A DERP server option has a value outside its range (a negative interval, a zero queue depth, a burst smaller than one packet).',
    fix: 'Correct the option named in the message.',
  },
});

export type DerpErrorKey = keyof typeof DerpErrors;

export function derpError(key: DerpErrorKey, message: string, options?: { cause?: unknown }): HeadwayError {
  return new HeadwayError(DerpErrors[key], message, options);
}
