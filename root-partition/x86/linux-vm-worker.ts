/**
 * A VMMS-managed Linux VM inside its worker process: the built-in Linux guest (linux-guest-vm.ts)
 * on an x86 VP thread, with the operations VMMS asks for — turn off, reset, the integration
 * services' heartbeat, shutdown and KVP, console — and a clear refusal for those that need the
 * VM's state captured (linux-vm-rules.ts). The same events as a WebAssembly VM's worker
 * (vmwp/vm-worker.ts): 'console', 'state', 'heartbeat', 'kvp', 'device-failure', 'guest-stopped'.
 */
import { EventEmitter } from 'node:events';
import type { WorkerCounters } from '../ipc/bulk-codec.ts';
import type { Logger } from '../host/log.ts';
import { GuestLogLimiter } from '../vmwp/guest-log-limiter.ts';
import type { WorkerLaunch, WorkerState } from '../vmwp/vm-worker.ts';
import { HeartbeatStatus } from '../vsp/ic/heartbeat-vsp.ts';
import type { ShutdownAnswer } from '../vsp/ic/shutdown-vsp.ts';
import { readLinuxGuestManifest } from './linux-guest-manifest.ts';
import { startLinuxGuest } from './linux-guest-vm.ts';
import { linuxVmRefusal } from './linux-vm-rules.ts';
import type { X86IcReply, X86IcRequest } from './x86-ic-requests.ts';
import type { X86Vm } from './x86-vm.ts';

/** An operation a Linux VM does not have, with the code VMMS reports and why. */
export class LinuxVmRefusedError extends Error {
  readonly code = 'VMWP_ERR_LINUX_UNSUPPORTED';
}

export class LinuxVmWorker extends EventEmitter {
  state: WorkerState = 'booting';
  readonly startedAt = Date.now();
  private vm: X86Vm | null = null;
  /** Set while the worker itself ends the VM (turn-off, reset), so its end is not "the guest stopped". */
  private stopping = false;
  private consoleBytes = 0;
  private readonly guestLog: GuestLogLimiter;

  constructor(
    readonly launch: WorkerLaunch,
    private readonly log: Logger,
  ) {
    super();
    // VMBus and integration-service errors are the guest's doing: rate-limited like a device thread's.
    this.guestLog = new GuestLogLimiter((m) => this.log.warn(`devices: ${m}`));
  }

  /** Starts the guest's processor; Running from then on (Linux boots on its own time). */
  async boot(): Promise<void> {
    const l = this.launch;
    const manifest = readLinuxGuestManifest(l.imagePath, l.storageRoots);
    const scsi = l.devices?.scsi ?? [];
    if (scsi.length > 1) throw new LinuxVmRefusedError('the Linux guest has one SCSI controller');
    const vm = startLinuxGuest({
      manifest,
      memoryBytes: l.memoryBytes,
      ...(l.cmdline ? { cmdline: l.cmdline } : {}),
      scsi: (scsi[0]?.disks ?? []).map((d, i) => ({ ...d, location: d.location ?? i })),
      ...(l.storageRoots ? { storageRoots: l.storageRoots } : {}),
      // A definition without an integration-services entry offers none, as for any VM.
      integrationServices: l.devices?.integrationServices ?? { heartbeat: false, shutdown: false, timeSync: false, kvp: false },
      reportIntegration: true,
      nics: (l.devices?.nics ?? []).filter((n) => n.kind === 'synthetic'),
    });
    this.attach(vm);
    await vm.whenStarted();
    this.setState('running');
  }

  private attach(vm: X86Vm): void {
    this.vm = vm;
    vm.on('console', (bytes) => {
      this.consoleBytes += bytes.length;
      this.emit('console', bytes);
    });
    vm.on('log', (m) => this.guestLog.log(m));
    vm.on('error', (e) => this.log.error(`x86 VP thread: ${e.message}`));
    vm.on('heartbeat', (s) => this.emit('heartbeat', s));
    vm.on('kvp', (items) => this.emit('kvp', items));
    vm.on('end', (end) => {
      if (this.stopping || this.vm !== vm) return;
      this.vm = null;
      this.guestLog.flush(true);
      if (end.reason === 'poweroff') {
        this.log.info('the guest powered off (ACPI S5)');
        this.setState('stopped');
        this.emit('guest-stopped', [{ vp: 0, reason: 'poweroff' }]);
      } else {
        const why = vm.error?.message ?? 'the x86 VP thread ended';
        this.log.error(why);
        this.setState('stopped');
        this.emit('device-failure', why);
      }
    });
  }

  private setState(s: WorkerState): void {
    if (this.state === s) return;
    this.state = s;
    this.emit('state', s);
  }

  private get live(): X86Vm {
    if (!this.vm || this.state !== 'running') throw new Error(`the VM is ${this.state}`);
    return this.vm;
  }

  private async ic(request: X86IcRequest): Promise<X86IcReply & { ok: true }> {
    const r = await this.live.ic(request);
    if (!r.ok) throw Object.assign(new Error(r.error), { code: r.code });
    return r;
  }

  consoleInput(bytes: Uint8Array): void {
    this.vm?.input(bytes);
  }

  async heartbeatStatus(): Promise<number> {
    return (await this.ic({ op: 'heartbeat' })).heartbeat ?? HeartbeatStatus.NoContact;
  }

  async initiateShutdown(o: { force: boolean; reason: string; timeoutMs: number }): Promise<ShutdownAnswer> {
    return (await this.ic({ op: 'shutdown', ...o })).shutdown!;
  }

  /** Resolves when the guest has powered off (or the VM ended otherwise), at once when none runs. */
  whenGuestStopped(): Promise<void> {
    return this.vm ? this.vm.whenEnded().then(() => undefined) : Promise.resolve();
  }

  async kvpGet(pool: number, key: string): Promise<string | null> {
    return (await this.ic({ op: 'kvp-get', pool, key })).value ?? null;
  }

  async kvpSet(pool: number, key: string, value: string): Promise<{ ok: boolean; reason?: string }> {
    return (await this.ic({ op: 'kvp-set', pool, key, value })).done!;
  }

  async kvpDelete(pool: number, key: string): Promise<{ ok: boolean; reason?: string }> {
    return (await this.ic({ op: 'kvp-delete', pool, key })).done!;
  }

  async turnOff(): Promise<void> {
    this.stopping = true;
    const vm = this.vm;
    this.vm = null;
    await vm?.stop();
    this.guestLog.flush(true);
    this.setState('stopped');
  }

  /** A hard reset: the processor is stopped and the guest boots again from the firmware. */
  async reset(): Promise<void> {
    this.live;
    this.stopping = true;
    const old = this.vm!;
    this.vm = null;
    await old.stop();
    this.stopping = false;
    this.state = 'booting';
    await this.boot();
  }

  /** The x86 VP kind has no per-VP hypervisor counters of a WebAssembly partition: console figures only. */
  counters(): WorkerCounters {
    return { vps: [], interceptsServed: 0, consoleBytes: this.consoleBytes, consoleDroppedBytes: 0, guestLogLinesSuppressed: this.guestLog.suppressed };
  }

  refuse(operation: Parameters<typeof linuxVmRefusal>[0]): never {
    throw new LinuxVmRefusedError(linuxVmRefusal(operation));
  }

  refuseText(operation: Parameters<typeof linuxVmRefusal>[0]): string {
    return linuxVmRefusal(operation);
  }
}
