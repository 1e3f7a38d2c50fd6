// Monitoring: Prometheus metrics.
export { Metrics } from '../metrics/metrics.js';
