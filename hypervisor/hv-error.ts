import { HvStatus } from '../abi/hv-status.ts';

/** An error with a stable code and, where it applies, the TLFS status it maps to. */
export class HvError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status: HvStatus = HvStatus.InvalidParameter,
  ) {
    super(message);
    this.name = 'HvError';
  }
}
