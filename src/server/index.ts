/**
 * @module server
 * The composition root: wires config, store, state, one pipeline per tailnet (policy index ->
 * change router -> session hub), the control protocol, DERP and STUN, DNS, the admin API and
 * the listeners; owns start-up and orderly shutdown.
 * May import: every part. Imported only by cli, bench and tests.
 */
export { startServer, type RunningServer, type StartOptions, type AdminApiHandler, type AdminApiFactory } from './headway-server.js';
export { TailnetPipeline, type PipelineOptions } from './tailnet-pipeline.js';
export { TailnetPolicy, ALLOW_ALL_POLICY, tailnetFacts } from './tailnet-policy.js';
export { ServerErrors } from './errors.js';
