// Configuration: schema, loading and the environment names of every setting.
export { ConfigSchema, coreCount, workerCount, type FerryConfig } from './schema.js';
export { loadConfig, configLeaves, ConfigError, type ConfigSources } from './load.js';
export { redactConfig, redactUrlCredentials, REDACTED } from './redact.js';
