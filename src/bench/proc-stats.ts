// What /proc says about a process on this machine: its CPU time and resident memory. The
// network benchmarks read the server's process this way, so any server (ours or another) can be
// measured from the outside when it runs here.
import { readFile } from 'node:fs/promises';

/** Clock ticks per second of /proc/<pid>/stat (USER_HZ, 100 on Linux). */
export const CLOCK_TICKS = 100;

/** utime + stime of a process, in clock ticks. */
export async function cpuTicks(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

/** Resident set size in MB. */
export async function rssMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const match = /VmRSS:\s+(\d+) kB/.exec(status);
  return match ? Number(match[1]) / 1024 : 0;
}

/** Measures a process's CPU over a stretch of time; null readings when there is no pid. */
export class CpuMeter {
  readonly #pid: number | null;
  #startTicks = 0;
  #startMs = 0;

  constructor(pid: number | null) {
    this.#pid = pid;
  }

  async start(): Promise<void> {
    this.#startMs = performance.now();
    if (this.#pid !== null) this.#startTicks = await cpuTicks(this.#pid);
  }

  /** CPU seconds and % of one core since start(). */
  async read(): Promise<{ cpuS: number | null; pct: number | null; wallS: number }> {
    const wallS = (performance.now() - this.#startMs) / 1000;
    if (this.#pid === null) return { cpuS: null, pct: null, wallS };
    const cpuS = ((await cpuTicks(this.#pid)) - this.#startTicks) / CLOCK_TICKS;
    return { cpuS, pct: wallS > 0 ? (cpuS / wallS) * 100 : 0, wallS };
  }
}
