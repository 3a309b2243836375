// One function call as the Dagger engine makes it: the runtime's entrypoint (module-layout.ts) runs under tsx 4.15.6
// on Node 24.13.1 in a child process, asks an engine double of its own which call it is (currentModule.name,
// currentFunctionCall.parentName/name/parent/inputArgs), runs it, and hands back returnValue or returnError.
import { spawn } from "node:child_process";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { type Answers, type Call, decodeId, encodeId, ObjectList, type RecordedQuery } from "../engine-double.js";
import { startEngine } from "../transcript.js";
import { type ModuleLayout, TSX_CLI } from "./module-layout.js";

/** The call the engine is making: `parentName` is the module's object; `name` "" is its constructor. */
export interface FunctionCall {
  parentName: string;
  name: string;
  /** The object's state, as the constructor call returned it. */
  parent?: Record<string, unknown>;
  /** Arguments as the engine passes them (JSON values; objects such as secrets as IDs). */
  inputArgs?: Record<string, unknown>;
}

/** What came back through the engine API, and the process's own output. */
export interface CallOutcome {
  /** The JSON value given to returnValue, parsed. */
  value?: unknown;
  /** The message of the error given to returnError. */
  error?: string;
  exitCode: number | null;
  stdout: string;
  stderr: string;
  /** The function's own queries: not the entrypoint's questions, nor the making of its answer. */
  queries: RecordedQuery[];
}

const CALL: Call = { field: "currentFunctionCall", args: {} };
const ENTRYPOINT_ROOTS = new Set(["currentModule", "currentFunctionCall"]);

/** The engine's answers to the entrypoint's questions about `call` (undefined for any other query). */
export function entrypointAnswers(call: FunctionCall, moduleName = "dummyapp"): Answers {
  return (leaf, chain) => {
    const [root, second, third] = chain;
    if (!root || !ENTRYPOINT_ROOTS.has(root.field)) return undefined;
    if (root.field === "currentModule") return leaf.field === "name" ? moduleName : undefined;
    if (!second) {
      const answers: Record<string, unknown> = {
        parentName: call.parentName,
        name: call.name,
        parent: JSON.stringify(call.parent ?? {}),
        returnValue: null,
        returnError: null,
      };
      return answers[leaf.field];
    }
    if (second.field === "inputArgs" && !third && leaf.field === "id") {
      const argument = (name: string) =>
        encodeId([CALL, { field: "inputArgs", args: {} }, { field: "inputArg", args: { name } }]);
      return new ObjectList(Object.keys(call.inputArgs ?? {}).map(argument));
    }
    if (third?.field === "inputArg") {
      const name = String(third.args.name);
      if (leaf.field === "name") return name;
      if (leaf.field === "value") return JSON.stringify(call.inputArgs![name]);
    }
    return undefined;
  };
}

/** Preloaded into the runtime's Node to send the module's requests for some origins to loopback stand-ins. */
const ROUTE_FETCH = join(__dirname, "route-fetch.mjs");

/**
 * Runs `call` through the entrypoint of `layout` with `node`, against a new engine double that answers the call's
 * questions and then `answers` (and transcript.ts's manifest and poems). The module's HTTP requests to an origin in
 * `routes` go to the origin it maps to instead (e.g. Docker Hub's API to a loopback registry).
 */
export async function callThroughEntrypoint(
  call: FunctionCall,
  layout: ModuleLayout,
  node: string,
  answers: Answers,
  routes: Record<string, string> = {},
): Promise<CallOutcome> {
  const asked = entrypointAnswers(call);
  // Not `??`: null is an answer (returnValue's).
  const engine = await startEngine((leaf, chain) => {
    const answer = asked(leaf, chain);
    return answer === undefined ? answers(leaf, chain) : answer;
  });
  try {
    const child = spawn(node, [TSX_CLI, "--no-deprecation", "--tsconfig", layout.tsconfig, layout.entrypoint], {
      cwd: layout.dir,
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        NODE_OPTIONS: `--import=${pathToFileURL(ROUTE_FETCH).href}`,
        DUMMYAPP_TEST_ROUTES: JSON.stringify(routes),
        ...engine.sessionEnv(),
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    const exitCode = await new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));

    const answered = engine.queries
      .map((q) => q.chain)
      .find((c) => c[0]?.field === "currentFunctionCall" && /^return(Value|Error)$/.test(c[1]?.field ?? ""));
    const outcome: CallOutcome = {
      exitCode,
      stdout,
      stderr,
      // The error to return is made into an ID by an `error(message)` query of its own.
      queries: engine.queries.filter((q) => !ENTRYPOINT_ROOTS.has(q.chain[0]!.field) && q.chain[0]!.field !== "error"),
    };
    const leaf = answered?.[1];
    if (leaf?.field === "returnValue") outcome.value = JSON.parse(String(leaf.args.value));
    if (leaf?.field === "returnError")
      outcome.error = String(decodeId(leaf.args.error)?.find((c) => c.field === "error")?.args.message);
    return outcome;
  } finally {
    await engine.close();
  }
}
