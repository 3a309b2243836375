// Outbound URLs may carry a user name and password (an operator's proxy, a collector behind Basic auth): they are
// used for the request and never shown.

// The authority's userinfo: up to the last "@" before the host, which cannot contain "/", "?", "#" or spaces.
const USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)[^/?#\s]*@/gi;

/** Replace the user name and password of every URL in `text` with "***": for logs, pages and error messages. */
export function redactCredentials(text: string): string {
  return text.replace(USERINFO, "$1***@");
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
