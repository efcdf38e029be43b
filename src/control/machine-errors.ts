// Error codes of the /machine/* handlers (register, map and the smaller endpoints).
import { registerErrors } from '../util/headway-error.js';

export const MachineErrors = registerErrors({
  BAD_REQUEST: {
    code: 'HW_MACHINE_BAD_REQUEST', status: 400,
    meaning: 'A /machine request body was not the JSON the endpoint expects (bad JSON, wrong field type, malformed key).',
    fix: 'Real clients never send this; if you wrote the client, check the field named in the message.',
  },
  NODE_NOT_FOUND: {
    code: 'HW_MACHINE_NODE_NOT_FOUND', status: 404,
    meaning: 'A map or logout request named a node key that no node of this machine holds (deleted node, or a machine key that does not own it).',
    fix: 'Log the device in again (`tailscale up`); a deleted node must register anew.',
  },
  EXPIRY_EXTENSION: {
    code: 'HW_MACHINE_EXPIRY_EXTENSION', status: 400,
    meaning: 'A client asked to move its key expiry later; only an earlier expiry may be requested.',
    fix: 'Extend a key from the server: `headway nodes expire` / the API.',
  },
  RATE_LIMITED: {
    code: 'HW_MACHINE_RATE_LIMITED', status: 429,
    meaning: 'Too many registration requests from one source address, or with one pre-auth key, within a minute (limits.registrations_per_minute_per_address / _per_key).',
    fix: 'Clients retry by themselves. For mass enrolment behind one address, raise the limits or spread the joins out.',
  },
  UNSUPPORTED_VERSION: {
    code: 'HW_MACHINE_UNSUPPORTED_VERSION', status: 400,
    meaning: 'The request carried a capability version older than Headway supports.',
    fix: 'Upgrade the Tailscale client to 1.34 or newer.',
  },
});
