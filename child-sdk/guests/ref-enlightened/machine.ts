// The enlightened reference machine: the console is still the emulated COM1 (with the 8259 pair
// for its interrupt), but disks are storvsc LUNs on VMBus, the clock is the partition reference
// time, and the integration services run while the shell waits for input: heartbeats are
// answered, time samples taken, KVP requests served, and an accepted shutdown request ends the
// shell, after which the guest halts as if powered off.
import { cli, halt, VP_INDEX } from "../../platform/hv";
import { puts, putDec } from "../../kernel/console";
import { spuriousInterrupts } from "../../kernel/interrupts";
import { ShellMachine } from "../../kernel/shell-machine";
import { eventFlagTake, referenceTime } from "../../hv/synic";
import { VMBUS_MESSAGE_SINT } from "../../vmbus/channel-protocol";
import { vmbusClientErrors, vmbusMessagesPosted, vmbusMessagesReceived, vmbusPoll, vmbusWakeCount } from "../../vmbus/vmbus-driver";
import { BlockDevice } from "../../drivers/block-device";
import { StorvscController, STORVSC_MAX_DISKS } from "../../drivers/storvsc";
import { StorvscDisk } from "../../drivers/storvsc-disk";
import { IcDevice, icServe } from "../../drivers/ic";
import { icHeartbeatsAnswered, icKvpRequests, icShutdownRequested, icTimeNow, icTimeSamples } from "../../drivers/ic-services";
import { uartInterrupts, uartPending } from "../../drivers/uart16550";
import { printOffers } from "./offers";
import { NetvscNic } from "../../drivers/netvsc";
import { netPoll, netPrintCounters } from "../../net/ipv4-stack";
import { netCommand } from "../../net/net-shell";
import { trimCommand } from "./trim-command";

const FILETIME_UNIX_EPOCH: u64 = 116444736000000000;
export const IC_SERVICES: i32 = 4;

/** `v` as at least three digits (milliseconds after a decimal point). */
function putMillis(v: u64): void {
  if (v < 100) puts("0");
  if (v < 10) puts("0");
  putDec(v);
}

export class EnlightenedMachine extends ShellMachine {
  hypervisor: bool = false;
  vmbus: bool = false;
  ctl: StorvscController | null = null;
  disks: StaticArray<StorvscDisk | null> = new StaticArray<StorvscDisk | null>(STORVSC_MAX_DISKS);
  count: u32 = 0;
  ic: StaticArray<IcDevice | null> = new StaticArray<IcDevice | null>(IC_SERVICES);
  ringErrors: u32 = 0;
  nic: NetvscNic | null = null;

  diskCount(): u32 { return this.count; }

  disk(index: u32): BlockDevice { return this.disks[index]!; }

  printDiskPath(index: u32): void {
    const d = this.disks[index]!;
    puts("scsi ");
    putDec(d.pathId);
    puts(":");
    putDec(d.targetId);
    puts(":");
    putDec(d.lun);
    puts(" (storvsc on VMBus relid ");
    putDec(this.ctl!.ch!.relid);
    puts(")");
  }

  printOtherDevices(): void {
    if (!this.hypervisor) puts("hypervisor: not found (CPUID): no VMBus\n");
    else if (!this.vmbus) puts("vmbus: not connected (the host offers no VMBus)\n");
    else printOffers();
    puts("com1: 16550 at 0x3f8, IRQ 4 through the 8259 (emulated: the console)\n");
  }

