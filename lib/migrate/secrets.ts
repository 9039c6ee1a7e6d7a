/**
 * Recognising secrets in a config.toml's runner settings, so that migrate never writes one into
 * the YAML (nor the worker's user data): what looks secret becomes an SSM parameter the worker
 * reads at boot (runnerSecrets). False positives cost an SSM parameter; false negatives leak, so
 * the rules lean towards "secret".
 */

/** Values that are credentials whatever their key. */
const SECRET_VALUE: RegExp[] = [
  /\bgl(rt|pat|dt|ptt|cbt|imt|soat|ffct|agent|oas|wt|rtr)-[A-Za-z0-9_.-]{8,}/, // GitLab tokens
  /\bGR1348941[A-Za-z0-9_-]{8,}/, // GitLab runner registration tokens
  /\b(AKIA|ASIA)[A-Z0-9]{16}\b/, // AWS access key ids
  /-----BEGIN [A-Z ]*PRIVATE KEY-----/,
  /\b(ghp|gho|ghs|ghu|github_pat)_[A-Za-z0-9_]{20,}/,
  /\bxox[abposr]-[A-Za-z0-9-]{10,}/,
  /\bnpm_[A-Za-z0-9]{20,}/,
  // credentials in a URL: https://user:password@host (https://gitlab-ci-token:${CI_JOB_TOKEN}@ is a variable, not a secret)
  /[a-z][a-z0-9+.-]*:\/\/[^/\s:@]+:(?!\$)[^/\s@]+@/i,
  /"(auth|password|identitytoken|registrytoken)"\s*:\s*"[^"]+"/i, // docker config.json
  // a password on a command line: --password X, --token=X, redis-server --requirepass X, --api-key X
  /--[a-z0-9-]*(pass|passwd|password|secret|token|api-?key)[= ]\s*["']?[^\s"'$-][^\s"']*/i,
  /\bcurl\b[^\n]*\s(-u|--user|--proxy-user)(\s+|=)["']?[^\s:"'$-][^\s:"']*:[^\s"'$][^\s"']+/i, // curl -u user:password
  /\b(docker|podman|helm|oras)\s+(registry\s+)?login\b[^\n]*\s-p\s*["']?[^\s"'$-]/i,
  /\b(password|passwd|pwd|secret|token|api[_-]?key)\s*[=:]\s*["']?[^\s"'${}]{6,}/i,
];

/**
 * Environment variable names whose value is a credential: REGISTRY_PASSWORD, NEXUS_PASS, DB_PWD,
 * NPM_TOKEN, SIGNING_KEY, GH_PAT, SENTRY_DSN, ARTIFACTORY_CREDS ...
 */
const SECRET_NAME = /(PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|CREDENTIAL|AUTH_?CONFIG|_AUTH$|^AUTH_|(^|_)PASS($|_)|_PWD$|_KEY$|(^|_)(PAT|CREDS?|DSN)$)/i;

/** A value no credential has: a switch (SECRET_DETECTION_DISABLED=true). Numbers can be PINs: they stay secret. */
const PLAIN_VALUE = /^(true|false|yes|no|on|off|0|1)$/i;

export function looksSecretValue(value: string): boolean {
  return SECRET_VALUE.some((re) => re.test(value));
}

/** A list of strings (a command, an entrypoint) that holds a secret, whole or split over items (["--requirepass", "x"]). */
export function looksSecretList(values: readonly string[]): boolean {
  return values.some(looksSecretValue) || looksSecretValue(values.join(' '));
}

/**
 * An `environment` entry "NAME=VALUE" whose value is a credential. DOCKER_AUTH_CONFIG that only
 * names credential helpers (`{"credHelpers": {...}}`, `{"credsStore": ...}`) holds none.
 */
export function isSecretEnvEntry(entry: string): boolean {
  const eq = entry.indexOf('=');
  if (eq <= 0) return looksSecretValue(entry);
  const name = entry.slice(0, eq);
  const value = entry.slice(eq + 1);
  if (value === '' || /^\$\{?[A-Za-z_][A-Za-z0-9_]*\}?$/.test(value)) return false; // empty, or another variable
  if (name === 'DOCKER_AUTH_CONFIG') {
    try {
      const parsed = JSON.parse(value) as Record<string, unknown>;
      if (parsed && typeof parsed === 'object' && Object.keys(parsed).every((k) => k === 'credHelpers' || k === 'credsStore')) return false;
    } catch {
      /* not JSON: treat as secret */
    }
    return true;
  }
  return (SECRET_NAME.test(name) && !PLAIN_VALUE.test(value)) || looksSecretValue(value);
}
