/**
 * A VM's worker connection as the service follows it: the worker's pushed notifications (disk
 * failure, guest fault, heartbeat, KVP, the guest stopping) and console bytes become the VM's
 * state and the service's events; the connection's end becomes Off — the guest stopped, or the
 * worker crashed (vm-crashed) — unless the service itself is detaching.
 */
import type { ControlNotification } from '../ipc/vmwp-control-schema.ts';
import { cpuSettingsOf } from './host-cpu-scheduler.ts';
import { EnabledState, HealthState } from './lifecycle.ts';
import type { VmEntry } from './vm-entry.ts';
import type { VmmsContext } from './vmms-context.ts';
import type { VmwpConnection } from './vmwp-connection.ts';

function setHeartbeat(ctx: VmmsContext, e: VmEntry, status: number | null): void {
  if (e.heartbeatStatus === status) return;
  e.heartbeatStatus = status;
  ctx.events.emit('integration-changed', { vmId: e.def.id, component: 'heartbeat' });
}

export function attachWorker(ctx: VmmsContext, e: VmEntry, conn: VmwpConnection): void {
  e.conn = conn;
  ctx.cpu.attach(e.def.id, e.def.vpCount, cpuSettingsOf(e.def), conn);
  e.cpuLoad = () => ctx.cpu.load(e.def.id);
  e.expectingExit = false;
  e.guestStopped = false;
  e.guestExitFault = null;
  conn.on('console', (data: Uint8Array) => {
    e.appendConsole(data);
    ctx.events.emit('console', { vmId: e.def.id, data });
  });
  conn.on('notification', (n: ControlNotification) => {
    if (n.kind === 'DISK_FAILURE') {
      if (e.diskFailure !== null) return; // the first one stays
      e.diskFailure = n.message || 'a disk failed';
      e.log.error(`disk failure: ${e.diskFailure}`);
      ctx.setState(e, e.state, `disk failure: ${e.diskFailure}`, HealthState.MajorFailure);
    } else if (n.kind === 'GUEST_FAULT') {
      e.guestExitFault = n.message ?? 'guest fault';
      ctx.events.emit('guest-fault', { vmId: e.def.id, name: e.def.name, message: n.message });
    } else if (n.kind === 'HEARTBEAT') {
      setHeartbeat(ctx, e, n.heartbeatStatus ?? null);
    } else if (n.kind === 'KVP') {
      const pairs = (items?: { key: string; value: string }[]) => (items ?? []).map((i): [string, string] => [i.key, i.value]);
      e.kvp = { guest: pairs(n.kvpGuestItems), intrinsic: pairs(n.kvpIntrinsicItems) };
      ctx.events.emit('integration-changed', { vmId: e.def.id, component: 'kvp' });
    } else if (n.kind === 'GUEST_STOPPED') {
      e.guestStopped = true;
      e.expectingExit = true;
      const fault = n.exits?.find((x) => x.reason === 'fault');
      if (fault) e.guestExitFault = fault.detail ?? 'fault';
    }
  });
  // The changes come pushed; this reads where the heartbeat stands now (after a VMMS restart).
  conn.request('HEARTBEAT', 5000).then(
    (r) => {
      if (e.conn === conn) setHeartbeat(ctx, e, r.heartbeatStatus ?? null);
    },
    () => {},
  );
  conn.on('close', () => {
    if (e.conn !== conn) return;
    e.conn = null;
    ctx.cpu.detach(e.def.id);
    e.cpuLoad = null;
    setHeartbeat(ctx, e, null);
    if (e.kvp) {
      e.kvp = null;
      ctx.events.emit('integration-changed', { vmId: e.def.id, component: 'kvp' });
    }
    if (ctx.closing() && !e.expectingExit) return; // VMMS detaches; the worker runs on
    void ctx.ops.forget(e, e.pid);
    if (e.guestStopped) {
      e.pid = null;
      // A guest that faulted (at instantiation, say) keeps the reason as the VM's last error.
      if (e.guestExitFault) e.lastError = `the guest stopped: ${e.guestExitFault}`;
      ctx.setState(
        e,
        EnabledState.Off,
        e.guestExitFault ? `the guest stopped: ${e.guestExitFault}` : 'the guest stopped',
        e.guestExitFault ? HealthState.MajorFailure : HealthState.Ok,
      );
    } else if (!e.expectingExit) {
      const message = `the worker process ${e.pid} ended unexpectedly`;
      e.lastError = message;
      e.generation++;
      e.log.error(message);
      ctx.setState(e, EnabledState.Off, message, HealthState.CriticalFailure);
      e.pid = null;
      ctx.events.emit('vm-crashed', { vmId: e.def.id, name: e.def.name, message });
    }
  });
}
