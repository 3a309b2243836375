/**
 * A failed `withExec`, as the SDK reports it. The SDK's `ExecError` class is not importable here: the Dagger runtime
 * gives a module an SDK index without it (dagger/dagger sdk/typescript/runtime/tsutils/module/index.ts), and importing
 * a name that index lacks fails the whole module at load. So it is recognised by its `name`, which the class sets.
 */
export interface ExecFailure extends Error {
  name: "ExecError";
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Whether `err` is the SDK's error for a command that exited non-zero. */
export function isExecError(err: unknown): err is ExecFailure {
  return err instanceof Error && err.name === "ExecError";
}
