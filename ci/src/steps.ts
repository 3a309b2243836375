/** The record of a `ci` run: one line per step. It is what `ci` returns, and what its error carries when a step fails. */
export class StepLog {
  private readonly lines: string[];

  /** @param header the first line: what is being run, on which branch and version */
  constructor(header: string) {
    this.lines = [header];
  }

  /**
   * Runs one step and records `outcome(result)`. If the step throws, records the failure and throws an error whose
   * message is the whole log so far, so the reader sees what already happened (e.g. published but not deployed).
   */
  async run<T>(step: string, work: () => Promise<T>, outcome: (result: T) => string): Promise<T> {
    let result: T;
    try {
      result = await work();
    } catch (err) {
      this.lines.push(`${step}: FAILED: ${(err as Error).message}`);
      throw new Error(this.toString());
    }
    this.lines.push(`${step}: ${outcome(result)}`);
    return result;
  }

  /** Records a step that the branch rules leave out, and why. */
  skip(step: string, why: string): void {
    this.lines.push(`${step}: skipped (${why})`);
  }

  /** The log, one line per step. */
  toString(): string {
    return this.lines.join("\n");
  }
}
