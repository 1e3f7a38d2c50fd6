// The bench's seeded PRNG is @ferry/core's, so every run sends the same request bodies.
export { seededRandom as mulberry32 } from '@ferry/core';
