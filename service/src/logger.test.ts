import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { createLogger } from "./logger";

function lines(format: "json" | "text", level: string, write: (log: ReturnType<typeof createLogger>) => void): string[] {
  const stream = new PassThrough();
  const out: string[] = [];
  stream.on("data", (c: Buffer) => out.push(...c.toString().split("\n").filter(Boolean)));
  write(createLogger(format, level, stream));
  return out;
}

describe("createLogger", () => {
  it("writes one JSON object a line with an ISO time and no pid/hostname noise", () => {
    const [line] = lines("json", "info", (log) => log.info({ requestId: "r1" }, "request"));
    const parsed = JSON.parse(line!);
    expect(parsed).toMatchObject({ level: 30, msg: "request", requestId: "r1" });
    expect(parsed.time).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(parsed).not.toHaveProperty("pid");
  });

  it("writes plain text for humans, without colour codes", () => {
    const out = lines("text", "info", (log) => log.info({ port: 8080 }, "accepting connections")).join("\n");
    expect(out).toContain("INFO: accepting connections");
    expect(out).toContain("port: 8080");
    expect(out).not.toContain("\u001b[");
  });

  it("honours the level", () => {
    expect(lines("json", "warn", (log) => log.info("quiet"))).toEqual([]);
  });
});
