/**
 * Splits the CPU's compute threads between the runners computing at the same moment.
 *
 * Each CPU runner starts with a thread per core, the fastest choice while it computes alone.
 * Two such runners computing at once oversubscribe the cores, and get less done together than
 * one alone (bench/bench_side_by_side.py; figures in docs/performance.md). So every call tells its runner how many threads to use: its
 * count at start divided by the number of CPU runners with calls in flight, this one included.
 * A runner that falls back to computing alone gets its full count on its next call.
 *
 * One instance serves every model of the gateway, since they share the cores. A runner counts
 * from the first call it is sent until its last one in flight returns.
 */
export class CpuShare {
  /** Calls in flight per busy runner. */
  readonly #busy = new Map<object, number>();

  /** Counts a call to runner as started; returns the threads it may use out of alone (at least 1). */
  begin(runner: object, alone: number): number {
    this.#busy.set(runner, (this.#busy.get(runner) ?? 0) + 1);
    return Math.max(1, Math.floor(alone / this.#busy.size));
  }

  /** Counts the call begun for runner as returned. */
  end(runner: object): void {
    const n = this.#busy.get(runner) ?? 0;
    if (n <= 1) this.#busy.delete(runner);
    else this.#busy.set(runner, n - 1);
  }
}
