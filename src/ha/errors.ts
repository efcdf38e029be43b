import { HeadwayError, registerErrors } from '../util/headway-error.js';

export const HaErrors = registerErrors({
  SECRET_MISMATCH: {
    code: 'HW_HA_SECRET_MISMATCH', status: 500,
    meaning: 'The shared private keys in the database were encrypted with a different ha.secret than this instance has.',
    fix: 'Give every instance the same ha.secret (the one the first instance started with).',
  },
  UNAVAILABLE: {
    code: 'HW_HA_UNAVAILABLE', status: 503,
    meaning: 'The instance could not reach PostgreSQL to join the other instances (lease, change log or keys).',
    fix: 'Check that PostgreSQL is up and reachable with the database settings; the instance retries on its own once running.',
  },
});

export function haError(spec: (typeof HaErrors)[keyof typeof HaErrors], message: string, cause?: unknown): HeadwayError {
  return new HeadwayError(spec, message, cause === undefined ? undefined : { cause });
}
