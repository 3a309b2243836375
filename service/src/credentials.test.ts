import { describe, expect, it } from "vitest";
import { credentialsAsHeader, redactCredentials } from "./credentials";

describe("redactCredentials", () => {
  it.each([
    ["http://user:s3cret@169.254.169.254", "http://***@169.254.169.254"],
    ["https://s3cret@host:8443/path?q=a@b", "https://***@host:8443/path?q=a@b"],
    ["http://u:p@ss@host/x", "http://***@host/x"],
    [
      "fetch failed for HTTP://A:B@h/one and ftp://c:d@h/two.",
      "fetch failed for HTTP://***@h/one and ftp://***@h/two.",
    ],
    ["http://host/path@v2 and mail@example.com", "http://host/path@v2 and mail@example.com"],
    ["no url here", "no url here"],
  ])("%j → %j", (text, redacted) => {
    expect(redactCredentials(text)).toBe(redacted);
  });
});

describe("credentialsAsHeader", () => {
  it("moves a URL's user name and password into a Basic Authorization header, decoded", () => {
    expect(credentialsAsHeader("https://us%40er:p%3Ass@collector.example:8443/metrics?x=1")).toEqual({
      url: "https://collector.example:8443/metrics?x=1",
      headers: { Authorization: `Basic ${Buffer.from("us@er:p:ss").toString("base64")}` },
    });
  });

  it("leaves a URL without credentials as it is", () => {
    expect(credentialsAsHeader("http://127.0.0.1:9/latest")).toEqual({ url: "http://127.0.0.1:9/latest", headers: {} });
  });
});
