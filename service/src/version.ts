import type { BuildInfo } from "./build-info";

/** The body of GET /version. */
export interface VersionInfo {
  name: string;
  version: string;
  commit: string;
  buildTime: string;
  buildTags: string[];
  node: string;
  location: string;
  heroku?: { dyno?: string; app?: string; release?: string; commit?: string };
}

/** Version info for this process: the build's stamp, Node's version, LOCATION and Heroku's dyno metadata when present. */
export function versionInfo(build: BuildInfo, location: string, env: NodeJS.ProcessEnv): VersionInfo {
  const { name, version, commit, buildTime, buildTags } = build;
  const info: VersionInfo = { name, version, commit, buildTime, buildTags, node: process.version, location };
  // Heroku sets DYNO on every dyno; the rest come with the runtime-dyno-metadata / build labs.
  const heroku = {
    dyno: env.DYNO,
    app: env.HEROKU_APP_NAME,
    release: env.HEROKU_RELEASE_VERSION,
    commit: env.HEROKU_BUILD_COMMIT ?? env.HEROKU_SLUG_COMMIT,
  };
  if (Object.values(heroku).some(Boolean)) info.heroku = JSON.parse(JSON.stringify(heroku));
  return info;
}

/** The `--version` text: one `key: value` line per field. */
export function versionText(info: VersionInfo): string {
  const lines = [
    `${info.name} ${info.version}`,
    `commit: ${info.commit}`,
    `build time: ${info.buildTime}`,
    `build tags: ${info.buildTags.join(",") || "(none)"}`,
    `node: ${info.node}`,
  ];
  if (info.location) lines.push(`location: ${info.location}`);
  return `${lines.join("\n")}\n`;
}
