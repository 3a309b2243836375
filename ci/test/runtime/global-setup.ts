// Vitest global setup: resolve (and on first use install) the runtime's Node.js once, before test files run in
// parallel, and hand its path to them as `inject("runtimeNode")`.
import type { TestProject } from "vitest/node";
import { runtimeNode } from "./runtime-node.js";

export default function setup(project: TestProject): void {
  project.provide("runtimeNode", runtimeNode());
}

declare module "vitest" {
  export interface ProvidedContext {
    runtimeNode: string;
  }
}
