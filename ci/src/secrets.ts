import type { Secret } from "@dagger.io/dagger";

/**
 * Returns the secrets a step needs, or throws naming every one that is missing (as its command-line flag), so a
 * misconfigured run fails before any work. Only names ever appear in the message, never values.
 */
export function requireSecrets<K extends string>(step: string, secrets: Record<K, Secret | undefined>): Record<K, Secret> {
  const missing = Object.entries(secrets)
    .filter(([, secret]) => !secret)
    .map(([name]) => `--${name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`);
  if (missing.length > 0) {
    throw new Error(`${step}: missing secret ${missing.join(", ")}; pass each as env://NAME, file://PATH or cmd://COMMAND`);
  }
  return secrets as Record<K, Secret>;
}
