// Reading a JSON request body with a size limit. A body over the limit is refused before it is
// buffered (Content-Length) or as soon as it grows past it (chunked), and the connection is
// closed after the answer so the rest is never read.
import type { IncomingMessage } from 'node:http';
import { ApiErrors, apiError } from './errors.js';

export const MAX_BODY_BYTES = 1024 * 1024;
/** A body still arriving after this long is abandoned (the listener itself has no request timeout: map polls are long). */
export const BODY_TIMEOUT_MS = 30_000;

/** Thrown with 413; the handler closes the connection after answering. */
export function bodyTooLarge(): Error {
  return apiError(ApiErrors.bodyTooLarge, `request body: larger than ${MAX_BODY_BYTES} bytes (1 MiB), the admin API's limit`);
}

/** The declared length, or undefined for a chunked body. Throws 413 above the limit. */
export function checkDeclaredLength(req: IncomingMessage, limit = MAX_BODY_BYTES): void {
  const header = req.headers['content-length'];
  if (header === undefined) return;
  const length = Number(header);
  if (Number.isFinite(length) && length > limit) throw bodyTooLarge();
}

/** Reads the whole body as UTF-8 text; '' when there is none. */
export function readBodyText(req: IncomingMessage, limit = MAX_BODY_BYTES, timeoutMs = BODY_TIMEOUT_MS): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const timer = setTimeout(() => {
      finish(apiError(ApiErrors.bodyTimeout, `request body: not complete after ${timeoutMs / 1000} s`));
    }, timeoutMs);
    timer.unref();
    const finish = (err: Error | null, text?: string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('aborted', onAborted);
      if (err) reject(err);
      else resolve(text ?? '');
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        // Stop buffering; keep draining so the answer can be written, then the socket closes.
        chunks.length = 0;
        req.resume();
        finish(bodyTooLarge());
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => finish(null, Buffer.concat(chunks).toString('utf8'));
    const onError = (err: Error) => finish(err);
    const onAborted = () => finish(new Error('request aborted by the client'));
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('aborted', onAborted);
  });
}

/** Parses the body as JSON; an empty body is `{}` (endpoints whose fields are all optional). */
export function parseJsonBody(text: string, contentType: string | undefined): unknown {
  if (text.trim() === '') return {};
  const mediaType = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  if (mediaType !== 'application/json' && !mediaType.endsWith('+json')) {
    throw apiError(
      ApiErrors.unsupportedMediaType,
      `request body: Content-Type ${contentType === undefined ? 'is missing' : JSON.stringify(contentType)}; want application/json`,
    );
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw apiError(ApiErrors.invalidJson, `request body: not valid JSON (${reason})`);
  }
}
