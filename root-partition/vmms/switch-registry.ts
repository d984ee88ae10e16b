/**
 * The host's virtual switches, owned by VMMS: their definitions on disk (one JSON file each,
 * written atomically; a file that does not load is reported and left alone) and, for each, a
 * running SwitchServer on `switch-<id>.sock` that VM workers connect their NICs to. The switches
 * live as long as this VMMS: when it stops, every port closes and the workers, which keep
 * running, reconnect to the switches of the next VMMS (their MAC tables are relearned).
 */
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { TEMP_PREFIX, syncDirectory, writeFileAtomic } from '../host/atomic-file.ts';
import type { DataDir } from '../host/data-dir.ts';
import type { Logger } from '../host/log.ts';
import { MAX_SWITCHES, newSwitchDefinition, switchDefinitionProblems, type SwitchDefinition, type SwitchType } from './switch-definition.ts';
import { SwitchServer } from '../vswitch/switch-server.ts';
import { SwitchType as SwitchKind, type VirtualSwitch } from '../vswitch/virtual-switch.ts';
import { PasstUplink, type PasstState } from '../vswitch/passt-uplink.ts';
import { parsePortForward, type PortForward } from '../vswitch/passt-forward.ts';
import { SwitchPortKind, type PortCounters } from '../vswitch/switch-port.ts';

const SWITCH_KINDS = { private: SwitchKind.Private, internal: SwitchKind.Internal, external: SwitchKind.External } as const;
const PORT_KIND_NAMES: Record<number, string> = Object.fromEntries(Object.entries(SwitchPortKind).map(([k, v]) => [v, k.toLowerCase()]));

export interface SwitchPortView {
  id: number;
  name: string;
  kind: string;
  mac: string;
  vlanId: number | undefined;
  counters: PortCounters;
}

export interface SwitchView {
  id: string;
  name: string;
  type: SwitchType;
  notes: string;
  socket: string;
  /** The switch serves (false only when its socket could not be opened; see `error`). */
  running: boolean;
  error?: string;
  learnedAddresses: number;
  ports: SwitchPortView[];
  /** Internal switches with passt: its process and what it was given. */
  passt?: { state: PasstState; pid: number | null; restarts: number; lastError?: string; guestAddress: string; gateway: string; forwards: string[] };
}

type Entry = { def: SwitchDefinition; server?: SwitchServer; error?: string; passt?: PasstUplink };

export class SwitchError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export class SwitchRegistry {
  private readonly switches = new Map<string, Entry>();
  loadErrors: { file: string; message: string }[] = [];

  private constructor(
    private readonly paths: DataDir,
    private readonly log: Logger,
  ) {}

  static async open(paths: DataDir, log: Logger): Promise<SwitchRegistry> {
    const r = new SwitchRegistry(paths, log);
    mkdirSync(paths.switchesDir, { recursive: true });
    for (const name of readdirSync(paths.switchesDir).sort()) {
      if (name.startsWith(TEMP_PREFIX) || !name.endsWith('.json')) continue;
      const file = join(paths.switchesDir, name);
      try {
        const value: unknown = JSON.parse(readFileSync(file, 'utf8'));
        const problems = switchDefinitionProblems(value);
        if (problems.length) throw new Error(problems.join('; '));
        const def = value as SwitchDefinition;
        if (name !== `${def.id}.json`) throw new Error(`the file name does not match the switch id ${def.id}`);
        if (r.find(def.name)) throw new Error(`another switch is already named "${def.name}"`);
        r.switches.set(def.id, { def });
      } catch (e) {
        r.loadErrors.push({ file, message: (e as Error).message });
        log.error(`switch definition ${file} not loaded: ${(e as Error).message}`);
      }
    }
    await Promise.all([...r.switches.values()].map((s) => r.serve(s)));
    return r;
  }

  private async serve(s: Entry): Promise<void> {
    try {
      s.server = await SwitchServer.listen(this.paths.switchSocket(s.def.id), { name: s.def.name, type: SWITCH_KINDS[s.def.type] });
      s.error = undefined;
      if (s.def.passt) {
        const [address, prefix] = s.def.passt.guestAddress.split('/');
        s.passt = new PasstUplink(s.server.switch, {
          socketPath: this.paths.passtSocket(s.def.id),
          guestAddress: address!,
          prefixLength: Number(prefix),
          gateway: s.def.passt.gateway,
          forwards: s.def.passt.forwards.map((f) => parsePortForward(f) as PortForward),
          reach: s.def.type === 'external' ? 'networks' : 'host',
          log: (m) => this.log.info(m),
        });
        s.passt.start();
      }
    } catch (e) {
      s.error = (e as Error).message;
      this.log.error(`switch ${s.def.name}: cannot listen on ${this.paths.switchSocket(s.def.id)}: ${s.error}`);
    }
  }

