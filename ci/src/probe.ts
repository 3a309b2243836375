/**
 * The smoke test's probes. `smoke` copies this file into a small client container next to the running service and
 * node runs it as is, so it must stay self-contained (no imports) and use only erasable TypeScript syntax.
 */

/** What the service must report for the smoke test to pass. */
export interface SmokeExpectations {
  version: string;
  buildTags: string[];
  /** Entries at the root of the poetry data image, files and directories; dot-files are not expected to be listed. */
  poems: string[];
}

/** A probe failed; the message says which probe, what was expected and what came back. */
export class ProbeFailure extends Error {}

/** Where `smoke` puts this file in the client container (`.mts`: Node strips its types and loads it as a module). */
export const PROBE_PATH = "/probe/probe.mts";

/** The shell-free entry point: `node --input-type=module --eval <PROBE_MAIN> <baseUrl> <expectations as JSON>`. */
export const PROBE_MAIN = `import { main } from "${PROBE_PATH}"; await main(process.argv.slice(1));`;

interface Answer {
  status: number;
  body: string;
}

/**
 * Probes `/healthz`, `/poetry/`, `/version` and `/metrics` in turn. Returns one line per passed probe; throws a
 * {@link ProbeFailure} at the first that fails.
 */
export async function runProbes(baseUrl: string, expected: SmokeExpectations): Promise<string[]> {
  const passed: string[] = [];
  const probe = async (path: string, accept: string, verify: (answer: Answer) => string | undefined) => {
    let answer: Answer;
    try {
      const response = await fetch(new URL(path, baseUrl), { headers: { Accept: accept } });
      answer = { status: response.status, body: await response.text() };
    } catch (err) {
      // fetch's own message is just "fetch failed"; the cause says why (ECONNREFUSED, ENOTFOUND…).
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      const why = cause?.code ?? cause?.message;
      throw new ProbeFailure(`${path}: request failed: ${(err as Error).message}${why ? ` (${why})` : ""}`);
    }
    const problem = answer.status === 200 ? verify(answer) : "expected status 200";
    if (problem) throw new ProbeFailure(`${path}: ${problem}; got ${answer.status}: ${answer.body.slice(0, 500)}`);
    passed.push(`${path}: ok`);
  };

  await probe("/healthz", "*/*", () => undefined);
  await probe("/poetry/", "application/json", ({ body }) => {
    const expectedNames = expected.poems.map((name) => name.replace(/\/$/, "")).filter((name) => !name.startsWith("."));
    if (expectedNames.length === 0) return "the poetry image has no entries to expect";
    const listing = parseJson(body) as { directories?: unknown; poems?: unknown } | undefined;
    const listed = new Set(
      [listing?.directories, listing?.poems].flatMap((names) => (Array.isArray(names) ? names : [])),
    );
    const missing = expectedNames.filter((name) => !listed.has(name));
    return missing.length ? `expected the listing to include ${missing.join(", ")}` : undefined;
  });
  await probe("/version", "application/json", ({ body }) => {
    const info = parseJson(body) as { version?: unknown; buildTags?: unknown } | undefined;
    const tags = Array.isArray(info?.buildTags) ? [...info.buildTags].sort().join(",") : undefined;
    const wantTags = [...expected.buildTags].sort().join(",");
    if (info?.version !== expected.version) return `expected version ${expected.version}`;
    return tags === wantTags ? undefined : `expected build tags [${wantTags}]`;
  });
  await probe("/metrics", "text/plain", ({ body }) =>
    /^# (HELP|TYPE) /m.test(body) ? undefined : "expected Prometheus text exposition",
  );
  return passed;
}

/** Runs the probes for `[baseUrl, expectationsJson]`, printing what passed; on failure prints why and exits 1. */
export async function main(args: string[]): Promise<void> {
  const [baseUrl, expectations] = args;
  try {
    if (!baseUrl || !expectations) throw new ProbeFailure("usage: <base URL> <expectations JSON>");
    for (const line of await runProbes(baseUrl, JSON.parse(expectations) as SmokeExpectations)) console.log(line);
  } catch (err) {
    console.error((err as Error).message);
    process.exitCode = 1;
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
