/** A request path under /poetry/ that cannot be served; `status` is the HTTP status to answer with. */
export class PoetryPathError extends Error {
  constructor(
    readonly status: 400 | 404,
    message: string,
  ) {
    super(message);
  }
}

// Checked before decoding: an encoded separator or NUL is never part of a real poem's name.
const ENCODED_FORBIDDEN = /%(?:2f|5c|00)/i;
// Checked after decoding: backslashes, NUL and other control characters.
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it looks for.
const DECODED_FORBIDDEN = /[\\\u0000-\u001f\u007f]/;
const MAX_SEGMENT = 255;

/**
 * Split the still-encoded path after `/poetry/` into safe, decoded segments.
 * An empty result is the poetry root; a trailing slash yields a final "" segment (a directory was asked for).
 * @throws {PoetryPathError} 400 for malformed or suspicious encodings and dot-segments, 404 for hidden or overlong names.
 */
export function parsePoetryPath(encoded: string): string[] {
  if (encoded === "") return [];
  // Most paths carry no percent-encoding at all, and so nothing to check before decoding or to decode.
  const decoded = encoded.includes("%") ? decodeChecked(encoded) : encoded;
  if (DECODED_FORBIDDEN.test(decoded)) throw new PoetryPathError(400, "control character or backslash in path");
  const segments = decoded.split("/");
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i]!;
    if (segment === "" && i < segments.length - 1) throw new PoetryPathError(400, "empty path segment");
    if (segment === "." || segment === "..") throw new PoetryPathError(400, "dot-segment in path");
    if (segment.startsWith(".")) throw new PoetryPathError(404, "hidden file");
    if (segment.length > MAX_SEGMENT) throw new PoetryPathError(404, "name too long");
  }
  return segments;
}

/** Whether a file name can be asked for at all (listings show only those): no dot-file, control character or backslash, not overlong. */
export function isServableName(name: string): boolean {
  return !name.startsWith(".") && name.length <= MAX_SEGMENT && !DECODED_FORBIDDEN.test(name);
}

function decodeChecked(encoded: string): string {
  if (ENCODED_FORBIDDEN.test(encoded)) throw new PoetryPathError(400, "encoded slash, backslash or NUL in path");
  try {
    // decodeURIComponent rejects invalid UTF-8, overlong forms such as %c0%ae included.
    return decodeURIComponent(encoded);
  } catch {
    throw new PoetryPathError(400, "malformed percent-encoding in path");
  }
}