  private find(idOrName: string) {
    return this.switches.get(idOrName) ?? [...this.switches.values()].find((s) => s.def.name === idOrName);
  }

  /** The switch itself while it is served (in-process observers such as the network benchmark); undefined otherwise. */
  live(idOrName: string): VirtualSwitch | undefined {
    return this.find(idOrName)?.server?.switch;
  }

  /** New-VMSwitch: persisted first, then served. */
  async create(r: { name: string; type?: string; notes?: string; passt?: Partial<SwitchDefinition['passt']> }): Promise<SwitchView> {
    let def: SwitchDefinition;
    try {
      def = newSwitchDefinition(r);
    } catch (e) {
      throw new SwitchError('VMMS_ERR_SWITCH_INVALID', (e as Error).message);
    }
    if (this.find(def.name)) throw new SwitchError('VMMS_ERR_NAME_IN_USE', `a switch named "${def.name}" exists`);
    if (this.switches.size >= MAX_SWITCHES) throw new SwitchError('VMMS_ERR_LIMIT', `the host has ${this.switches.size} switches, its limit`);
    writeFileAtomic(this.paths.switchDefinition(def.id), JSON.stringify(def, null, 2) + '\n');
    const s: Entry = { def };
    this.switches.set(def.id, s);
    await this.serve(s);
    this.log.info(`switch ${def.name} (${def.type}, ${def.id}) created`);
    return this.view(s);
  }

  /**
   * Remove-VMSwitch: the NICs connected to it lose their link (as on Hyper-V, their settings keep
   * the switch's name; a VM whose NIC names a missing switch does not start).
   */
  async remove(idOrName: string): Promise<void> {
    const s = this.find(idOrName);
    if (!s) throw new SwitchError('VMMS_ERR_NO_SUCH_SWITCH', `no switch named or with id "${idOrName}"`);
    this.switches.delete(s.def.id);
    rmSync(this.paths.switchDefinition(s.def.id), { force: true });
    syncDirectory(this.paths.switchesDir);
    await s.passt?.stop();
    await s.server?.close();
    this.log.info(`switch ${s.def.name} removed`);
  }

  list(): SwitchView[] {
    return [...this.switches.values()].map((s) => this.view(s));
  }

  get(idOrName: string): SwitchView | undefined {
    const s = this.find(idOrName);
    return s && this.view(s);
  }

  /** The socket a NIC connected to switch `name` joins, or undefined when there is no such switch. */
  socketFor(name: string): string | undefined {
    const s = this.find(name);
    return s && this.paths.switchSocket(s.def.id);
  }

  private view(s: Entry): SwitchView {
    const sw = s.server?.switch;
    return {
      id: s.def.id,
      name: s.def.name,
      type: s.def.type,
      notes: s.def.notes ?? '',
      socket: this.paths.switchSocket(s.def.id),
      running: s.server !== undefined,
      ...(s.error ? { error: s.error } : {}),
      learnedAddresses: sw?.table.size ?? 0,
      ports: sw
        ? sw
            .allPorts()
            .map((p) => ({ id: p.id, name: p.name, kind: PORT_KIND_NAMES[p.kind] ?? String(p.kind), mac: p.mac ?? '', vlanId: p.vlanId, counters: p.counters }))
        : [],
      ...(s.def.passt
        ? {
            passt: {
              state: s.passt?.state ?? 'stopped',
              pid: s.passt?.pid ?? null,
              restarts: s.passt?.restarts ?? 0,
              ...(s.passt?.lastError ? { lastError: s.passt.lastError } : {}),
              guestAddress: s.def.passt.guestAddress,
              gateway: s.def.passt.gateway,
              forwards: [...s.def.passt.forwards],
            },
          }
        : {}),
    };
  }

  async close(): Promise<void> {
    await Promise.all([...this.switches.values()].map((s) => s.passt?.stop()));
    await Promise.all([...this.switches.values()].map((s) => s.server?.close()));
    for (const s of this.switches.values()) s.server = undefined;
  }
}
