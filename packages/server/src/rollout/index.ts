// Safe rollout: canary and shadow traffic, deprecation, and hot model management.
export {
  parseAliases,
  deprecationOf,
  EMPTY_POLICY,
  type RolloutPolicy,
  type CanaryPolicy,
  type ShadowPolicy,
  type DeprecationPolicy,
} from '../serving/repository/rollout-policy.js';
export { RolloutManager, canaryBucket, type RolloutOptions } from './rollout-manager.js';
export { ModelManager, checkNames, fingerprint, type ChangeReport } from './model-manager.js';
export { ShadowStats, scoreDifference } from './shadow-stats.js';
export { watchRepository } from './watch.js';
