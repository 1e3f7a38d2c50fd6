// Outgoing webhooks: Standard Webhooks signing shared by job callbacks and alerts.
export { verifyWebhook, webhookSigner, type StandardWebhookHeaders, type WebhookSigner } from './standard-webhooks.js';
