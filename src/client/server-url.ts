// The control server URL as the client dials it: scheme, host, port, and the Host header.
import { HeadwayError } from '../util/headway-error.js';
import { ClientErrors } from './errors.js';

export interface ServerAddress {
  readonly secure: boolean;
  /** Host name or IP to connect to (IPv6 without brackets). */
  readonly hostname: string;
  readonly port: number;
  /** Value of the Host header and HTTP/2 :authority (`host[:port]`). */
  readonly authority: string;
  /** The URL as given, without a trailing slash. */
  readonly base: string;
}

export function parseServerUrl(serverUrl: string): ServerAddress {
  let url: URL;
  try {
    url = new URL(serverUrl);
  } catch {
    throw new HeadwayError(ClientErrors.BAD_SERVER_URL, `client: server URL ${JSON.stringify(serverUrl)} is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new HeadwayError(ClientErrors.BAD_SERVER_URL, `client: server URL ${JSON.stringify(serverUrl)}: scheme ${url.protocol} is not http: or https:`);
  }
  const secure = url.protocol === 'https:';
  const port = url.port === '' ? (secure ? 443 : 80) : Number(url.port);
  const hostname = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  return { secure, hostname, port, authority: url.host, base: `${url.protocol}//${url.host}` };
}