  printCounters(): void {
    let icSignals: u32 = 0;
    for (let i = 0; i < IC_SERVICES; i++) {
      const d = this.ic[i];
      if (d != null) icSignals += d.channel.signals;
    }
    const ch = this.ctl != null ? this.ctl!.ch : null;
    const storSignals: u32 = ch != null ? ch.signals : 0;
    puts("storvsc: submitted=");
    putDec(this.ctl != null ? this.ctl!.submitted : 0);
    puts(" completed=");
    putDec(this.ctl != null ? this.ctl!.completed : 0);
    puts(" packets_sent=");
    putDec(ch != null ? ch.packetsSent : 0);
    puts(" packets_received=");
    putDec(ch != null ? ch.packetsReceived : 0);
    puts(" halts=");
    putDec(ch != null ? ch.halts : 0);
    puts("\n");
    puts("ic: heartbeats=");
    putDec(icHeartbeatsAnswered());
    puts(" time_samples=");
    putDec(icTimeSamples());
    puts(" kvp_requests=");
    putDec(icKvpRequests());
    puts(" ring_errors=");
    putDec(this.ringErrors);
    puts("\n");
    puts("vmbus: messages_received=");
    putDec(vmbusMessagesReceived());
    puts(" messages_posted=");
    putDec(vmbusMessagesPosted());
    puts(" client_errors=");
    putDec(vmbusClientErrors());
    puts("\n");
    puts("interrupts: com1=");
    putDec(uartInterrupts());
    puts(" vmbus_sint2=");
    putDec(vmbusWakeCount());
    puts(" unhandled=");
    putDec(spuriousInterrupts(0));
    puts("\n");
    const nic = this.nic;
    const netSignals: u32 = nic != null && nic.ch != null ? nic.ch!.signals : 0;
    if (nic != null) netPrintCounters();
    puts("signals sent: storvsc=");
    putDec(storSignals);
    puts(" ic=");
    putDec(icSignals);
    if (nic != null) {
      puts(" netvsc=");
      putDec(netSignals);
    }
    puts(" total=");
    putDec(storSignals + icSignals + netSignals);
    puts("\n");
  }

  printUptime(): void {
    if (!this.hypervisor) {
      puts("uptime: unknown: no hypervisor, so no reference time\n");
      return;
    }
    const t = referenceTime(); // 100 ns units since the partition was initialised
    puts("uptime: ");
    putDec(t / 10_000_000);
    puts(".");
    putMillis((t / 10_000) % 1000);
    puts(" s (partition reference time)");
    const now = icTimeNow();
    if (now != 0) {
      puts(", utc ");
      putDec((now - FILETIME_UNIX_EPOCH) / 10_000_000);
      puts(" s since 1970 (time sync)");
    }
    puts("\n");
  }

  /**
   * Serves the integration services, then sleeps until console input, a VMBus control message or
   * a signal on one of their channels. Each channel's SIEF flag is taken before its ring is
   * checked (so the host's next signal raises SINT2 again), and nothing between the last check
   * and the halt exits, so no wake-up is slept through.
   */
  waitForInput(): bool {
    for (let i = 0; i < IC_SERVICES; i++) {
      const d = this.ic[i];
      if (d != null && icServe(d) < 0) this.ringErrors++;
    }
    if (this.ic[1] != null && icShutdownRequested() != 0xffffffff) return true;
    if (!this.vmbus) {
      if (uartPending() == 0) halt();
      return false;
    }
    // Frames that arrived while the shell waited are answered (ARP, ICMP echo, UDP echo) here.
    const nic = this.nic;
    if (nic != null) netPoll();
    const seen = vmbusWakeCount();
    for (let i = 0; i < IC_SERVICES; i++) {
      const d = this.ic[i];
      if (d != null) eventFlagTake(VP_INDEX, VMBUS_MESSAGE_SINT, d.channel.relid);
    }
    if (nic != null && nic.ch != null) {
      nic.takeEventFlags();
      if (nic.hasWork()) return false;
    }
    for (let i = 0; i < IC_SERVICES; i++) {
      const d = this.ic[i];
      if (d != null && d.channel.inbound.writeIndex() != d.channel.inbound.readIndex()) return false;
    }
    if (vmbusPoll()) return false;
    if (uartPending() == 0 && vmbusWakeCount() == seen) halt();
    return false;
  }

  extraCommand(): bool {
    return trimCommand(this.disks, this.count) || netCommand();
  }

  powerOff(): void {
    cli();
    halt();
  }
}
