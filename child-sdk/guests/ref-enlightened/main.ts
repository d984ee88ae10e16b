// The enlightened reference guest: discovers the hypervisor (CPUID), enables hypercalls and the
// SynIC, connects to VMBus, attaches every storvsc LUN of the first SCSI controller, opens the
// integration services (heartbeat, shutdown, time sync, KVP) and runs the serial-console shell
// (child-sdk/kernel/shell.ts) on the emulated COM1 while serving them. It stops on `shutdown` or
// `halt`, or when the host's shutdown request is accepted.
//
// Command line:
//   echo    echo typed characters (for a terminal in raw mode)
import { sti } from "../../platform/hv";
import { puts, putDec } from "../../kernel/console";
import { cmdlineHas, cmdlineNumber, vpCount } from "../../kernel/boot-info";
import { kernelBoot } from "../../kernel/boot";
import { pageAlloc } from "../../kernel/pages";
import { shellRun } from "../../kernel/shell";
import { lineSetEcho } from "../../kernel/shell-line";
import { hypervisorPresent } from "../../hv/cpuid";
import { enableHypercalls } from "../../hv/hypercall";
import { vmbusConnect, vmbusInit } from "../../vmbus/vmbus-driver";
import { BLOCK_OK } from "../../drivers/block-device";
import { StorvscController, STORVSC_MAX_DISKS } from "../../drivers/storvsc";
import { StorvscDisk } from "../../drivers/storvsc-disk";
import { icHeartbeatOpen, icKvpOpen, icKvpPublish, icKvpPublishIntrinsic, icShutdownOpen, icTimeSyncOpen } from "../../drivers/ic-services";
import { KVP_POOL_GUEST } from "../../drivers/ic-kvp-protocol";
import { picInit } from "../../drivers/pic8259";
import { uartInit } from "../../drivers/uart16550";
import { EnlightenedMachine, IC_SERVICES } from "./machine";
import { NetvscError, NetvscNic } from "../../drivers/netvsc";
import { netAttach } from "../../net/ipv4-stack";

const MASTER_VECTOR_BASE: u32 = 0x20;
const SLAVE_VECTOR_BASE: u32 = 0x28;
const COM1_PORT: u32 = 0x3f8;
const COM1_IRQ: u32 = 4;
/** SINT2 (VMBus) vector: above the PIC's 0x20–0x2F. */
const VMBUS_VECTOR: u32 = 0x30;

/** Brings up hypercalls, the SynIC and VMBus (interrupts still off). False when any step fails, saying which. */
function enlighten(m: EnlightenedMachine): bool {
  m.hypervisor = hypervisorPresent();
  if (!m.hypervisor) {
    puts("hypervisor: not found (CPUID leaf 0x40000000): running without VMBus\n");
    return false;
  }
  if (!enableHypercalls(pageAlloc())) {
    puts("hypervisor: found, but the hypercall page could not be enabled\n");
    return false;
  }
  if (!vmbusInit(VMBUS_VECTOR)) {
    puts("synic: could not be enabled (out of pages)\n");
    return false;
  }
  return true;
}

function attachDisks(m: EnlightenedMachine): void {
  const ctl = new StorvscController();
  if (!ctl.open()) {
    puts("storvsc: no SCSI controller offered or it failed to open\n");
    return;
  }
  m.ctl = ctl;
  for (let lun: u32 = 0; lun < STORVSC_MAX_DISKS; lun++) {
    const disk = new StorvscDisk(ctl, m.count, 0, 0, <u8>lun);
    if (disk.attach() == BLOCK_OK) {
      m.disks[m.count] = disk;
      m.count++;
    }
  }
}

/** Binds netvsc to the first synthetic NIC offered (none offered: no network, nothing said). */
function attachNetwork(m: EnlightenedMachine): void {
  const nic = new NetvscNic();
  if (!nic.attach()) {
    if (nic.error != NetvscError.NoOffer) {
      puts("network: netvsc failed to initialize (error ");
      putDec(<u32>nic.error);
      puts(")\n");
    }
    return;
  }
  // Multi-queue (sub-channels, RSS) with more than one VP, or as many channels as netq=<n> says.
  const want = <u32>cmdlineNumber("netq", vpCount());
  if (want > 1) nic.enableQueues(want);
  m.nic = nic;
  netAttach(nic);
  puts("network: ");
  nic.describe();
  puts("; set an address with ip <a.b.c.d>/<prefix>\n");
}

function openIntegrationServices(m: EnlightenedMachine): void {
  m.ic[0] = icHeartbeatOpen();
  m.ic[1] = icShutdownOpen();
  m.ic[2] = icTimeSyncOpen();
  m.ic[3] = icKvpOpen();
  let opened: u32 = 0;
  for (let i = 0; i < IC_SERVICES; i++) if (m.ic[i] != null) opened++;
  icKvpPublishIntrinsic("tsvisor-ref-enlightened", "tsvisor reference guest", "0.1");
  icKvpPublish(KVP_POOL_GUEST, "Shell", "tsvisor> on COM1");
  puts("integration services: ");
  putDec(opened);
  puts(" of 4 open (heartbeat, shutdown, time sync, kvp)\n");
}

function main(): i32 {
  const m = new EnlightenedMachine();
  const enlightened = enlighten(m);
  picInit(MASTER_VECTOR_BASE, SLAVE_VECTOR_BASE);
  uartInit(COM1_PORT, COM1_IRQ, MASTER_VECTOR_BASE + COM1_IRQ);
  lineSetEcho(cmdlineHas("echo"));
  sti();
  puts("tsvisor reference guest (enlightened)\n");
  if (enlightened) {
    m.vmbus = vmbusConnect();
    if (!m.vmbus) puts("vmbus: no answer to INITIATE_CONTACT: running without synthetic devices\n");
  }
  if (m.vmbus) {
    puts("hypervisor: Microsoft Hv, hypercalls and SynIC on, VMBus connected\n");
    attachDisks(m);
    attachNetwork(m);
    openIntegrationServices(m);
  }
  putDec(m.diskCount());
  puts(m.diskCount() == 1 ? " disk attached; type help\n" : " disks attached; type help\n");
  shellRun(m);
  m.powerOff();
  return 0;
}

export function boot(): i32 {
  return kernelBoot(main);
}

export { interrupt } from "../../kernel/boot";
