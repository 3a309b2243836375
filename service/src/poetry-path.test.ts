import { describe, expect, it } from "vitest";
import { isServableName, PoetryPathError, parsePoetryPath } from "./poetry-path";

describe("parsePoetryPath", () => {
  it.each([
    ["", []],
    ["a.txt", ["a.txt"]],
    ["sub/", ["sub", ""]],
    ["sub/b.txt", ["sub", "b.txt"]],
    ["caf%C3%A9.txt", ["café.txt"]],
    ["with%20space", ["with space"]],
    ["%E2%80%A5%E2%80%A5", ["\u2025\u2025"]],
    // Double-encoding decodes once, to a harmless name that simply does not exist.
    ["%252e%252e/x", ["%2e%2e", "x"]],
  ])("%j → %j", (encoded, segments) => {
    expect(parsePoetryPath(encoded)).toEqual(segments);
  });

  it.each([
    ["..", 400],
    ["../etc/passwd", 400],
    ["sub/../../x", 400],
    ["./a.txt", 400],
    ["%2e%2e/x", 400],
    ["%2E%2E%2Fx", 400],
    ["..%2fx", 400],
    ["..%5cx", 400],
    ["a%00.txt", 400],
    ["..\\x", 400],
    ["%c0%ae%c0%ae/x", 400],
    ["%e0%80%ae", 400],
    ["%", 400],
    ["%zz", 400],
    ["a//b", 400],
    ["a%0ab", 400],
    [".hidden", 404],
    ["sub/.git/config", 404],
    ["x".repeat(300), 404],
  ])("%j is refused with %d", (encoded, status) => {
    let error: unknown;
    try {
      parsePoetryPath(encoded);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(PoetryPathError);
    expect((error as PoetryPathError).status).toBe(status);
  });
});

describe("isServableName", () => {
  it("accepts exactly the names parsePoetryPath lets through as a segment", () => {
    for (const name of [
      "a.txt",
      "<b&c>.txt",
      "poème.txt",
      "x".repeat(255),
      "back\\slash",
      "new\nline",
      "tab\t",
      "del\x7f",
      ".hidden",
      "x".repeat(256),
    ]) {
      let parsed = true;
      try {
        parsePoetryPath(encodeURIComponent(name));
      } catch {
        parsed = false;
      }
      expect(isServableName(name), JSON.stringify(name)).toBe(parsed);
    }
  });
});

describe("parsePoetryPath and encoded slashes", () => {
  // Decoded, %2f would be a separator no dot-segment check sees as such: "a%2fb" must not become the path a/b.
  it.each(["a%2fb.txt", "a%2Fb.txt", "sub%2fb.txt", "%2fetc%2fpasswd"])(
    "%j is refused with 400 before decoding",
    (encoded) => {
      expect(() => parsePoetryPath(encoded)).toThrow(
        expect.objectContaining({ status: 400, message: "encoded slash, backslash or NUL in path" }),
      );
    },
  );
});
