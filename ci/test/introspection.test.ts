// What `dagger functions` and `dagger call <function> --help` will show, read offline by the SDK's own introspector
// (the code the TypeScript runtime runs to register the module). It is internal API, imported by file path: it is not
// in the package's exports. It resolves core types (Container, Directory…) only from a source file named
// client.gen.ts, so the package's client.gen.d.ts is copied under that name; loadModule=false keeps it from running
// the module.
import { copyFileSync, mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { scan } from "../../node_modules/@dagger.io/dagger/dist/src/module/introspector/index.js";
import type { DaggerObject } from "../../node_modules/@dagger.io/dagger/dist/src/module/introspector/dagger_module/object.js";
import { BUILDER_IMAGE, POETRY_IMAGE, RUNTIME_IMAGE } from "../src/images.js";
import { SOURCE_IGNORE } from "../src/image.js";

const SDK = join(__dirname, "../../node_modules/@dagger.io/dagger/dist/src/api/client.gen.d.ts");
const SRC = join(__dirname, "../src");

interface TypeDef {
  kind: string;
  name?: string;
  typeDef?: TypeDef;
}
interface Arg {
  name: string;
  description: string;
  type: TypeDef;
  isOptional: boolean;
  defaultValue?: unknown;
  defaultPath?: string;
  ignore?: string[];
}
interface Fn {
  description: string;
  arguments: Record<string, Arg>;
  returnType: TypeDef;
}

let main: DaggerObject;
let json: { description: string; constructor: { arguments: Record<string, Arg> }; methods: Record<string, Fn> };

beforeAll(async () => {
  const sdk = join(mkdtempSync(join(tmpdir(), "dagger-sdk-")), "client.gen.ts");
  copyFileSync(SDK, sdk);
  const files = readdirSync(SRC).filter((f) => f.endsWith(".ts")).map((f) => join(SRC, f));
  const module = await scan([sdk, ...files], "dummyapp", false);
  main = module.objects.Dummyapp as DaggerObject;
  json = JSON.parse(JSON.stringify(main)) as typeof json;
}, 60_000);

/** A type as the CLI help shows it: `String`, `[String]`, `Container`, `Platform`. */
function typeName(type: TypeDef): string {
  if (type.kind === "LIST_KIND") return `[${typeName(type.typeDef!)}]`;
  return type.name ?? { STRING_KIND: "String", INTEGER_KIND: "Int", BOOLEAN_KIND: "Boolean" }[type.kind] ?? type.kind;
}

/** A function's arguments as `name: Type = default` (or `?` when optional without a default, `!` when required). */
function signature(args: Record<string, Arg>): string[] {
  return Object.values(args).map((a) => {
    const tail = a.defaultValue !== undefined ? ` = ${JSON.stringify(a.defaultValue)}` : a.isOptional ? "?" : "!";
    return `${a.name}: ${typeName(a.type)}${tail}`;
  });
}

describe("the module as the Dagger CLI lists it", () => {
  it("is the Dummyapp object, described", () => {
    expect(main.name).toBe("Dummyapp");
    expect(json.description).toMatch(/^dummyapp's pipeline, as Dagger functions/);
  });

  it("takes the repository as a default-path source with build output, dependencies and git metadata ignored, and overridable images", () => {
    const { source, ...images } = json.constructor.arguments;
    expect(source).toMatchObject({ type: { kind: "OBJECT_KIND", name: "Directory" }, defaultPath: "/", ignore: SOURCE_IGNORE });
    expect(SOURCE_IGNORE).toEqual(expect.arrayContaining([".git", "**/node_modules", "**/dist", "ci/sdk"]));
    expect(signature(images)).toEqual([
      `builderImage: String = ${JSON.stringify(BUILDER_IMAGE)}`,
      `runtimeImage: String = ${JSON.stringify(RUNTIME_IMAGE)}`,
      `poetryImage: String = ${JSON.stringify(POETRY_IMAGE)}`,
    ]);
    for (const arg of Object.values(json.constructor.arguments)) expect(arg.description, arg.name).not.toBe("");
  });

  it("has the pipeline's functions with their arguments, defaults and return types", () => {
    const listed = Object.entries(json.methods).map(([name, fn]) => ({
      name,
      returns: typeName(fn.returnType),
      args: signature(fn.arguments),
    }));
    expect(listed).toEqual([
      {
        name: "build",
        returns: "Container",
        args: ["tags: [String] = []", "version: String?", "platform: Platform?", "commit: String?"],
      },
      { name: "poetry", returns: "Directory", args: ["image: String?"] },
      { name: "test", returns: "String", args: [] },
      { name: "serve", returns: "Service", args: ["tags: [String] = []"] },
      { name: "smoke", returns: "String", args: ["tags: [String] = []"] },
      {
        name: "publish",
        returns: "[String]",
        args: [
          "tag: [String] = []",
          'repository: String = "pennocktech/dummyapp"',
          'registry: String = "docker.io"',
          "username: Secret?",
          "password: Secret?",
          "version: String?",
          'platforms: [String] = ["linux/amd64","linux/arm64"]',
        ],
      },
      {
        name: "deployHeroku",
        returns: "String",
        args: [
          'app: String = "pt-dummy-app"',
          "token: Secret!",
          'processType: String = "web"',
          'apiUrl: String = "https://api.heroku.com"',
          'registry: String = "registry.heroku.com"',
          "verifyUrl: String?",
          "version: String?",
          "commit: String?",
        ],
      },
      {
        name: "ci",
        returns: "String",
        args: [
          "branch: String!",
          "commit: String?",
          "dockerhubUsername: Secret?",
          "dockerhubPassword: Secret?",
          "herokuToken: Secret?",
          'herokuApp: String = "pt-dummy-app"',
        ],
      },
    ]);
  });

  it("documents every function with a summary and a `dagger call` example, and every argument", () => {
    for (const [name, fn] of Object.entries(json.methods)) {
      const kebab = name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
      expect(fn.description, name).toMatch(/^\S.+\n/);
      expect(fn.description, name).toContain(`Example: \`dagger call ${kebab}`);
      for (const arg of Object.values(fn.arguments)) expect(arg.description, `${name} ${arg.name}`).not.toBe("");
    }
  });

  it("runs test and smoke, and only those, under `dagger check`", () => {
    const checks = Object.values(main.methods).filter((fn) => fn.isCheck).map((fn) => fn.name);
    expect(checks).toEqual(["test", "smoke"]);
    // `dagger check` calls them with no arguments.
    for (const name of checks) {
      const args = Object.values(main.methods[name]!.arguments);
      expect(args.every((a) => a.isOptional || a.defaultValue !== undefined), name).toBe(true);
    }
  });
});
