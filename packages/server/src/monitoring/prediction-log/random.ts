// A seeded PRNG for deterministic sampling in tests and reproducible runs (shared with @ferry/core).
export { seededRandom } from '@ferry/core';
