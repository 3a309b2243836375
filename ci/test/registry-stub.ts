// A stand-in for registry.heroku.com's manifest endpoint, as deploy needs it: any manifest reference answers one Docker
// v2 manifest whose config digest is `configDigest`, to Basic `_` : token only (Heroku's registry login).
import { createHash } from "node:crypto";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { DOCKER_MANIFEST_V2 } from "../src/clients/registry-client.js";

/** The running stub: its host:port and every request it received. */
export interface RegistryStub {
  host: string;
  /** The digest of the one manifest it serves: what a push to it would have returned. */
  manifestDigest: string;
  requests: { path: string; headers: IncomingHttpHeaders }[];
  close(): Promise<void>;
}

/** Starts the stub on a free loopback port. */
export async function startRegistry(token: string, configDigest: string): Promise<RegistryStub> {
  const requests: RegistryStub["requests"] = [];
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: DOCKER_MANIFEST_V2,
    config: { digest: configDigest },
    layers: [],
  });
  const server: Server = createServer((req, res) => {
    requests.push({ path: req.url!, headers: req.headers });
    const ok = req.headers.authorization === `Basic ${Buffer.from(`_:${token}`).toString("base64")}`;
    if (!ok)
      return void res
        .writeHead(401, { "Content-Type": "application/json" })
        .end('{"errors":[{"code":"UNAUTHORIZED"}]}');
    res.writeHead(200, { "Content-Type": DOCKER_MANIFEST_V2 }).end(manifest);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    host: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    manifestDigest: `sha256:${createHash("sha256").update(manifest).digest("hex")}`,
    requests,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
