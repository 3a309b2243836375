import { readFileSync } from "node:fs";
import { Agent, createServer, get, type Server } from "node:http";
import { connect } from "node:net";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { kill, report, type Service, serviceDir, sleep, startService } from "./harness";

const POEM = "small-hours.txt";
const POEM_BYTES = readFileSync(join(serviceDir, "sample-poetry", POEM)).length;
const DRAIN_TIMEOUT_S = 10;
// The slow requests: the AWS page waits this long for the (stub) metadata service's token. SIGTERM and the pipelined
// /readyz (100 ms later) must come while they wait, and the lookups after it must fit the page's 3 s deadline: under
// load the stub, in this busy process, answered them 0.2-0.7 s after a 1.5 s token, so 1.2 s leaves ~1 s each side.
const TOKEN_DELAY_MS = 1200;

type Outcome = "complete" | "refused" | "closed before a response" | "truncated" | `status ${number}`;

let service: Service | undefined;
let imds: Server | undefined;
afterAll(() => {
  kill(service);
  imds?.closeAllConnections();
  imds?.close();
});

/** A loopback IMDSv2 stand-in that holds every token request for TOKEN_DELAY_MS. */
async function slowImds(): Promise<{ url: string; tokenRequests: () => number }> {
  let tokens = 0;
  imds = createServer((req, res) => {
    if (req.method === "PUT") {
      tokens++;
      setTimeout(() => res.end("token"), TOKEN_DELAY_MS);
    } else {
      res.end(`value of ${req.url}`);
    }
  });
  await new Promise<void>((resolve) => imds!.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${(imds.address() as { port: number }).port}`, tokenRequests: () => tokens };
}

/** One GET through `agent`, classified by how it ended. */
function request(port: number, path: string, agent: Agent | false): Promise<{ outcome: Outcome; body: string }> {
  return new Promise((resolve) => {
    let responded = false;
    const req = get({ host: "127.0.0.1", port, path, agent }, (res) => {
      responded = true;
      let body = "";
      res.setEncoding("latin1");
      res.on("data", (c: string) => (body += c));
      res.on("close", () => {
        if (!res.complete) return resolve({ outcome: "truncated", body });
        resolve({ outcome: res.statusCode === 200 ? "complete" : `status ${res.statusCode!}`, body });
      });
    });
    req.on("error", (err: NodeJS.ErrnoException) => {
      if (responded) return;
      resolve({ outcome: err.code === "ECONNREFUSED" ? "refused" : "closed before a response", body: "" });
    });
  });
}

describe("drain under load", () => {
  it("on SIGTERM finishes every accepted request, turns /readyz 503, refuses new connections and exits 0", async () => {
    const stub = await slowImds();
    service = await startService([
      "--poetry-dir",
      join(serviceDir, "sample-poetry"),
      "--drain-timeout",
      String(DRAIN_TIMEOUT_S),
      "--aws-metadata-url",
      stub.url,
    ]);
    const { port } = service;

    // Load: 32 keep-alive connections asking for the poem back to back, until the service has gone (bounded).
    const agent = new Agent({ keepAlive: true, maxSockets: 32 });
    const outcomes = new Map<Outcome, number>();
    let running = true;
    const loop = async () => {
      for (let i = 0; running && i < 100_000; i++) {
        const { outcome, body } = await request(port, `/poetry/${POEM}`, agent);
        const counted: Outcome = outcome === "complete" && body.length !== POEM_BYTES ? "truncated" : outcome;
        outcomes.set(counted, (outcomes.get(counted) ?? 0) + 1);
      }
    };
    const load = Promise.all(Array.from({ length: 32 }, loop));
    await sleep(1000);

    // Slow requests in flight at SIGTERM: five on their own connections, and one with /readyz pipelined behind it later.
    const slow = Array.from({ length: 5 }, () => request(port, "/aws", false));
    const pipelined = connect(port, "127.0.0.1");
    let pipelinedBytes = "";
    pipelined.on("data", (c: Buffer) => (pipelinedBytes += c.toString("latin1")));
    const pipelinedClosed = new Promise<void>((resolve) => pipelined.on("close", () => resolve()));
    pipelined.write("GET /aws HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    // The six pages share one metadata lookup: the first reached the handler when the stub saw the token request (at
    // most 10 s on a busy machine); the others, sent with it, are in the service within the next 500 ms, while the
    // lookup holds them all TOKEN_DELAY_MS.
    for (let i = 0; stub.tokenRequests() < 1 && i < 500; i++) await sleep(20);
    expect(stub.tokenRequests()).toBe(1);
    await sleep(500);

    const t0 = performance.now();
    service.child.kill("SIGTERM");
    await sleep(100);
    pipelined.write("GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    const { code } = await service.exit;
    const exitMs = Math.round(performance.now() - t0);
    // A moment more of load, so that new connections meet a closed port.
    await sleep(300);
    running = false;
    await load;
    agent.destroy();
    const slowResults = await Promise.all(slow);
    await pipelinedClosed;

    const counts = Object.fromEntries(outcomes);
    // Every poem request the service handled (its request log) is one the load generator got complete.
    const handled = service.logs.filter((l) => l.msg === "request" && l.path === `/poetry/${POEM}`).length;
    // How long each slow page took, against the page's 3 s deadline: what is left of it is this test's margin.
    const awsMs = service.logs
      .filter((l) => l.msg === "request" && l.path === "/aws")
      .map((l) => Math.round((l.durationUs as number) / 1000));
    report("drain under load", {
      exitCode: code,
      exitMs,
      drainTimeoutMs: DRAIN_TIMEOUT_S * 1000,
      handled,
      load: counts,
      slow: slowResults.map((r) => r.outcome),
      awsMs,
    });
    expect(code).toBe(0);
    expect(exitMs).toBeLessThan(DRAIN_TIMEOUT_S * 1000);
    // The slow requests were accepted before SIGTERM: each gets its whole page.
    for (const r of slowResults) {
      expect(r.outcome).toBe("complete");
      expect(r.body).toContain("value of /latest/meta-data/hostname");
      expect(r.body.trimEnd().endsWith("</html>")).toBe(true);
    }
    // On the pipelined connection: the page, marked as the connection's last answer, then the close. The /readyz
    // behind it was handled after SIGTERM (a 503 in the request log) but, as HTTP/1.1 has it, not answered on a
    // connection the server said it would close: a client asks again on a new connection, which is refused.
    expect(pipelinedBytes).toMatch(/^HTTP\/1\.1 200 /);
    expect(pipelinedBytes).toMatch(/\r\nConnection: close\r\n/i);
    expect(pipelinedBytes.trimEnd().endsWith("</html>")).toBe(true);
    expect(service.logs.filter((l) => l.path === "/readyz").map((l) => l.status)).toEqual([503]);
    // Under load: many complete answers, then refused connections; nothing cut after its response began, no errors.
    expect(counts.complete).toBeGreaterThan(100);
    expect(handled).toBe(counts.complete);
    expect(counts.refused).toBeGreaterThan(0);
    expect(
      Object.keys(counts).filter((k) => k !== "complete" && k !== "refused" && k !== "closed before a response"),
    ).toEqual([]);
    expect(service.logs.filter((l) => l.level >= 40)).toEqual([]);
    expect(service.logs.at(-1)?.msg).toBe("drained: exiting");
  });
});
