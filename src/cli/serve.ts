// headway serve: runs the server in this process until SIGINT or SIGTERM, then shuts it down in
// order (listeners closed, in-flight writes finished, live fields flushed, store closed). A
// second signal during shutdown exits at once. Logging is the server's: it prints where it
// listens and where its data is.
import type { Cli } from './program.js';

export function registerServeCommand({ program, action }: Cli): void {
  program.command('serve')
    .description('run the Headway server (config from --config or HEADWAY_CONFIG; built-in defaults otherwise)')
    .action(action(async (ctx) => {
      const [{ loadConfig }, { startServer }, { createApiHandler }] = await Promise.all([
        import('../config/index.js'),
        import('../server/index.js'),
        import('../api/index.js'),
      ]);
      const config = loadConfig({ path: ctx.globals.config, env: ctx.io.env, cwd: ctx.io.cwd });
      const server = await startServer(config, { api: (deps) => createApiHandler(deps) });
      for (const warning of config.warnings) server.logger.warn({ config: config.source }, warning);
      const signal = await new Promise<NodeJS.Signals>((resolve) => {
        process.once('SIGINT', () => resolve('SIGINT'));
        process.once('SIGTERM', () => resolve('SIGTERM'));
      });
      const force = (): void => {
        server.logger.warn('second signal: exiting without finishing the shutdown');
        process.exit(130);
      };
      process.once('SIGINT', force);
      process.once('SIGTERM', force);
      server.logger.info({ signal }, 'signal received, shutting down');
      await server.close();
      process.off('SIGINT', force);
      process.off('SIGTERM', force);
    }));
}
