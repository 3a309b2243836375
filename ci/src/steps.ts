/**
 * The record of a `ci` run: one line per step, in the pipeline's order whatever order the steps finish in. It is what
 * `ci` returns, and what its error carries when a step fails.
 */
export class StepLog {
  private readonly header: string;
  private readonly order: readonly string[];
  private readonly lines = new Map<string, string>();

  /**
   * @param header the first line: what is being run, on which branch and version
   * @param order every step's name, in the order their lines are printed
   */
  constructor(header: string, order: readonly string[]) {
    this.header = header;
    this.order = order;
  }

  /**
   * Runs one step and records `outcome(result)`. If the step throws, records the failure and throws an error whose
   * message is the whole log so far, so the reader sees what already happened (e.g. published but not deployed).
   */
  async run<T>(step: string, work: () => Promise<T>, outcome: (result: T) => string): Promise<T> {
    if (!this.order.includes(step)) throw new Error(`step ${step} is not one of ${this.order.join(", ")}`);
    let result: T;
    try {
      result = await work();
    } catch (err) {
      this.lines.set(step, `${step}: FAILED: ${(err as Error).message}`);
      throw new Error(this.toString());
    }
    this.lines.set(step, `${step}: ${outcome(result)}`);
    return result;
  }

  /**
   * Runs independent chains of steps at once and waits for every one to finish, even after one has failed (their
   * work is already under way in the engine), so the log says how each ended; then throws the whole log if any failed.
   */
  async together(chains: readonly (() => Promise<unknown>)[]): Promise<void> {
    const settled = await Promise.allSettled(chains.map((chain) => chain()));
    if (settled.some((outcome) => outcome.status === "rejected")) throw new Error(this.toString());
  }

  /** Records a step that the branch rules leave out, and why. */
  skip(step: string, why: string): void {
    this.lines.set(step, `${step}: skipped (${why})`);
  }

  /** The log: the header, then one line per step that ran or was skipped, in the pipeline's order. */
  toString(): string {
    return [this.header, ...this.order.flatMap((step) => this.lines.get(step) ?? [])].join("\n");
  }
}
