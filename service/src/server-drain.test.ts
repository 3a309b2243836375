// drain() closes connections that turn idle after it began: a keep-alive response whose head went out before draining
// (so without Connection: close) and which ends later leaves an idle connection only the periodic sweep closes.
import { Agent, get, type IncomingMessage, type ServerResponse } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { createHttpServer, drain, type Lifecycle, listen } from "./server";

/** How long drain may wait in the test: 20× the 250 ms sweep, for a busy machine. */
const DRAIN_TIMEOUT_MS = 5000;

describe("drain", () => {
  const agents: Agent[] = [];
  afterEach(() => {
    for (const agent of agents.splice(0)) agent.destroy();
  });

  it("closes a keep-alive connection that turns idle after draining began, before its timeout", async () => {
    const lifecycle: Lifecycle = { shuttingDown: false };
    let inFlight: ServerResponse | undefined;
    let headSent: () => void = () => {};
    const started = new Promise<void>((resolve) => {
      headSent = resolve;
    });
    const server = createHttpServer(
      (_req, res) => {
        res.writeHead(200, { "Content-Type": "text/plain" });
        res.write("first half\n");
        inFlight = res;
        headSent();
      },
      10_000,
      () => {},
      lifecycle,
    );
    const { port } = await listen(server, 0, "127.0.0.1");
    const agent = new Agent({ keepAlive: true });
    agents.push(agent);
    const response = new Promise<IncomingMessage>((resolve, reject) => {
      get({ port, host: "127.0.0.1", path: "/", agent }, resolve).on("error", reject);
    });
    const res = await response;
    await started;
    expect(res.headers.connection).toBe("keep-alive");
    const body = new Promise<string>((resolve) => {
      let text = "";
      res.setEncoding("utf8").on("data", (chunk: string) => {
        text += chunk;
      });
      res.on("end", () => resolve(text));
    });

    // As main does on SIGTERM: flag, then drain; the response in flight ends afterwards, its connection kept alive.
    lifecycle.shuttingDown = true;
    const drained = drain(server, DRAIN_TIMEOUT_MS);
    await new Promise((resolve) => setTimeout(resolve, 50));
    inFlight?.end("second half\n");
    expect(await body).toBe("first half\nsecond half\n");

    expect(await drained).toBe(true);
  });
});
