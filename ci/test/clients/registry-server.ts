// A real registry for tests: Debian's docker-registry (CNCF distribution) on loopback, anonymous or with token auth
// (a Bearer challenge and a token server, as Docker Hub and registry.heroku.com do).
import { type ChildProcess, execFile, execFileSync, spawn, spawnSync } from "node:child_process";
import { createHash, createPrivateKey, randomBytes, sign, X509Certificate } from "node:crypto";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { promisify } from "node:util";
import { gzipSync } from "node:zlib";
import { digestOf, OCI_CONFIG, OCI_INDEX, OCI_MANIFEST } from "../../src/clients/oci-content.js";

/** Whether docker-registry is here; with CI=true a missing one fails the suite instead of skipping it. */
export const registryInstalled = spawnSync("docker-registry", ["--version"]).status === 0;
export const registryRequired = process.env.CI === "true";
/** Whether skopeo (the image copier the tests push and read back with) is here; required with CI=true too. */
export const skopeoInstalled = spawnSync("skopeo", ["--version"]).status === 0;

/** A running docker-registry. */
export interface RegistryProcess {
  url: string;
  /** `127.0.0.1:<port>`, as image references name it. */
  host: string;
  process: ChildProcess;
}

/** Starts docker-registry on 127.0.0.1 with a free port (addr :0; the port is read from its log). */
export async function startRegistry(dir: string, name: string, storage: string, auth = ""): Promise<RegistryProcess> {
  const configFile = join(dir, `${name}.yml`);
  writeFileSync(
    configFile,
    [
      "version: 0.1",
      "log: {level: info, accesslog: {disabled: true}}",
      `storage: {filesystem: {rootdirectory: ${storage}}, delete: {enabled: true}}`,
      "http: {addr: 127.0.0.1:0, secret: test-only-upload-secret}",
      auth,
    ].join("\n"),
  );
  const child = spawn("docker-registry", ["serve", configFile], { stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  const port = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} registry did not start: ${log}`)), 10_000);
    child.stderr!.on("data", (chunk: Buffer) => {
      log += chunk.toString();
      const match = /listening on 127\.0\.0\.1:(\d+)/.exec(log);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
    child.on("exit", (code) => reject(new Error(`${name} registry exited with ${code}: ${log}`)));
  });
  return { url: `http://127.0.0.1:${port}`, host: `127.0.0.1:${port}`, process: child };
}

/** Stops a child process and waits for it to exit. */
export async function stopProcess(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill();
  await exited;
}

/** Stops a token-auth registry and its token server (either may be unset if starting failed), then removes `dir`. */
export async function stopTokenAuthRegistry(
  started: { registry?: RegistryProcess; tokenServer?: Server },
  dir: string | undefined,
): Promise<void> {
  await stopProcess(started.registry?.process);
  await new Promise((resolve) => (started.tokenServer ? started.tokenServer.close(resolve) : resolve(undefined)));
  if (dir) rmSync(dir, { recursive: true, force: true });
}

/** Runs skopeo and returns its stdout; asynchronous, because the token server it asks may run in this process. */
export async function skopeo(...args: string[]): Promise<string> {
  return (await promisify(execFile)("skopeo", args, { encoding: "utf8" })).stdout;
}

/** What a token server saw: each request's URL and User-Agent. */
export interface TokenRequests {
  urls: URL[];
  agents: (string | undefined)[];
}

/** Which of the actions asked for on a repository the token server grants; all of them by default. */
export type Grants = (repository: string, asked: string[]) => string[];

/**
 * A registry token server (the Bearer "realm"): checks Basic `user:password`, answers with a JWT signed ES256 by
 * `keyPem` granting the scope asked for (or what `grants` allows of it, as Docker Hub grants a read-only account pull).
 */
export function startTokenServer(
  credentials: { user: string; password: string },
  keyPem: string,
  certDer: string,
  seen: TokenRequests,
  grants: Grants = (_, asked) => asked,
): Promise<Server> {
  const key = createPrivateKey(keyPem);
  const expected = `Basic ${Buffer.from(`${credentials.user}:${credentials.password}`).toString("base64")}`;
  const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const server = createServer((req, res) => {
    const url = new URL(req.url!, "http://127.0.0.1");
    seen.urls.push(url);
    seen.agents.push(req.headers["user-agent"]);
    if (req.headers.authorization !== expected) {
      res
        .writeHead(401, { "Content-Type": "application/json" })
        .end(JSON.stringify({ details: "incorrect username or password" }));
      return;
    }
    const [, name, actions] = /^repository:([^:]+):(.+)$/.exec(url.searchParams.get("scope") ?? "") ?? [];
    const now = Math.floor(Date.now() / 1000);
    const claims = {
      iss: "test-issuer",
      sub: credentials.user,
      aud: url.searchParams.get("service"),
      exp: now + 300,
      nbf: now - 10,
      iat: now,
      jti: randomBytes(8).toString("hex"),
      access: name ? [{ type: "repository", name, actions: grants(name, actions!.split(",")) }] : [],
    };
    const signed = `${b64({ alg: "ES256", typ: "JWT", x5c: [certDer] })}.${b64(claims)}`;
    const signature = sign("sha256", Buffer.from(signed), { key, dsaEncoding: "ieee-p1363" }).toString("base64url");
    res.writeHead(200, { "Content-Type": "application/json" }).end(JSON.stringify({ token: `${signed}.${signature}` }));
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

/** A registry with token auth over `storage`, its token server checking `credentials`. */
export async function startTokenAuthRegistry(
  dir: string,
  storage: string,
  credentials: { user: string; password: string },
  seen: TokenRequests = { urls: [], agents: [] },
  grants?: Grants,
): Promise<{ registry: RegistryProcess; tokenServer: Server }> {
  const keyFile = join(dir, "token.key");
  const certFile = join(dir, "token.crt");
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      keyFile,
      "-out",
      certFile,
      "-days",
      "1",
      "-subj",
      "/CN=test-issuer",
    ],
    { stdio: "ignore" },
  );
  const certDer = new X509Certificate(readFileSync(certFile, "utf8")).raw.toString("base64");
  const tokenServer = await startTokenServer(credentials, readFileSync(keyFile, "utf8"), certDer, seen, grants);
  const realm = `http://127.0.0.1:${(tokenServer.address() as AddressInfo).port}/token`;
  const registry = await startRegistry(
    dir,
    "token",
    storage,
    `auth: {token: {realm: "${realm}", service: test-registry, issuer: test-issuer, rootcertbundle: ${certFile}}}`,
  );
  return { registry, tokenServer };
}

/**
 * Pushes a small real image index straight through the registry API (anonymous): one image per platform, each a gzipped
 * empty tar layer and a config naming its platform; under `tag` too when given, as a push by tag does. Returns the
 * index's digest.
 */
export async function pushIndex(
  baseUrl: string,
  repository: string,
  platforms: readonly string[],
  tag?: string,
): Promise<string> {
  const digest = (bytes: Buffer) => `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
  const blob = async (bytes: Buffer, mediaType: string) => {
    const start = await fetch(`${baseUrl}/v2/${repository}/blobs/uploads/`, { method: "POST" });
    const upload = new URL(start.headers.get("location")!, baseUrl);
    upload.searchParams.set("digest", digest(bytes));
    const put = await fetch(upload, { method: "PUT", body: new Uint8Array(bytes) });
    if (put.status !== 201) throw new Error(`blob upload: ${put.status} ${await put.text()}`);
    return { mediaType, digest: digest(bytes), size: bytes.length };
  };
  const manifest = async (reference: string, mediaType: string, bytes: Buffer) => {
    const put = await fetch(`${baseUrl}/v2/${repository}/manifests/${reference}`, {
      method: "PUT",
      headers: { "Content-Type": mediaType },
      body: new Uint8Array(bytes),
    });
    if (put.status !== 201) throw new Error(`manifest upload: ${put.status} ${await put.text()}`);
    return { mediaType, digest: digest(bytes), size: bytes.length };
  };
  const tar = Buffer.alloc(1024);
  const layer = await blob(gzipSync(tar), "application/vnd.oci.image.layer.v1.tar+gzip");
  const manifests = [];
  for (const platform of platforms) {
    const [os, architecture] = platform.split("/") as [string, string];
    const config = await blob(
      Buffer.from(
        JSON.stringify({ architecture, os, config: {}, rootfs: { type: "layers", diff_ids: [digest(tar)] } }),
      ),
      "application/vnd.oci.image.config.v1+json",
    );
    const image = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        config,
        layers: [layer],
      }),
    );
    const pushed = await manifest(digest(image), "application/vnd.oci.image.manifest.v1+json", image);
    manifests.push({ ...pushed, platform: { architecture, os } });
  }
  const index = Buffer.from(
    JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json", manifests }),
  );
  if (tag) await manifest(tag, "application/vnd.oci.image.index.v1+json", index);
  return (await manifest(digest(index), "application/vnd.oci.image.index.v1+json", index)).digest;
}

/**
 * Writes an OCI image layout at `path` with an index of `platforms` tagged `tag`, for skopeo to push: each image a
 * real (tiny) one, a gzipped tar layer holding one file that names its platform. Returns the index digest.
 */
export function writeOciLayout(
  path: string,
  tag: string,
  platforms: readonly string[],
): { path: string; indexDigest: string } {
  const blobs = join(path, "blobs/sha256");
  mkdirSync(blobs, { recursive: true });
  const put = (bytes: Buffer, mediaType: string) => {
    const d = digestOf(bytes);
    writeFileSync(join(blobs, d.slice("sha256:".length)), bytes);
    return { mediaType, digest: d, size: bytes.length };
  };
  const manifests = platforms.map((platform) => {
    const [os, architecture] = platform.split("/") as [string, string];
    const tar = tarWith("platform.txt", `${platform}\n`);
    const layer = put(gzipSync(tar), "application/vnd.oci.image.layer.v1.tar+gzip");
    const config = put(
      Buffer.from(
        JSON.stringify({ architecture, os, config: {}, rootfs: { type: "layers", diff_ids: [digestOf(tar)] } }),
      ),
      OCI_CONFIG,
    );
    const manifest = put(
      Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers: [layer] })),
      OCI_MANIFEST,
    );
    return { ...manifest, platform: { architecture, os } };
  });
  const index = put(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests })), OCI_INDEX);
  writeFileSync(join(path, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  writeFileSync(
    join(path, "index.json"),
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: [{ ...index, annotations: { "org.opencontainers.image.ref.name": tag } }],
    }),
  );
  return { path, indexDigest: index.digest };
}

/** A POSIX tar archive holding one regular file. */
function tarWith(name: string, content: string): Buffer {
  const body = Buffer.from(content);
  const header = Buffer.alloc(512);
  header.write(name, 0);
  header.write("0000644\0", 100);
  header.write("0000000\0", 108);
  header.write("0000000\0", 116);
  header.write(`${body.length.toString(8).padStart(11, "0")}\0`, 124);
  header.write("00000000000\0", 136);
  header.write("        ", 148);
  header.write("0", 156);
  header.write("ustar\0", 257);
  header.write("00", 263);
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148);
  const padded = Buffer.alloc(Math.ceil(body.length / 512) * 512);
  body.copy(padded);
  return Buffer.concat([header, padded, Buffer.alloc(1024)]);
}
