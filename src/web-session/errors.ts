// Errors of browser sessions: sign-in links, session cookies and CSRF tokens.
import { HeadwayError, registerErrors } from '../util/headway-error.js';

export const WebSessionErrors = registerErrors({
  linkInvalid: {
    code: 'HW_WEBSESSION_LINK_INVALID',
    status: 401,
    meaning: 'A console sign-in link is unknown, was already used, or has expired (links live a few minutes and work once).',
    fix: 'Print a fresh link with `headway admin login-link` and open it promptly.',
  },
  sessionInvalid: {
    code: 'HW_WEBSESSION_INVALID',
    status: 401,
    meaning: 'The console session cookie is unknown, signed out, idle for longer than the idle timeout, or past its maximum age.',
    fix: 'Sign in to the console again.',
  },
  csrfMissing: {
    code: 'HW_WEBSESSION_CSRF',
    status: 403,
    meaning: 'A change was sent with a console session cookie but without the matching X-CSRF-Token header.',
    fix: 'Send the csrf_token of GET /api/v1/session in the X-CSRF-Token header of every POST, PUT, PATCH and DELETE.',
  },
  forbidden: {
    code: 'HW_WEBSESSION_FORBIDDEN',
    status: 403,
    meaning: 'The signed-in console user is not an admin; members may only read their own devices.',
    fix: 'Ask an admin to give your user an admin role (PATCH /api/v1/users/{user}), or use an API key.',
  },
  userUnknown: {
    code: 'HW_WEBSESSION_USER_UNKNOWN',
    status: 404,
    meaning: 'A sign-in link was requested for a user that does not exist in the tailnet.',
    fix: 'Check the user name with `headway users list`.',
  },
});

export function webSessionError(spec: (typeof WebSessionErrors)[keyof typeof WebSessionErrors], message: string): HeadwayError {
  return new HeadwayError(spec, message);
}
