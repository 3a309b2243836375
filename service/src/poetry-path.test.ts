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

  // The message is what the client reads in the error body: it says which rule refused the path.
  it.each([
    ["..", 400, "dot-segment in path"],
    ["../etc/passwd", 400, "dot-segment in path"],
    ["sub/../../x", 400, "dot-segment in path"],
    ["./a.txt", 400, "dot-segment in path"],
    ["%2e%2e/x", 400, "dot-segment in path"],
    ["%2E%2E%2Fx", 400, "encoded slash, backslash or NUL in path"],
    ["..%2fx", 400, "encoded slash, backslash or NUL in path"],
    ["..%5cx", 400, "encoded slash, backslash or NUL in path"],
    ["a%00.txt", 400, "encoded slash, backslash or NUL in path"],
    ["..\\x", 400, "control character or backslash in path"],
    ["%c0%ae%c0%ae/x", 400, "malformed percent-encoding in path"],
    ["%e0%80%ae", 400, "malformed percent-encoding in path"],
    ["%", 400, "malformed percent-encoding in path"],
    ["%zz", 400, "malformed percent-encoding in path"],
    ["a//b", 400, "empty path segment"],
    ["a%0ab", 400, "control character or backslash in path"],
    [".hidden", 404, "hidden file"],
    ["sub/.git/config", 404, "hidden file"],
    ["x".repeat(300), 404, "name too long"],
  ])("%j is refused with %d: %s", (encoded, status, message) => {
    let error: unknown;
    try {
      parsePoetryPath(encoded);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(PoetryPathError);
    expect(error).toMatchObject({ status, message });
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
