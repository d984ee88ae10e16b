/** Messages between an x86 VM's owner and its VP thread (x86-vp-thread.ts). */
import type { DiskConfig, IntegrationServicesConfig, NicConfig } from '../vmwp/device-config.ts';
import type { KvpGuestItems } from '../vmwp/kvp-guest-watch.ts';
import type { X86IcReply, X86IcRequest } from './x86-ic-requests.ts';

export interface X86VmThreadData {
  memoryBytes: number;
  cmdline: string;
  bios: string;
  vgaBios?: string;
  kernel: string;
  initrd?: string;
  /** Run v86 prepared with the Hyper-V enlightenments (CPUID/MSR hooks, hypercall page). */
  enlightened: boolean;
  /** With the enlightenments: the SynIC, HvPostMessage/HvSignalEvent, the VMBus ACPI device and our VMBus with the integration services (default on). */
  vmbus?: boolean;
  /** Raw or VHDX disk images, the LUNs of a synthetic SCSI controller (storvsp) on the VMBus. */
  scsi?: (string | DiskConfig)[];
  /** The directories disks may come from (a VMMS-managed VM): each disk is checked against them, on its path and on its descriptor. */
  storageRoots?: string[];
  /** Which integration services are offered (absent: all four). */
  integrationServices?: IntegrationServicesConfig;
  /** Synthetic network adapters (netvsp) on their switches. */
  nics?: NicConfig[];
  /** Report heartbeat changes and the guest's KVP items as they change (`heartbeat` and `kvp` messages). */
  reportIntegration?: boolean;
  /** Raw or VHDX disk images on our emulated PIIX4 IDE controller: primary master, primary slave, secondary master, secondary slave. */
  ide?: string[];
}

/** Our PIIX4 IDE controller's counters (x86-ide.ts). */
export interface X86IdeStatus {
  disks: number;
  /** Accesses to the channels' and the bus master's ports: each one an exit on Hyper-V. */
  portReads: number;
  portWrites: number;
  /** Rising edges of the channels' interrupt lines (IRQ 14/15). */
  interrupts: number;
  /** Sectors moved by PIO and DMA. */
  sectors: number;
  /** Exceptions the I/O bus contained (a device bug or v86's memory grown): should stay 0. */
  faults: number;
  /** Where the firmware put the bus-master block (BAR4); 0 while unprogrammed. */
  bmideBase: number;
}

/** The VMBus side of an x86 VM's status. */
export interface X86VmbusStatus {
  /** Negotiated VMBus protocol version as "major.minor", or "" before INITIATE_CONTACT. */
  version: string;
  messagesFromGuest: number;
  channelsOpened: number;
  protocolErrors: number;
  /** Msvm_HeartbeatComponent OperationalStatus: 2 OK, 12 No Contact, … */
  heartbeat: number;
  postMessageCalls: number;
  signalEventCalls: number;
  /** SynIC vectors put into the local APIC. */
  vectorsRaised: number;
}

/** What the VP thread reports about itself (counters and the enlightenment state). */
export interface X86VpStatus {
  instructions: number;
  hostPortAccesses: number;
  enlightened: boolean;
  cpuid: number;
  rdmsr: number;
  wrmsr: number;
  hypercalls: number;
  /** HV_X64_MSR_GUEST_OS_ID and HV_X64_MSR_HYPERCALL as hex strings. */
  guestOsId: string;
  hypercallMsr: string;
  /** The first bytes of the hypercall page when it is enabled, as hex. */
  hypercallPage: string;
  vmbus?: X86VmbusStatus;
  ide?: X86IdeStatus;
}

export type ToX86Vp =
  | { type: 'input'; bytes: Uint8Array }
  | { type: 'status' }
  | { type: 'stop' }
  /** Ask the guest to shut down through the shutdown integration service. */
  | { type: 'shutdown'; timeoutMs: number }
  /** An integration-service request (x86-ic-requests.ts), answered by an `ic-reply` with the same id. */
  | { type: 'ic'; id: number; request: X86IcRequest };

export type FromX86Vp =
  | { type: 'started' }
  | { type: 'console'; bytes: Uint8Array }
  | { type: 'status'; status: X86VpStatus }
  /** The guest's answer to a shutdown request (ShutdownResult.outcome, or why none was asked). */
  | { type: 'shutdown-result'; outcome: string }
  /** A host-side event worth a line on stderr (VMBus protocol errors, integration services). */
  | { type: 'log'; message: string }
  /** The VP ended: the owner asked (`stop`) or the guest powered off through ACPI (`poweroff`). */
  | { type: 'stopped'; reason: 'stop' | 'poweroff'; status: X86VpStatus }
  | { type: 'error'; message: string }
  | { type: 'ic-reply'; id: number; reply: X86IcReply }
  /** Msvm_HeartbeatComponent OperationalStatus at each change (with `reportIntegration`). */
  | { type: 'heartbeat'; status: number }
  /** The guest's KVP items at each change (with `reportIntegration`). */
  | { type: 'kvp'; items: KvpGuestItems };
