// A TEST DOUBLE for the Dagger engine. It is not Dagger: it is a loopback GraphQL endpoint that the real SDK talks to
// (through DAGGER_SESSION_PORT / DAGGER_SESSION_TOKEN, as a module's runtime does), which records every query and
// answers like the engine would: an object as an ID that encodes the chain of calls it stands for (the engine's IDs
// encode their call chain too), a leaf with a plausible value. Tests then read what the module asked the engine to
// build.
import { createHash } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { connection } from "@dagger.io/dagger";
import { type FieldNode, Kind, parse, type SelectionNode, type SelectionSetNode, valueFromASTUntyped } from "graphql";

/** One field selection: `withExec(args: ["npm", "ci"])` is `{ field: "withExec", args: { args: ["npm", "ci"] } }`. */
export interface Call {
  field: string;
  args: Record<string, unknown>;
}

/** One query as received: its text, and the call chain it selects with IDs it came from already substituted. */
export interface RecordedQuery {
  text: string;
  chain: Call[];
}

/** A leaf the engine answers with an error, e.g. a failed `withExec` (the SDK turns EXEC_ERROR into ExecError). */
export class EngineError {
  constructor(
    readonly message: string,
    readonly extensions: Record<string, unknown> = {},
  ) {}
}

/** The answer to a leaf under a list of objects (`inputArgs { id }`): one leaf value per object of the list. */
export class ObjectList {
  constructor(readonly leaves: unknown[]) {}
}

/** Test-specific leaf answers (or promises of them, e.g. after a real push): undefined falls back to the defaults. */
export type Answers = (leaf: Call, chain: Call[]) => unknown;

const ID_PREFIX = "engine-double-id:";

/** The ID standing for `chain`. */
export function encodeId(chain: Call[]): string {
  return ID_PREFIX + Buffer.from(JSON.stringify(chain)).toString("base64url");
}

/** The chain an ID of this double stands for; undefined for any other string (e.g. a source ID the test made up). */
export function decodeId(id: unknown): Call[] | undefined {
  if (typeof id !== "string" || !id.startsWith(ID_PREFIX)) return undefined;
  return JSON.parse(Buffer.from(id.slice(ID_PREFIX.length), "base64url").toString()) as Call[];
}

/** How long the engine takes to answer a leaf, in ms (0: at once), e.g. an exec's simulated duration. */
export type Delays = (leaf: Call, chain: Call[]) => number;

export class EngineDouble {
  readonly queries: RecordedQuery[] = [];
  /** Simulated work: each leaf is answered after this many ms, so a test can see what runs concurrently. */
  delay: Delays = () => 0;

  private constructor(
    private readonly server: Server,
    private readonly token: string,
    private readonly answers: Answers,
  ) {}

  /** Starts the double on 127.0.0.1 with a free port. */
  static async start(answers: Answers = () => undefined): Promise<EngineDouble> {
    let double: EngineDouble | undefined;
    const server = createServer(async (req, res) => {
      let body = "";
      for await (const chunk of req) body += chunk;
      const { status, payload } = await double!.handle(req.headers.authorization, body);
      res.writeHead(status, { "Content-Type": "application/json" }).end(JSON.stringify(payload));
    });
    // The SDK reuses keep-alive connections; Node's 5 s idle timeout would race a busy client into "socket hang up".
    server.keepAliveTimeout = 10 * 60_000;
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    double = new EngineDouble(server, "engine-double-session-token", answers);
    return double;
  }

  /** The environment that points an SDK at this double, as the engine's does for a module's runtime container. */
  sessionEnv(): { DAGGER_SESSION_PORT: string; DAGGER_SESSION_TOKEN: string } {
    return {
      DAGGER_SESSION_PORT: String((this.server.address() as AddressInfo).port),
      DAGGER_SESSION_TOKEN: this.token,
    };
  }

  /** Runs `fn` connected to this double as the global `dag`, as the module runtime runs a function. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    Object.assign(process.env, this.sessionEnv());
    let result: T | undefined;
    try {
      await connection(async () => {
        result = await fn();
      });
    } finally {
      delete process.env.DAGGER_SESSION_PORT;
      delete process.env.DAGGER_SESSION_TOKEN;
    }
    return result as T;
  }

  /** Stops listening. */
  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private async handle(authorization: string | undefined, body: string): Promise<{ status: number; payload: unknown }> {
    if (authorization !== `Basic ${Buffer.from(`${this.token}:`).toString("base64")}`) {
      return { status: 401, payload: { errors: [{ message: "bad session token" }] } };
    }
    const text = (JSON.parse(body) as { query: string }).query;
    const operation = parse(text).definitions[0];
    if (operation?.kind !== Kind.OPERATION_DEFINITION) throw new Error(`not a query: ${text}`);
    const path: string[] = [];
    const chain: Call[] = [];
    let selections: SelectionSetNode | undefined = operation.selectionSet;
    while (selections) {
      const selection: SelectionNode = selections.selections[0]!;
      if (selection.kind === Kind.INLINE_FRAGMENT) {
        selections = selection.selectionSet;
        continue;
      }
      const field = selection as FieldNode;
      const args = Object.fromEntries((field.arguments ?? []).map((a) => [a.name.value, valueFromASTUntyped(a.value)]));
      path.push(field.name.value);
      // Loading an object by ID continues the chain that ID stands for.
      const loaded = /^(node|load\w+FromID)$/.test(field.name.value) ? decodeId(args.id) : undefined;
      chain.push(...(loaded ?? [{ field: field.name.value, args }]));
      selections = field.selectionSet;
    }
    const leaf = chain.pop()!;
    this.queries.push({ text, chain: [...chain, leaf] });
    const value = await this.answer(leaf, chain);
    if (value instanceof EngineError) {
      return {
        status: 200,
        payload: { data: null, errors: [{ message: value.message, path, extensions: value.extensions }] },
      };
    }
    const leafName = path.pop()!;
    const innermost =
      value instanceof ObjectList ? value.leaves.map((v) => ({ [leafName]: v })) : { [leafName]: value };
    const data = path.reduceRight<unknown>((inner, name) => ({ [name]: inner }), innermost);
    return { status: 200, payload: { data } };
  }

  private async answer(leaf: Call, chain: Call[]): Promise<unknown> {
    const ms = this.delay(leaf, chain);
    if (ms > 0) await new Promise((resolve) => setTimeout(resolve, ms));
    const specific = this.answers(leaf, chain);
    if (specific !== undefined) return specific;
    switch (leaf.field) {
      case "id":
      case "sync":
        return encodeId(chain);
      case "publish": {
        const digest = createHash("sha256").update(JSON.stringify(chain)).digest("hex");
        return `${String(leaf.args.address)}@sha256:${digest}`;
      }
      case "stdout":
        return "";
      case "entries":
        return [];
      default:
        return new EngineError(`the engine double has no answer for ${leaf.field}`);
    }
  }
}
