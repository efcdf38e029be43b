// Durations as people write them in config files and on the command line: Go's syntax
// (`1h30m`, `500ms`, `90s`) plus `d` for days and `w` for weeks, which headscale users write
// for key expiry. A bare `0` means zero.

const UNIT_MS: Readonly<Record<string, number>> = {
  ns: 1e-6,
  us: 1e-3,
  'µs': 1e-3,
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

const PART = /([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h|d|w)/y;

export class DurationParseError extends Error {
  override name = 'DurationParseError';
}

/** Parses a duration into milliseconds. */
export function parseDurationMs(text: string): number {
  const trimmed = text.trim();
  if (trimmed === '0') return 0;
  if (trimmed === '') throw new DurationParseError('empty duration (want e.g. "90d", "24h", "30m")');
  let total = 0;
  PART.lastIndex = 0;
  while (PART.lastIndex < trimmed.length) {
    const start = PART.lastIndex;
    const match = PART.exec(trimmed);
    if (match === null) {
      throw new DurationParseError(
        `${JSON.stringify(text)} is not a duration: unexpected ${JSON.stringify(trimmed.slice(start, start + 8))} (units: ms, s, m, h, d, w)`,
      );
    }
    total += Number(match[1]) * UNIT_MS[match[2]!]!;
  }
  return total;
}

/** Formats milliseconds the way Go prints a time.Duration (`1h0m0s`), with days folded into hours. */
export function formatDurationMs(ms: number): string {
  if (ms === 0) return '0s';
  if (ms < 1000) return `${ms}ms`;
  const totalSeconds = ms / 1000;
  const hours = Math.floor(totalSeconds / 3600);
  const minutes = Math.floor((totalSeconds % 3600) / 60);
  const seconds = totalSeconds % 60;
  const secondsText = Number.isInteger(seconds) ? String(seconds) : seconds.toFixed(3).replace(/0+$/, '');
  if (hours > 0) return `${hours}h${minutes}m${secondsText}s`;
  if (minutes > 0) return `${minutes}m${secondsText}s`;
  return `${secondsText}s`;
}
