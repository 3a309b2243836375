import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { Agent, get } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kill, report, type Service, startService } from "./harness";

const RACE_S = 22;
const SMALL_POEMS = 40;
const LISTING_LINKS = 20;
const BIG_BYTES = (1 << 20) + 300_000;
const CANARY = `CANARY-${randomBytes(12).toString("hex")}\n`;

// A poetry directory whose files flip between a poem and a symlink to a canary outside it, and whose sub-directory
// flips between a real directory and a symlink to an outside one holding canaries under the same names (and one more).
// Every 200 must carry exactly the poem's bytes, and no listing an outside name: the store opens without following a
// final symlink, checks the descriptor and reads only from it.
let dir: string;
let poetry: string;
let service: Service | undefined;
let flipper: ChildProcess | undefined;
const expected = new Map<string, Buffer>();

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "dummyapp-race-"));
  poetry = join(dir, "poetry");
  const outside = join(dir, "outside");
  await mkdir(join(poetry, "d"), { recursive: true });
  await mkdir(outside);
  await writeFile(join(outside, "canary.txt"), CANARY.repeat(8));
  await writeFile(join(outside, "canary-big.txt"), CANARY.repeat(Math.ceil(BIG_BYTES / CANARY.length)));
  // Masters are dot-files (never served); the flipper hard-links them back into place.
  const add = async (name: string, body: Buffer) => {
    expected.set(name, body);
    await writeFile(join(poetry, `.master-${name.replace("/", "-")}`), body);
    await writeFile(join(poetry, name), body);
  };
  for (let i = 0; i < SMALL_POEMS; i++) await add(`s${i}.txt`, Buffer.from(`small poem ${i}\n`));
  await add("big.txt", Buffer.alloc(BIG_BYTES, "big poem line\n"));
  await add("d/x.txt", Buffer.from("a poem in d\n"));
  await add("d/bigx.txt", Buffer.alloc(BIG_BYTES, "big poem in d\n"));
  await mkdir(join(outside, "d"));
  await writeFile(join(outside, "d", "x.txt"), CANARY);
  await writeFile(join(outside, "d", "bigx.txt"), CANARY.repeat(Math.ceil(BIG_BYTES / CANARY.length)));
  // A name only the outside directory has: a listing of it would carry the canary. Twenty symlinks to d are twenty
  // cache keys, so d's listing is re-read twenty times a second.
  await writeFile(join(outside, "d", `${CANARY.trim()}.txt`), "x");
  for (let i = 0; i < LISTING_LINKS; i++) await symlink("d", join(poetry, `v${i}`));
  service = await startService(["--poetry-dir", poetry]);
});

afterAll(async () => {
  flipper?.kill("SIGKILL");
  kill(service);
  await rm(dir, { recursive: true, force: true });
});

/** The flipper, in its own process so its tight loop of renames does not share the clients' event loop. */
const FLIPPER = `
const fs = require("node:fs");
const [poetry, outside, names, until] = [process.argv[1], process.argv[2], process.argv[3].split(","), Number(process.argv[4])];
let flips = 0;
const swap = (path, make) => { const tmp = path + ".tmp"; fs.rmSync(tmp, { force: true }); make(tmp); fs.renameSync(tmp, path); flips++; };
// Each step turns one file into a symlink to a canary, or back into the poem (a hard link to its master), so each is
// a symlink about half the time. The directory toggles between the real one and a symlink to an outside one with
// canaries under the same names at every step.
const isLink = new Set();
const flipFile = (name, target) => {
  const path = poetry + "/" + name;
  if (isLink.delete(name)) swap(path, (tmp) => fs.linkSync(poetry + "/.master-" + name, tmp));
  else swap(path, (tmp) => fs.symlinkSync(target, tmp)), isLink.add(name);
};
let dirIsLink = false;
const flipDir = () => {
  if (dirIsLink) {
    fs.renameSync(poetry + "/d", poetry + "/.d-link");
    fs.rmSync(poetry + "/.d-link");
    fs.renameSync(poetry + "/.d-real", poetry + "/d");
  } else {
    fs.renameSync(poetry + "/d", poetry + "/.d-real");
    fs.symlinkSync(outside + "/d", poetry + "/d");
  }
  dirIsLink = !dirIsLink;
  flips++;
};
for (let i = 0; Date.now() < until; i++) {
  const name = names[i % names.length];
  flipFile(name, name.startsWith("big") ? outside + "/canary-big.txt" : outside + "/canary.txt");
  flipDir();
}
process.stdout.write(String(flips));`;

