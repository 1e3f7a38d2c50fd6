// Capacity and cost planning: `ferry bench` profiles, `ferry cost` estimates.
export { runBench, benchBodies, BenchError, type BenchOptions } from './bench.js';
export {
  estimateCost,
  formatCostReport,
  CostError,
  PATTERNS,
  type CostInput,
  type CostReport,
  type Estimate,
  type Pattern,
} from './cost.js';
export { ProfileSchema, findKnee, type CapacityProfile, type Level, type Knee } from './profile.js';
export { loadPrices, parsePrices, PricesError, PricesSchema, DEFAULT_PRICES_PATH, type Prices } from './prices.js';
export { benchCommand, costCommand, readProfile, ProfileError } from './run-capacity.js';
