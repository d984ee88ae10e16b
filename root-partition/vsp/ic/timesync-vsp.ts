/**
 * Time synchronization: the host sends its UTC time as a Windows FILETIME. The first sample after
 * negotiation carries SYNC (set the clock now), later ones SAMPLE, every `sampleIntervalMs`
 * (Linux timesync_onchannelcallback / adj_guesttime, drivers/hv/hv_util.c). With message
 * version 4.0 each sample also carries the partition reference time at which the host read its
 * clock, so the guest can correct for the delivery delay: guest UTC = parenttime + (its reference
 * time now − vmreferencetime).
 */
import { encodeTimeSample, filetimeFromUnixMs, TimeSyncFlag } from './ic-bodies.ts';
import { IcStatus } from './ic-protocol.ts';
import { TIMESYNC_SERVICE } from './ic-services.ts';
import { IcVsp, type IcVspOptions } from './ic-vsp.ts';
import { icStateError, type IcSavedState } from './ic-saved-state.ts';

export interface TimeSyncOptions extends IcVspOptions {
  /** Between SAMPLE messages (default 5000 ms). */
  sampleIntervalMs?: number;
  /** The host's UTC clock in ms since 1970 (default Date.now), injected for tests. */
  clock?: () => number;
  /** The partition reference time in 100 ns units (HV_X64_MSR_TIME_REF_COUNT). */
  referenceTime: () => bigint;
}

export class TimeSyncVsp extends IcVsp {
  readonly samples = { sent: 0, acknowledged: 0, refused: 0 };
  /** The last sample the guest acknowledged. */
  lastSample: { parentTime: bigint; referenceTime: bigint; flags: number } | null = null;
  private timer: NodeJS.Timeout | null = null;
  private readonly clock: () => number;

  constructor(private readonly options: TimeSyncOptions) {
    super(TIMESYNC_SERVICE, options);
    this.clock = options.clock ?? Date.now;
  }

  protected negotiatedHook(): void {
    void this.sendSample(TimeSyncFlag.Sync);
    this.timer = setInterval(() => void this.sendSample(TimeSyncFlag.Sample), this.options.sampleIntervalMs ?? 5000);
    this.timer.unref?.();
  }

  protected override channelClosed(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  protected override pauseService(): void {
    this.channelClosed();
  }

  protected override saveService(): Partial<IcSavedState> {
    return { timeSync: { lastSample: this.lastSample && { ...this.lastSample } } };
  }

  /** After a restore negotiatedHook sends SYNC first: the guest's clock stood still while it was saved. */
  protected override restoreService(s: IcSavedState): () => void {
    if (!s.timeSync) throw icStateError(this.spec.name, 'no time sync state');
    const last = s.timeSync.lastSample;
    return () => {
      this.lastSample = last && { ...last };
    };
  }

  /** Sends one sample now (SYNC asks the guest to step its clock). Resolves true when acknowledged. */
  async sendSample(flags: number = TimeSyncFlag.Sample): Promise<boolean> {
    if (!this.ready) return false;
    const major = this.negotiated!.message.major;
    const sample = {
      parentTime: filetimeFromUnixMs(this.clock()),
      // Below 4.0 the field is childtime, which the host leaves 0.
      referenceTime: major >= 4 ? this.options.referenceTime() : 0n,
      flags,
    };
    this.samples.sent++;
    const r = await this.request(encodeTimeSample(sample, major));
    if (r.kind !== 'reply') return false;
    if (r.status !== IcStatus.Ok) {
      this.samples.refused++;
      return false;
    }
    this.samples.acknowledged++;
    this.lastSample = sample;
    return true;
  }
}
