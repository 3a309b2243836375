import type { IncomingMessage, ServerResponse } from "node:http";
import helmet from "helmet";

/**
 * Helmet's security headers, decided by helmet itself but once: its default policy does not depend on the request, so
 * helmet runs at start against a response that records what it sets and removes, and the function returned replays
 * that on a response. The headers are exactly helmet's (security-headers.test.ts pins that); helmet per request cost
 * 94-217k more callgrind instructions a request than the replay, 16-47 % of the service's (issue 14 item 3).
 */
export function securityHeaders(): (res: ServerResponse) => void {
  const steps: Array<[name: string, value: string | undefined]> = [];
  const recorder = {
    setHeader: (name: string, value: string) => void steps.push([name, value]),
    removeHeader: (name: string) => void steps.push([name, undefined]),
  };
  let finished = false;
  helmet()({} as IncomingMessage, recorder as unknown as ServerResponse, (err?: unknown) => {
    if (err) throw err;
    finished = true;
  });
  if (!finished) throw new Error("helmet did not finish synchronously: its headers cannot be recorded");
  return (res) => {
    for (const [name, value] of steps) {
      if (value === undefined) res.removeHeader(name);
      else res.setHeader(name, value);
    }
  };
}
