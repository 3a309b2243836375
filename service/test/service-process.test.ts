// What every bundle test relies on when it starts a process: readiness from a log line that may come in pieces, a
// clear failure (and no process left behind) when it exits or hangs, and the stop's exit status.
import { mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { startService } from "./service-process.mjs";

/** `node -e <code>`: the script argument is then only argv, so any code can play the service. */
const playing = (code: string, timeoutMs?: number) =>
  startService({ nodeArgs: ["-e", code], script: "service", timeoutMs });

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("startService", () => {
  it("is ready at the accepting connections line even when it arrives in pieces, and keeps every JSON line", async () => {
    const s = await playing(`
      process.stdout.write('{"level":30,"msg":"starting"}\\n{"level":30,"msg":"accepting');
      setTimeout(() => process.stdout.write(' connections","port":4321}\\n'), 50);
      process.on("SIGTERM", () => process.exit(0));
      setInterval(() => {}, 1000);`);
    expect([s.port, s.url]).toEqual([4321, "http://127.0.0.1:4321"]);
    expect(s.logs.map((l) => l.msg)).toEqual(["starting", "accepting connections"]);
    expect(await s.stop()).toMatchObject({ code: 0, signal: null });
  });

  it("fails with the process's stderr when it exits before it is ready", async () => {
    await expect(playing(`process.stderr.write("cannot start: reasons\\n"); process.exit(3)`)).rejects.toThrow(
      "service did not start (exit 3): cannot start: reasons\n",
    );
  });

  it("fails at the deadline and kills what never became ready", async () => {
    const pidFile = join(await mkdtemp(join(tmpdir(), "service-process-")), "pid");
    const hang = `require("node:fs").writeFileSync(${JSON.stringify(pidFile)}, String(process.pid)); setInterval(() => {}, 1000)`;
    // Long enough for node to start and write its pid on a busy machine.
    await expect(playing(hang, 3000)).rejects.toThrow("service did not start (not ready in 3000 ms): ");
    const pid = Number(await readFile(pidFile, "utf8"));
    expect(pid).toBeGreaterThan(0);
    expect(isRunning(pid)).toBe(false);
  });
});
