// For tests of admin-scoped routes (drift, management): one key holding every scope.
import { hashKey } from '../../server/dist/auth/keys.js';
import { SCOPES, type ApiKeyConfig } from '../../server/dist/config/schemas/auth.js';

export const TEST_ADMIN_SECRET = 'test-admin-key-0123456789abcdef';
export const testAdminKey: ApiKeyConfig = {
  id: 'test-admin',
  sha256: hashKey(TEST_ADMIN_SECRET),
  scopes: [...SCOPES],
  models: [],
  rateLimitMax: 0,
};
/** Config overrides that turn keys on with the all-scopes test key. */
export const withTestAdminKey = (more: ApiKeyConfig[] = []): Record<string, unknown> => ({
  'auth.keys': [testAdminKey, ...more],
});
export const adminHeaders = { authorization: `Bearer ${TEST_ADMIN_SECRET}` } as const;
