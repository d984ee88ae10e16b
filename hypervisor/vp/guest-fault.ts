/** A guest action the platform refuses (a #GP, #UD or an access outside memory): stops the VP. */
export class GuestFault extends Error {
  constructor(
    readonly kind: 'gp' | 'ud' | 'memory' | 'panic' | 'trap',
    message: string,
  ) {
    super(message);
    this.name = 'GuestFault';
  }
}

/** Unwinds a VP out of guest code for a reason that is not the guest's fault. */
export class VpStop extends Error {
  constructor(readonly reason: 'stopped' | 'halted' | 'reset') {
    super(reason);
    this.name = 'VpStop';
  }
}
