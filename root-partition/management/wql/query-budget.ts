/**
 * The work one query may make the service do. A WHERE clause runs on the service's only thread,
 * so a query that compares long patterns with long values over many instances would keep every
 * other client waiting; each evaluation step (a node of the clause, a character compared by LIKE)
 * is charged here, and a query that runs out answers CIM_ERR_SERVER_LIMITS_EXCEEDED (27, DSP0200
 * "server limits exceeded") instead of running on.
 */
import { CimError } from '../cim/errors.ts';

/** About 50-100 ms of evaluation on one core: far beyond any query over a host's VMs. */
export const DEFAULT_QUERY_STEP_LIMIT = 5_000_000;

export class WqlQueryBudget {
  readonly limit: number;
  private used = 0;

  constructor(limit = DEFAULT_QUERY_STEP_LIMIT) {
    if (!(limit > 0)) throw new RangeError(`query step limit must be positive, got ${limit}`);
    this.limit = limit;
  }

  get spent(): number {
    return this.used;
  }

  charge(steps: number): void {
    this.used += steps;
    if (this.used > this.limit) {
      throw new CimError(
        'CIM_ERR_SERVER_LIMITS_EXCEEDED',
        `query too expensive: it needs more than ${this.limit} evaluation steps; narrow the WHERE clause or shorten its LIKE patterns`,
      );
    }
  }
}
