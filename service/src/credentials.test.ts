import { describe, expect, it } from "vitest";
import { credentialsAsHeader, redactedUrl } from "./credentials";

describe("redactedUrl", () => {
  it.each([
    ["http://user:s3cret@169.254.169.254", "http://***@169.254.169.254/"],
    ["https://s3cret@host:8443/path?q=a@b", "https://***@host:8443/path?q=a@b"],
    ["http://u:p@ss@host/x", "http://***@host/x"],
    // What a regex over the text got wrong: it stopped at the space, kept the tab (which the parser drops) or the "@".
    ["http://user:S3C RET@host/x", "http://***@host/x"],
    ["http://user:S3C\tRET@host/x", "http://***@host/x"],
    ["http://user:p@ss w0rd@host/x", "http://***@host/x"],
    ["https://:only-a-password@host/", "https://***@host/"],
    ["http://host/path@v2?mail=a@example.com", "http://host/path@v2?mail=a@example.com"],
  ])("%j → %j", (text, redacted) => {
    expect(redactedUrl(new URL(text))).toBe(redacted);
  });
});

describe("credentialsAsHeader", () => {
  it("moves a URL's user name and password into a Basic Authorization header, decoded", () => {
    expect(credentialsAsHeader("https://us%40er:p%3Ass@collector.example:8443/metrics?x=1")).toEqual({
      url: "https://collector.example:8443/metrics?x=1",
      headers: { Authorization: `Basic ${Buffer.from("us@er:p:ss").toString("base64")}` },
    });
  });

  it.each([
    ["https://token@collector.example/m", "token:"],
    ["https://:s3cret@collector.example/m", ":s3cret"],
  ])("sends %j's user name or password alone as Basic %j", (url, basic) => {
    expect(credentialsAsHeader(url)).toEqual({
      url: "https://collector.example/m",
      headers: { Authorization: `Basic ${Buffer.from(basic).toString("base64")}` },
    });
  });

  it("leaves a URL without credentials as it is", () => {
    expect(credentialsAsHeader("http://127.0.0.1:9/latest")).toEqual({ url: "http://127.0.0.1:9/latest", headers: {} });
  });
});
