export { AuthConfigSchema, SCOPES, type AuthConfig, type ApiKeyConfig, type Scope } from '../config/schemas/auth.js';
export { ApiKeyError, hashKey, newKey, parseApiKeysEnv, KeyRing, type Principal } from './keys.js';
export {
  ACCESS_TABLE,
  accessFor,
  normalisePath,
  type Access,
  type AccessRule,
  type AccessDecision,
} from './scope-table.js';
export { authRefusalCounter } from './metrics.js';
export { readKeysFile } from './keys-file.js';
