import { execFileSync } from "node:child_process";
import { closeSync, constants, openSync } from "node:fs";
import { mkdtemp, writeFile } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startApp, startStub, type TestApp, waitFor } from "../test/helpers";
import { createAwsPage } from "./aws-page";

const TOKEN = "imds-token-123";

/** A loopback stand-in for EC2's IMDSv2: a PUT issues a token, and every GET without that token is 401. */
function imdsv2(values: Record<string, string>) {
  return (req: IncomingMessage, res: ServerResponse) => {
    if (req.method === "PUT" && req.url === "/latest/api/token") {
      if (!req.headers["x-aws-ec2-metadata-token-ttl-seconds"]) return void res.writeHead(400).end();
      return void res.end(TOKEN);
    }
    if (req.headers["x-aws-ec2-metadata-token"] !== TOKEN) return void res.writeHead(401).end();
    const value = values[req.url!.replace("/latest/meta-data/", "")];
    if (value === undefined) return void res.writeHead(404).end();
    res.end(value);
  };
}

describe("GET /aws", () => {
  const stubs: Array<{ close(): Promise<void> }> = [];
  const apps: TestApp[] = [];
  const fifos: string[] = [];
  afterAll(async () => {
    // Release a thread still blocked opening a FIFO for reading (as the unfixed page did), so the process can exit.
    for (const fifo of fifos) {
      try {
        closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK));
      } catch {
        // ENXIO: no reader is waiting.
      }
    }
    await Promise.all([...apps, ...stubs].map((s) => s.close()));
  });
  const page = async (env: NodeJS.ProcessEnv, metadataUrl: string) => {
    const t = await startApp({ awsMetadataUrl: metadataUrl, env });
    apps.push(t);
    const res = await fetch(`${t.url}/aws`, { signal: AbortSignal.timeout(10_000) });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/html; charset=utf-8");
    return res.text();
  };

  let imds: string;
  beforeAll(async () => {
    const stub = await startStub(
      imdsv2({ hostname: "ip-10-0-0-1.ec2.internal", "placement/availability-zone": "eu-west-1a" }),
    );
    stubs.push(stub);
    imds = stub.url;
  });

  it("shows IMDSv2 values, and each missing section's error in place, HTML-escaped", async () => {
    const html = await page({}, imds);
    expect(html).toContain("<pre>ip-10-0-0-1.ec2.internal</pre>");
    expect(html).toContain("<pre>eu-west-1a</pre>");
    expect(html).toMatch(/EC2 iam\/info<\/h2>\n<p class="error">error: HTTP 404/);
  });

  it("shows the token error in every EC2 section when the token PUT fails", async () => {
    const html = await page({}, "http://127.0.0.1:9");
    expect(html.match(/class="error">error: /g)).toHaveLength(3);
  });

  it("shows ECS task metadata and the metadata file when their variables are set, escaped", async () => {
    const ecs = await startStub((req, res) => {
      if (req.url === "/v4/abc/task")
        return void res.end(JSON.stringify({ Cluster: "prod<script>", TaskARN: "arn:aws:ecs:x" }));
      res.writeHead(404).end();
    });
    stubs.push(ecs);
    const file = join(await mkdtemp(join(tmpdir(), "ecs-")), "metadata.json");
    await writeFile(file, JSON.stringify({ ContainerName: "web&co", MetadataFileStatus: "READY" }));
    const html = await page(
      { ECS_CONTAINER_METADATA_URI_V4: `${ecs.url}/v4/abc`, ECS_CONTAINER_METADATA_FILE: file },
      imds,
    );
    expect(html).toContain("ECS task metadata");
    expect(html).toContain("&quot;Cluster&quot;: &quot;prod&lt;script&gt;&quot;");
    expect(html).not.toContain("<script>");
    expect(html).toContain("&quot;ContainerName&quot;: &quot;web&amp;co&quot;");
  });

  it("sends credentials in the metadata URLs as Basic auth and never shows them", async () => {
    const authorizations: Array<string | undefined> = [];
    const stub = await startStub((req, res) => {
      authorizations.push(req.headers.authorization);
      imdsv2({ hostname: "ip-10-0-0-2" })(req, res);
    });
    stubs.push(stub);
    const withCredentials = (url: string) => url.replace("//", "//op:s3cret@");
    const html = await page(
      { ECS_CONTAINER_METADATA_URI_V4: withCredentials(`${stub.url}/v4`) },
      withCredentials(stub.url),
    );
    expect(html).toContain("<pre>ip-10-0-0-2</pre>");
    expect(authorizations).toHaveLength(5);
    expect(new Set(authorizations)).toEqual(new Set([`Basic ${Buffer.from("op:s3cret").toString("base64")}`]));
    expect(html).toMatch(/ECS task metadata<\/h2>\n<p class="error">error: HTTP 401 from \/v4\/task/);
    expect(html).not.toContain("s3cret");
  });

  it("follows no redirect, so neither the token nor the credentials reach another host, and says so in place", async () => {
    const elsewhere: IncomingMessage["headers"][] = [];
    const attacker = await startStub((req, res) => {
      elsewhere.push(req.headers);
      res.end(req.method === "PUT" ? TOKEN : "stolen");
    });
    stubs.push(attacker);
    const toAttacker = (req: IncomingMessage, res: ServerResponse) =>
      res.writeHead(307, { Location: `${attacker.url}${req.url}` }).end();
    const honest = imdsv2({ hostname: "ip-10-0-0-3" });
    // The token PUT is answered; every metadata GET, and the ECS task lookup, is sent to another host.
    const redirecting = await startStub((req, res) =>
      (req.method === "PUT" || req.url === "/latest/meta-data/hostname" ? honest : toAttacker)(req, res),
    );
    // The token PUT itself is sent to another host.
    const tokenRedirect = await startStub(toAttacker);
    stubs.push(redirecting, tokenRedirect);
    const withCredentials = (url: string) => url.replace("//", "//op:s3cret@");
    const html = await page(
      { ECS_CONTAINER_METADATA_URI_V4: `${redirecting.url}/v4` },
      withCredentials(redirecting.url),
    );
    expect(html).toContain("<pre>ip-10-0-0-3</pre>");
    expect(html.match(/class="error">error: unexpected redirect</g)).toHaveLength(3);
    const tokenHtml = await page({}, withCredentials(tokenRedirect.url));
    expect(tokenHtml.match(/class="error">error: unexpected redirect</g)).toHaveLength(3);
    expect(elsewhere).toEqual([]);
    expect(html + tokenHtml).not.toContain("stolen");
  });

  it("caps every body and the metadata file at 64 KiB, stops reading past it and says so in place", async () => {
    const limit = 64 * 1024;
    const sent = { hostname: 0, ecs: 0 };
    const closed = { hostname: false, ecs: false };
    const endless = (name: keyof typeof sent, res: ServerResponse) => {
      const chunk = Buffer.alloc(16 * 1024, "h");
      res.on("close", () => (closed[name] = true));
      const pump = () => {
        while (!res.destroyed && sent[name] < 256 * 1024 ** 2 && res.write(chunk)) sent[name] += chunk.length;
      };
      res.on("drain", pump);
      pump();
    };
    // hostname: an endless body; availability zone: exactly the cap; iam/info: one byte over; ECS: a 404 without end.
    const values = { "placement/availability-zone": "z".repeat(limit), "iam/info": "i".repeat(limit + 1) };
    const honest = imdsv2(values);
    const stub = await startStub((req, res) => {
      if (req.url === "/latest/meta-data/hostname") return endless("hostname", res);
      if (req.url === "/v4/task") return endless("ecs", res.writeHead(404));
      honest(req, res);
    });
    stubs.push(stub);
    const file = join(await mkdtemp(join(tmpdir(), "ecs-")), "metadata.json");
    await writeFile(file, Buffer.alloc(1024 ** 2, "f"));
    const html = await page(
      { ECS_CONTAINER_METADATA_URI_V4: `${stub.url}/v4`, ECS_CONTAINER_METADATA_FILE: file },
      stub.url,
    );
    const tooLarge = '<p class="error">error: larger than 64 KiB: not shown</p>';
    expect(html).toContain(`EC2 hostname</h2>\n${tooLarge}`);
    expect(html).toContain(`<pre>${"z".repeat(limit)}</pre>`);
    expect(html).toContain(`EC2 iam/info</h2>\n${tooLarge}`);
    expect(html).toContain(`ECS container metadata file</h2>\n${tooLarge}`);
    expect(html).toContain('ECS task metadata</h2>\n<p class="error">error: HTTP 404 from /v4/task</p>');
    expect(html).not.toContain("hhhh");
    expect(html.length).toBeLessThan(limit + 4096);
    // Both endless connections were cut (past the cap, or unread after a 404), not left to the 3 s deadline.
    await waitFor(() => (closed.hostname && closed.ecs ? true : undefined), 2000);
    expect(sent.hostname).toBeLessThan(32 * 1024 ** 2);
    expect(sent.ecs).toBeLessThan(32 * 1024 ** 2);
  });

  it.each([
    ["a FIFO no one writes to", "fifo"],
    ["/dev/zero", "/dev/zero"],
    ["a directory", "."],
  ])("refuses %s as the metadata file, in place", async (_what, kind) => {
    const dir = await mkdtemp(join(tmpdir(), "ecs-"));
    let file = kind === "." ? dir : kind;
    if (kind === "fifo") {
      file = join(dir, "metadata.json");
      execFileSync("mkfifo", [file]);
      fifos.push(file);
    }
    const html = await page({ ECS_CONTAINER_METADATA_FILE: file }, imds);
    expect(html).toContain(
      'ECS container metadata file</h2>\n<p class="error">error: not a regular file: not read</p>',
    );
  });

  /** An IMDSv2 and ECS stand-in that answers after `delayMs`, counting requests and the most in flight at once. */
  async function countingStub(delayMs: number) {
    const counts = { requests: 0, inFlight: 0, maxInFlight: 0 };
    const honest = imdsv2({ hostname: "ip-10-0-0-4" });
    const stub = await startStub((req, res) => {
      counts.requests++;
      counts.maxInFlight = Math.max(counts.maxInFlight, ++counts.inFlight);
      setTimeout(() => {
        counts.inFlight--;
        if (req.url === "/v4/task") res.end("{}");
        else honest(req, res);
      }, delayMs);
    });
    stubs.push(stub);
    return { counts, url: stub.url };
  }

  it("makes one round of metadata calls for a burst of concurrent pages, at most 4 at once", async () => {
    const { counts, url } = await countingStub(100);
    const t = await startApp({ awsMetadataUrl: url, env: { ECS_CONTAINER_METADATA_URI_V4: `${url}/v4` } });
    apps.push(t);
    const burst = () => Promise.all(Array.from({ length: 50 }, () => fetch(`${t.url}/aws`).then((r) => r.text())));
    const pages = [...(await burst()), ...(await burst())];
    expect(new Set(pages).size).toBe(1);
    expect(pages[0]).toContain("<pre>ip-10-0-0-4</pre>");
    // Token PUT, three EC2 GETs and the ECS task lookup, once for 100 pages (5 each without the cache).
    expect(counts.requests).toBe(5);
    expect(counts.maxInFlight).toBeLessThanOrEqual(4);
  });

  it("looks the metadata up anew once the cached page is older than cacheMs", async () => {
    const { counts, url } = await countingStub(0);
    const awsPage = createAwsPage({ metadataUrl: url, cacheMs: 200 });
    await Promise.all([awsPage(), awsPage()]);
    await awsPage();
    expect(counts.requests).toBe(4);
    await new Promise((r) => setTimeout(r, 300));
    await awsPage();
    expect(counts.requests).toBe(8);
  });

  it("renders within the 3 s deadline when the metadata service hangs", async () => {
    const hanging = await startStub(() => {});
    stubs.push(hanging);
    const started = Date.now();
    const html = await page({}, hanging.url);
    expect(Date.now() - started).toBeLessThan(6000);
    expect(html.match(/error: timed out/g)).toHaveLength(3);
  });
});
