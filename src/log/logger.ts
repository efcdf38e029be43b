// pino, configured once per process. Parts take a child logger with `part` set; secrets are
// redacted by path so a stray object in a log call cannot leak a key or token.
import { pino, type Logger, type LoggerOptions } from 'pino';

export type { Logger };
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';
export type LogFormat = 'json' | 'pretty' | 'auto';

export interface LoggerConfig {
  level: LogLevel;
  format: LogFormat;
}

export const REDACT_PATHS = [
  'authorization',
  'req.headers.authorization',
  'headers.authorization',
  '*.authKey',
  '*.AuthKey',
  '*.apiKey',
  '*.secret',
  '*.password',
  '*.pass',
  'key',
  '*.privateKey',
];

export function createLogger(config: LoggerConfig, destination?: NodeJS.WritableStream): Logger {
  const pretty = config.format === 'pretty' || (config.format === 'auto' && process.stdout.isTTY === true && destination === undefined);
  const options: LoggerOptions = {
    level: config.level,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    base: undefined,
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  if (pretty) {
    return pino({ ...options, transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l' } } });
  }
  return destination ? pino(options, destination as pino.DestinationStream) : pino(options);
}

/** A logger that drops everything: for tests and benchmarks that do not read logs. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
