// Policy file mode: the file is read and validated at start (a broken file stops the start with
// its error), then watched; an edit that does not validate is logged and the last good policy
// stays in force.
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { Logger } from '../log/index.js';
import { HeadwayError } from '../util/headway-error.js';
import { ServerErrors } from './errors.js';

export class PolicyFileWatcher {
  readonly path: string;
  readonly #validate: (text: string) => unknown;
  readonly #logger: Logger;
  readonly #listeners = new Set<(text: string) => void>();
  #text: string;
  #watcher: FSWatcher | null = null;
  #debounce: NodeJS.Timeout | null = null;
  #reloading: Promise<void> = Promise.resolve();

  private constructor(path: string, text: string, validate: (text: string) => unknown, logger: Logger) {
    this.path = path;
    this.#text = text;
    this.#validate = validate;
    this.#logger = logger;
  }

  static async open(path: string, validate: (text: string) => unknown, logger: Logger): Promise<PolicyFileWatcher> {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      throw new HeadwayError(ServerErrors.POLICY_FILE, `policy file ${path}: cannot read it (${(err as Error).message})`, { cause: err });
    }
    try {
      validate(text);
    } catch (err) {
      throw new HeadwayError(ServerErrors.POLICY_FILE, `policy file ${path} is invalid: ${(err as Error).message}`, { cause: err });
    }
    const watcher = new PolicyFileWatcher(path, text, validate, logger);
    watcher.#watch();
    return watcher;
  }

  /** The last good policy text. */
  get text(): string {
    return this.#text;
  }

  onChange(listener: (text: string) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Re-reads the file now; resolves once the outcome (applied or rejected) is known. */
  reload(): Promise<void> {
    this.#reloading = this.#reloading.then(async () => {
      let text: string;
      try {
        text = await readFile(this.path, 'utf8');
      } catch (err) {
        this.#logger.error({ err, path: this.path }, 'policy file unreadable; keeping the last good policy');
        return;
      }
      if (text === this.#text) return;
      try {
        this.#validate(text);
      } catch (err) {
        this.#logger.error({ err: { message: (err as Error).message, code: (err as { code?: string }).code }, path: this.path }, 'policy file edit rejected; keeping the last good policy');
        return;
      }
      this.#text = text;
      this.#logger.info({ path: this.path }, 'policy reloaded');
      for (const listener of this.#listeners) listener(text);
    });
    return this.#reloading;
  }

  close(): void {
    this.#watcher?.close();
    this.#watcher = null;
    if (this.#debounce) clearTimeout(this.#debounce);
  }

  #watch(): void {
    // Editors replace files (rename), so watch the file and re-arm after each event.
    this.#watcher = watch(this.path, { persistent: false }, () => {
      if (this.#debounce) clearTimeout(this.#debounce);
      this.#debounce = setTimeout(() => {
        void this.reload();
        this.#watcher?.close();
        try {
          this.#watch();
        } catch (err) {
          this.#logger.error({ err, path: this.path }, 'cannot watch the policy file; reload it by restarting');
        }
      }, 100);
    });
  }
}
