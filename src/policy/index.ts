/**
 * @module policy
 * Owns Tailscale's policy language: HuJSON parsing with located errors (parse.ts), validation,
 * compilation to a topology-independent rule list (compile.ts), the PolicyIndex that binds it
 * to a tailnet's node facts through identity classes (index/), HA primary-route election
 * (primary-routes.ts), the policy's tests and sshTests (tests.ts), and the offline
 * compile/check/explain functions the CLI wraps (offline.ts).
 * May import: util, tailcfg (types), model (types). Must never: read the store, do I/O, log
 * on a hot path, or know about sessions; callers feed it facts and ask it questions.
 * This file is the part's only door: other parts import from here, never from the files.
 */
export { PolicyError, PolicyErrors, type PolicyErrorKind, type PolicyErrorLocation } from './errors.js';
export { parsePolicy, type ParseOptions } from './parse.js';
export type { Policy } from './syntax.js';
export { compilePolicy, compilePolicyText, type CompiledPolicy } from './compile.js';
export type { ModelNode, ModelUser, NodeFacts, TailnetFacts, TailnetSettings, UserFacts, UserRole } from './facts.js';
export { nodeFactsFromModel, settingsFromModel, tailnetFactsFromModel, userFactsFromModel } from './facts.js';
export { PolicyIndex, type PolicyIndexOptions } from './index/policy-index.js';
export type { FilterFormOptions } from './index/filter-template.js';
export type { TagDecision, TagOwnerContext } from './index/selections.js';
export type { PeerView, SelfView } from './index/views.js';
export { PrimaryRouteTable, type PrimaryChange, type RouterState } from './primary-routes.js';
export { runPolicyTests, assertTestsPass, type TestFailure, type TestReport } from './tests.js';
export {
  checkPolicy,
  withDevicesForTests,
  explainFacts,
  ALLOW_ALL_POLICY_TEXT,
  compileTopology,
  explain,
  type CheckResult,
  type CompileOptions,
  type CompileResult,
  type ExplainMatch,
  type ExplainResult,
  type NodeOutput,
  type PeerOutput,
  type SelfOutput,
} from './offline.js';
export { factsFromTopology, settingsFromTopology, type Topology, type TopologyNode, type TopologyTailnet, type TopologyUser } from './topology.js';
export { EMPTY_POLICY_DELTA, type PolicyDelta } from './index/delta.js';
export { diffIndexes } from './index/diff.js';
