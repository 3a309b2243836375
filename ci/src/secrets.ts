import type { Secret } from "@dagger.io/dagger";

/** The secrets of `T`, each known to be given. */
type Given<T> = { [K in keyof T]: Exclude<T[K], undefined> };

/**
 * Returns the secrets a step needs, or throws naming every one that is missing (as its command-line flag), so a
 * misconfigured run fails before any work. Only names ever appear in the message, never values.
 */
export function requireSecrets<T extends Record<string, Secret | undefined>>(
  step: string,
  secrets: T,
): Required<Given<T>> {
  const missing = Object.entries(secrets)
    .filter(([, secret]) => !secret)
    .map(([name]) => `--${name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`);
  if (missing.length > 0) {
    throw new Error(
      `${step}: missing secret ${missing.join(", ")}; pass each as env://NAME, file://PATH or cmd://COMMAND`,
    );
  }
  return secrets as Required<Given<T>>;
}
