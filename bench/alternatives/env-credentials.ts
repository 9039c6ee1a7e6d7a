/**
 * Bench-only (bench/bundles.ts, alternative "a"): stands in for @aws-sdk/credential-provider-node
 * when the SDK-client webhook is bundled with credentials from the environment only (what Lambda
 * provides), which keeps the SSO/STS nested clients of the default chain out of the bundle.
 */
export const defaultProvider = () => async () => {
  const accessKeyId = process.env.AWS_ACCESS_KEY_ID;
  const secretAccessKey = process.env.AWS_SECRET_ACCESS_KEY;
  if (!accessKeyId || !secretAccessKey) throw new Error('AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set');
  return { accessKeyId, secretAccessKey, ...(process.env.AWS_SESSION_TOKEN ? { sessionToken: process.env.AWS_SESSION_TOKEN } : {}) };
};