describe("poetry files and directories swapped for symlinks while being served", () => {
  it(`never serve a byte from outside the poetry directory (${RACE_S} s of races)`, async () => {
    const { port } = service!;
    const fileNames = [...expected.keys()].filter((n) => !n.startsWith("d/"));
    const deadline = Date.now() + RACE_S * 1000;
    flipper = spawn(
      process.execPath,
      ["-e", FLIPPER, poetry, join(dir, "outside"), fileNames.join(","), String(deadline)],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    let flipperOut = "";
    flipper.stdout!.on("data", (c: Buffer) => (flipperOut += c.toString()));
    const flipperExit = new Promise((resolve) => flipper!.on("exit", resolve));

    const agent = new Agent({ keepAlive: true, maxSockets: 8 });
    const dirNames = [...expected.keys()].filter((n) => n.startsWith("d/"));
    const statuses: Record<number, number> = {};
    const leaks: string[] = [];
    let requests = 0;
    let resets = 0;
    let bigServed = 0;
    let listings = 0;
    const worker = async (w: number) => {
      for (let i = w; Date.now() < deadline; i += 7) {
        // A third of the requests are for poems in the flipping directory, a third for its listing.
        const n = Math.floor(i / 3);
        const name = [fileNames[n % fileNames.length]!, dirNames[n % dirNames.length]!, `v${n % LISTING_LINKS}/`][
          i % 3
        ]!;
        // A response cut short (the old code's stream failing mid-body) is counted, and must not happen either.
        const { status, body } = await new Promise<{ status: number; body: Buffer }>((resolve) => {
          const cut = () => resolve({ status: -1, body: Buffer.alloc(0) });
          get({ host: "127.0.0.1", port, path: `/poetry/${name}`, agent }, (res) => {
            const chunks: Buffer[] = [];
            res.on("data", (c: Buffer) => chunks.push(c));
            res.on("end", () => resolve({ status: res.statusCode!, body: Buffer.concat(chunks) }));
            res.on("error", cut);
          }).on("error", cut);
        });
        requests++;
        if (status === -1) resets++;
        statuses[status] = (statuses[status] ?? 0) + 1;
        if (body.includes(CANARY.trim())) leaks.push(`${name}: ${status}, ${body.length} bytes`);
        else if (name.endsWith("/")) listings += status === 200 ? 1 : 0;
        else if (status === 200 && !body.equals(expected.get(name)!))
          leaks.push(`${name}: 200 with ${body.length} unexpected bytes`);
        else if (status === 200 && body.length > 1 << 20) bigServed++;
      }
    };
    await Promise.all(Array.from({ length: 8 }, (_, w) => worker(w)));
    agent.destroy();
    await flipperExit;

    report("poetry race", {
      seconds: RACE_S,
      requests,
      statuses,
      bigPoemsServed: bigServed,
      listings,
      flips: Number(flipperOut),
      leaks: leaks.length,
      resets,
    });
    expect(leaks.slice(0, 10)).toEqual([]);
    expect(resets).toBe(0);
    expect(Number(flipperOut)).toBeGreaterThan(1000);
    // Both poems and flips were exercised: some answers were the poem, some the race's 404.
    expect(statuses[200]).toBeGreaterThan(100);
    expect(bigServed).toBeGreaterThan(10);
    expect(listings).toBeGreaterThan(100);
    expect(Object.keys(statuses).filter((s) => Number(s) >= 500)).toEqual([]);
    expect(service!.logs.filter((l) => l.level >= 50)).toEqual([]);
  });
});
