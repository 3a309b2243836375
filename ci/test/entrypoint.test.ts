// The image's entrypoint, run with the Node release the image runs (24.13.1, the same release as the Dagger runtime's,
// so runtime/runtime-node.ts provides it): its flags are accepted, and SIGUSR1 no longer opens the inspector.
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, inject, it } from "vitest";
import { ENTRYPOINT } from "../src/containers.js";

const node = inject("runtimeNode");

/**
 * Runs `args` as the image would with `node` (the script replaced by one that installs no SIGUSR1 listener, so only
 * Node's flags decide), sends SIGUSR1 once it is up, and returns its stderr and how it ended 1 s later.
 */
async function afterSigusr1(args: string[]): Promise<{ stderr: string; alive: boolean; code: number | null }> {
  const script = join(mkdtempSync(join(tmpdir(), "entrypoint-")), "main.js");
  writeFileSync(script, 'setInterval(() => {}, 1000); process.stdout.write("up\\n");\n');
  // Any port: a busy 9229 (another test, another agent) would print a different message, not none.
  const child = spawn(node, [...args.slice(1, -1), "--inspect-port=0", script], { stdio: "pipe" });
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk;
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    child.stdout.once("data", () => resolve());
    exited.then(() => reject(new Error(`exited before it was up: ${stderr}`)));
  });
  child.kill("SIGUSR1");
  const code = await Promise.race([exited, new Promise<"alive">((r) => setTimeout(() => r("alive"), 1000))]);
  child.kill("SIGKILL");
  await exited;
  return { stderr, alive: code === "alive", code: code === "alive" ? null : code };
}

describe("the image's entrypoint", () => {
  it("runs the bundle with node, source maps on and SIGUSR1 refused", () => {
    expect(ENTRYPOINT[0]).toBe("node");
    expect(ENTRYPOINT.at(-1)).toBe("/app/main.js");
    expect(ENTRYPOINT).toContain("--enable-source-maps");
    expect(ENTRYPOINT).toContain("--disable-sigusr1");
  });

  it("on Node 24.13.1: the flags are accepted, and SIGUSR1 neither opens the inspector nor ends the process", async () => {
    // The same run without the flag opens it: the check below can see an inspector start.
    const without = await afterSigusr1(ENTRYPOINT.filter((arg) => arg !== "--disable-sigusr1"));
    expect(without.stderr).toContain("Debugger listening on ws://127.0.0.1:");

    const result = await afterSigusr1(ENTRYPOINT);
    expect(result).toEqual({ stderr: "", alive: true, code: null });
  });
});
