// Outbound URLs may carry a user name and password (an operator's proxy, a collector behind Basic auth): they are
// used for the request and never shown.

/**
 * `url` as shown in logs and error messages: its user name and password, when it has any, become "***". Read from the
 * parsed URL, never by matching text: a password may hold "@", spaces or a tab (which the parser drops).
 */
export function redactedUrl(url: URL): string {
  if (!url.username && !url.password) return url.href;
  const copy = new URL(url.href);
  copy.username = "";
  copy.password = "";
  return copy.href.replace("//", "//***@");
}

/**
 * A URL made ready for fetch, which refuses one that carries credentials (putting the whole URL in its error): the URL
 * without them, and them as a Basic Authorization header, as curl and Node's http.request send them.
 */
export function credentialsAsHeader(url: string): { url: string; headers: Record<string, string> } {
  const parsed = new URL(url);
  if (!parsed.username && !parsed.password) return { url, headers: {} };
  const basic = `${decodeURIComponent(parsed.username)}:${decodeURIComponent(parsed.password)}`;
  parsed.username = "";
  parsed.password = "";
  return { url: parsed.href, headers: { Authorization: `Basic ${Buffer.from(basic).toString("base64")}` } };
}
