// Monitoring: Prometheus metrics.
export { Metrics } from './metrics.js';
