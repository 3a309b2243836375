// What `dagger functions` and `dagger call <fn> --help` show: the module's typedefs as the runtime registers them.
// The runtime's introspector (sdk/typescript/src/module/entrypoint/introspection_entrypoint.ts, which the engine runs
// as a compiled binary over the module's src/ and sdk/client.gen.ts) scans the source statically and sends
// `module_().withObject(typeDef().withObject(…).withFunction(function_(…).withArg(…)…))`; the engine double records
// those chains, and this file reads them back.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Call, decodeId } from "../engine-double.js";
import { startEngine } from "../transcript.js";
import type { ModuleLayout } from "./module-layout.js";

const INTROSPECTOR = join(
  __dirname,
  "../../../node_modules/@dagger.io/dagger/dist/src/module/entrypoint/introspection_entrypoint.js",
);

/** One argument as registered. `default` is the JSON the engine shows; absent when none was registered. */
export interface RegisteredArg {
  name: string;
  type: string;
  optional: boolean;
  description: string;
  default?: string;
  defaultPath?: string;
  ignore?: string[];
}

/** One function as registered. */
export interface RegisteredFunction {
  name: string;
  description: string;
  returns: string;
  args: RegisteredArg[];
  /** `withCachePolicy`'s policy and TTL; undefined when none was set (the engine's default). */
  cache?: { policy: string; timeToLive?: string };
  check: boolean;
}

/** One object as registered. */
export interface RegisteredObject {
  name: string;
  description: string;
  constructorArgs: RegisteredArg[];
  functions: RegisteredFunction[];
}

const chainOf = (id: unknown): Call[] => {
  const chain = decodeId(id);
  if (!chain) throw new Error(`not an engine-double ID: ${String(id)}`);
  return chain;
};
const argsOf = (chain: Call[], field: string) => chain.find((c) => c.field === field)?.args;

/** A type as the CLI prints it: `String`, `[String]`, `Container`; `optional` from withOptional. */
function typeOf(id: unknown): { type: string; optional: boolean } {
  const chain = chainOf(id);
  const optional = chain.some((c) => c.field === "withOptional" && c.args.optional === true);
  const list = argsOf(chain, "withListOf");
  if (list) return { type: `[${typeOf(list.elementType).type}]`, optional };
  const named = argsOf(chain, "withObject") ?? argsOf(chain, "withScalar") ?? argsOf(chain, "withEnum");
  if (named) return { type: String(named.name), optional };
  // Kinds go over the wire by their GraphQL names (STRING, INTEGER…).
  const kind = String(argsOf(chain, "withKind")?.kind).replace(/_KIND$/, "");
  return {
    type: { STRING: "String", INTEGER: "Int", BOOLEAN: "Boolean", FLOAT: "Float", VOID: "Void" }[kind] ?? kind,
    optional,
  };
}

function argsFrom(chain: Call[]): RegisteredArg[] {
  return chain
    .filter((c) => c.field === "withArg")
    .map(({ args }) => ({
      name: String(args.name),
      ...typeOf(args.typeDef),
      description: String(args.description ?? ""),
      ...(args.defaultValue !== undefined ? { default: String(args.defaultValue) } : {}),
      ...(args.defaultPath !== undefined ? { defaultPath: String(args.defaultPath) } : {}),
      ...(args.ignore !== undefined ? { ignore: args.ignore as string[] } : {}),
    }));
}

function functionFrom(id: unknown): RegisteredFunction {
  const chain = chainOf(id);
  const [head] = chain;
  const policy = argsOf(chain, "withCachePolicy");
  return {
    name: String(head!.args.name),
    description: String(argsOf(chain, "withDescription")?.description ?? ""),
    returns: typeOf(head!.args.returnType).type,
    args: argsFrom(chain),
    ...(policy
      ? {
          cache: {
            policy: String(policy.policy),
            ...(policy.timeToLive ? { timeToLive: String(policy.timeToLive) } : {}),
          },
        }
      : {}),
    check: chain.some((c) => c.field === "withCheck"),
  };
}

/** Runs the runtime's introspector over `layout` against an engine double; the objects it registered. */
export async function register(
  layout: ModuleLayout,
  node: string,
  moduleName = "dummyapp",
): Promise<RegisteredObject[]> {
  const engine = await startEngine();
  const output = join(mkdtempSync(join(tmpdir(), "typedefs-")), "module-id.json");
  try {
    const child = spawn(node, [INTROSPECTOR, moduleName, layout.src, layout.clientGen], {
      cwd: layout.dir,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, TYPEDEF_OUTPUT_FILE: output, ...engine.sessionEnv() },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
    if (code !== 0) throw new Error(`introspector exited ${code}: ${stderr}`);
  } finally {
    await engine.close();
  }
  const module = chainOf(JSON.parse(readFileSync(output, "utf8")));
  return module
    .filter((c) => c.field === "withObject")
    .map(({ args }) => {
      const typeDef = chainOf(args.object);
      const object = argsOf(typeDef, "withObject")!;
      const construct = argsOf(typeDef, "withConstructor");
      return {
        name: String(object.name),
        description: String(object.description ?? ""),
        constructorArgs: construct ? argsFrom(chainOf(construct.function)) : [],
        functions: typeDef.filter((c) => c.field === "withFunction").map((c) => functionFrom(c.args.function)),
      };
    });
}
