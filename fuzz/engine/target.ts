/**
 * What a fuzz target declares: how to run one input against the real code, and which errors
 * are the code's declared, clean refusals of bad input. Anything else that escapes (a TypeError,
 * a RangeError from a typed array, an assertion the target makes about the outcome), a run
 * longer than the time limit, or memory beyond the bound is a finding.
 */
export interface FuzzTarget {
  readonly name: string;
  /** One line: which parser or state machine, and what the input bytes mean. */
  readonly description: string;
  /** Inputs longer than this are cut (the parser's own size limit, or what the target reads). */
  readonly maxInputBytes: number;
  /** Byte strings mutations splice in: keywords, magic numbers, well-formed fragments. */
  readonly dictionary?: readonly (string | Uint8Array)[];
  /** Starting inputs when the committed corpus is empty (well-formed examples). */
  seeds(): Uint8Array[];
  /**
   * Runs one input. Throws on a bug (including a broken invariant the target checks). Must not
   * keep state between inputs that changes the outcome of later ones, so that a finding replays
   * alone. May be async (the CIM-XML extrinsic methods are).
   */
  run(input: Uint8Array): void | Promise<void>;
  /** True for an error the code under test throws by design for bad input. */
  isExpectedError(e: unknown): boolean;
  /** Frees what the target holds (temporary files). */
  dispose?(): void;
}

/** A broken invariant found by a target: always a bug. */
export class FuzzInvariantError extends Error {
  override readonly name = 'FuzzInvariantError';
}

export function invariant(condition: unknown, what: string): asserts condition {
  if (!condition) throw new FuzzInvariantError(what);
}

export const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
export const fromUtf8 = (b: Uint8Array): string => new TextDecoder().decode(b);
