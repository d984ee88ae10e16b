// What the shell needs from the image it runs in: the disks, what else to list, the counters only
// that image knows, its clock, how to wait for console input while serving its devices, and how
// to stop. Both reference images implement it (child-sdk/guests/ref-*/machine.ts); the commands
// themselves are the same everywhere (shell.ts).
import { BlockDevice } from "../drivers/block-device";

/** The image-specific half of the shell: its disks, device listing, counters, clock, input wait and power-off. */
export abstract class ShellMachine {
  /** Disks the image attached, numbered 0.. in the order `devices` lists them. */
  abstract diskCount(): u32;
  /** Disk `index` (0 ≤ index < diskCount()). */
  abstract disk(index: u32): BlockDevice;
  /** Prints where disk `index` sits ("ide primary master", "scsi lun 0") and how it is driven; no newline. */
  abstract printDiskPath(index: u32): void;
  /** Prints the rest of `devices` (buses, channels, the console), whole lines. */
  abstract printOtherDevices(): void;
  /** Prints the image's own counters (driver I/Os, interrupts, signals), whole lines. */
  abstract printCounters(): void;
  /** Prints one line: time since boot, saying which clock it comes from. */
  abstract printUptime(): void;
  /**
   * Serves the image's background devices and sleeps until console input or device activity;
   * returns true when the host asked the guest to stop (the shell then powers off).
   */
  abstract waitForInput(): bool;
  /** Stops the VP for good (interrupts off, halt). */
  abstract powerOff(): void;
  /** Commands only this image has (the network's `ip` and `ping`): true when it handled the current token. */
  extraCommand(): bool { return false; }
}
