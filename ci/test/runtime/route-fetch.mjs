// Preloaded into the runtime's Node by runtime-call.test.ts (NODE_OPTIONS=--import): sends the module's requests for the
// origins in DUMMYAPP_TEST_ROUTES ({"https://registry-1.docker.io": "http://127.0.0.1:5000"}) to loopback stand-ins.
const routes = Object.entries(JSON.parse(process.env.DUMMYAPP_TEST_ROUTES ?? "{}"));
const realFetch = globalThis.fetch;
globalThis.fetch = (input, init) => {
  const url = input instanceof Request ? input.url : String(input);
  const route = routes.find(([from]) => url.startsWith(`${from}/`));
  if (!route) return realFetch(input, init);
  const routed = route[1] + url.slice(route[0].length);
  return realFetch(input instanceof Request ? new Request(routed, input) : routed, init);
};
