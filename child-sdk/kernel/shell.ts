// A line-oriented command interpreter on the serial console, the same in every reference image:
//
//   help                          the commands
//   devices                       disks (number, path, capacity) and the image's other devices
//   read <disk> <lba> [count]     hex dump of `count` sectors (1..8, default 1)
//   write <disk> <lba> <text>     one sector holding <text>, zero-padded, then a cache flush
//   counters                      what the guest itself counted (I/Os, interrupts, signals)
//   echo <text>                   prints <text>
//   uptime                        time since boot, and from which clock
//   shutdown | halt               stops the VP
//
// Numbers are decimal or 0x-hexadecimal. A bad command or argument gets one "error: …" line and
// the prompt again; nothing a user types can stop the guest except shutdown/halt. The loop
// allocates nothing per command (the runtime's heap never frees).
import { puts, putDec, putBytes } from "./console";
import { pageAlloc } from "./pages";
import { BLOCK_BAD_REQUEST, BLOCK_IO_ERROR, BLOCK_NOT_READY, BLOCK_OK, BLOCK_OUT_OF_RANGE, BLOCK_QUEUE_FULL, SECTOR_SIZE } from "../drivers/block-device";
import { uartBytesDropped, uartBytesReceived, uartInterrupts, uartLineErrors } from "../drivers/uart16550";
import { ShellMachine } from "./shell-machine";
import { hexDump } from "./shell-hexdump";
import {
  lineAssemble, lineOverflowed, lineReset, numberBad, restGpa, restLength, tokenGpa, tokenIs, tokenLength, tokenNext, tokenNumber,
} from "./shell-line";

/** Printed by shellRun before each command line. */
export const SHELL_PROMPT: string = "tsvisor> ";
/** Largest `read` count: 8 sectors, one 4 KiB page. */
const MAX_READ_SECTORS: u32 = 8;

// Counters: [0] commands, [4] errors, [8] reads, [12] writes, [16] sectors read,
// [20] sectors written, [24] flushes, [28] I/O failures, [32] the sector buffer (one page).
const STATS: usize = memory.data(64, 16);
const S_COMMANDS: usize = 0;
const S_ERRORS: usize = 4;
const S_READS: usize = 8;
const S_WRITES: usize = 12;
const S_SECTORS_READ: usize = 16;
const S_SECTORS_WRITTEN: usize = 20;
const S_FLUSHES: usize = 24;
const S_IO_FAILURES: usize = 28;
const S_BUFFER: usize = 32;

function bump(field: usize, n: u32 = 1): void {
  store<u32>(STATS + field, load<u32>(STATS + field) + n);
}

function error(message: string): void {
  bump(S_ERRORS);
  puts("error: ");
  puts(message);
  puts("\n");
}

/** "error: <what> '<token>' <why>" — the token as the user typed it. */
function errorToken(what: string, why: string): void {
  bump(S_ERRORS);
  puts("error: ");
  puts(what);
  puts(" '");
  putBytes(tokenGpa(), tokenLength());
  puts("' ");
  puts(why);
  puts("\n");
}

function blockErrorName(status: i32): string {
  if (status == BLOCK_IO_ERROR) return "I/O error";
  if (status == BLOCK_OUT_OF_RANGE) return "out of range";
  if (status == BLOCK_BAD_REQUEST) return "bad request";
  if (status == BLOCK_QUEUE_FULL) return "queue full";
  if (status == BLOCK_NOT_READY) return "not ready";
  return "failed";
}

function ioFailed(what: string, status: i32): void {
  bump(S_IO_FAILURES);
  bump(S_ERRORS);
  puts("error: ");
  puts(what);
  puts(" failed: ");
  puts(blockErrorName(status));
  puts(" (");
  puts(status < 0 ? "-" : "");
  putDec(<u64>(status < 0 ? -status : status));
  puts(")\n");
}

function printCapacity(sectors: u64): void {
  putDec(sectors);
  puts(" sectors (");
  const bytes = sectors * SECTOR_SIZE;
  if (bytes >= (<u64>1 << 30)) { putDec(bytes >> 30); puts(" GiB)"); }
  else if (bytes >= (<u64>1 << 20)) { putDec(bytes >> 20); puts(" MiB)"); }
  else { putDec(bytes >> 10); puts(" KiB)"); }
}

function help(): void {
  puts("commands:\n");
  puts("  help                        this list\n");
  puts("  devices                     disks (number, path, capacity) and other devices\n");
  puts("  read <disk> <lba> [count]   hex dump of 1..8 sectors\n");
  puts("  write <disk> <lba> <text>   write <text> to one sector (zero-padded) and flush\n");
  puts("  counters                    what this guest counted: I/Os, interrupts, signals\n");
  puts("  echo <text>                 print <text>\n");
  puts("  uptime                      time since boot\n");
  puts("  trim <disk> <lba> <count>   SCSI UNMAP of a range (enlightened image, thin disks)\n");
  puts("  ip [a.b.c.d/n [gw] | dhcp], ping a.b.c.d [count] [q], blast a.b.c.d count bytes, udp a.b.c.d port text   network (images with a NIC)\n");
  puts("  shutdown, halt              stop this VM\n");
  puts("numbers: decimal or 0x hex\n");
}

function devices(m: ShellMachine): void {
  const n = m.diskCount();
  if (n == 0) puts("disks: none\n");
  for (let i: u32 = 0; i < n; i++) {
    puts("disk ");
    putDec(i);
    puts(": ");
    m.printDiskPath(i);
    puts(", ");
    printCapacity(m.disk(i).sectorCount());
    puts("\n");
  }
  m.printOtherDevices();
}

/** Reads the next token as a disk number; -1 (after the error line) when it is not one. */
function diskArgument(m: ShellMachine, usage: string): i32 {
  if (!tokenNext()) { error(usage); return -1; }
  const d = tokenNumber();
  if (numberBad()) { errorToken("disk", "is not a number"); return -1; }
  if (d >= <u64>m.diskCount()) { errorToken("no disk", "(see devices)"); return -1; }
  return <i32>d;
}

/** Reads the next token as an LBA on `disk`; -1 (after the error line) when it is not one. */
function lbaArgument(m: ShellMachine, disk: u32, usage: string): i64 {
  if (!tokenNext()) { error(usage); return -1; }
  const lba = tokenNumber();
  if (numberBad() || lba > <u64>i64.MAX_VALUE) { errorToken("lba", "is not a number"); return -1; }
  if (lba >= m.disk(disk).sectorCount()) { errorToken("lba", "is past the end of the disk"); return -1; }
  return <i64>lba;
}

function read(m: ShellMachine): void {
  const usage = "usage: read <disk> <lba> [count]";
  const d = diskArgument(m, usage);
  if (d < 0) return;
  const lba = lbaArgument(m, <u32>d, usage);
  if (lba < 0) return;
  let count: u64 = 1;
  if (tokenNext()) {
    count = tokenNumber();
    if (numberBad()) { errorToken("count", "is not a number"); return; }
    if (count == 0 || count > <u64>MAX_READ_SECTORS) { errorToken("count", "must be 1..8"); return; }
  }
  if (tokenNext()) { error(usage); return; }
  const disk = m.disk(<u32>d);
  if (<u64>lba + count > disk.sectorCount()) { error("the read runs past the end of the disk"); return; }
  const buf = load<usize>(STATS + S_BUFFER);
  const status = disk.read(<u64>lba, <u32>count, buf);
  bump(S_READS);
  if (status != BLOCK_OK) { ioFailed("read", status); return; }
  bump(S_SECTORS_READ, <u32>count);
  puts("disk ");
  putDec(<u32>d);
  puts(" lba ");
  putDec(<u64>lba);
  puts(", ");
  putDec(count);
  puts(count == 1 ? " sector:\n" : " sectors:\n");
  hexDump(buf, <u32>count * SECTOR_SIZE);
}

function write(m: ShellMachine): void {
  const usage = "usage: write <disk> <lba> <text>";
  const d = diskArgument(m, usage);
  if (d < 0) return;
  const lba = lbaArgument(m, <u32>d, usage);
  if (lba < 0) return;
  const text = restGpa();
  const length = restLength();
  if (length == 0) { error(usage); return; }
  const buf = load<usize>(STATS + S_BUFFER);
  memory.fill(buf, 0, SECTOR_SIZE);
  memory.copy(buf, text, length); // a line is at most LINE_MAX (< 512) bytes
  const disk = m.disk(<u32>d);
  let status = disk.write(<u64>lba, 1, buf);
  bump(S_WRITES);
  if (status != BLOCK_OK) { ioFailed("write", status); return; }
  bump(S_SECTORS_WRITTEN);
  status = disk.flush();
  bump(S_FLUSHES);
  if (status != BLOCK_OK) { ioFailed("flush", status); return; }
  puts("disk ");
  putDec(<u32>d);
  puts(" lba ");
  putDec(<u64>lba);
  puts(": wrote ");
  putDec(length);
  puts(" bytes (one sector, zero-padded) and flushed\n");
}

function counters(m: ShellMachine): void {
  puts("shell: commands="); putDec(load<u32>(STATS + S_COMMANDS));
  puts(" errors="); putDec(load<u32>(STATS + S_ERRORS));
  puts(" reads="); putDec(load<u32>(STATS + S_READS));
  puts(" writes="); putDec(load<u32>(STATS + S_WRITES));
  puts(" flushes="); putDec(load<u32>(STATS + S_FLUSHES));
  puts(" sectors_read="); putDec(load<u32>(STATS + S_SECTORS_READ));
  puts(" sectors_written="); putDec(load<u32>(STATS + S_SECTORS_WRITTEN));
  puts(" io_failures="); putDec(load<u32>(STATS + S_IO_FAILURES));
  puts("\n");
  puts("com1: interrupts="); putDec(uartInterrupts());
  puts(" bytes_received="); putDec(uartBytesReceived());
  puts(" bytes_dropped="); putDec(uartBytesDropped());
  puts(" line_errors="); putDec(uartLineErrors());
  puts("\n");
  m.printCounters();
}

/** Runs one line; true when the user asked to stop. */
function execute(m: ShellMachine): bool {
  if (lineOverflowed()) {
    error("line too long (the limit is 240 characters)");
    return false;
  }
  if (!tokenNext()) return false; // an empty line: just the prompt again
  bump(S_COMMANDS);
  if (tokenIs("help")) help();
  else if (tokenIs("devices")) devices(m);
  else if (tokenIs("read")) read(m);
  else if (tokenIs("write")) write(m);
  else if (tokenIs("counters")) counters(m);
  else if (tokenIs("uptime")) m.printUptime();
  else if (tokenIs("echo")) {
    putBytes(restGpa(), restLength());
    puts("\n");
  } else if (tokenIs("shutdown") || tokenIs("halt")) return true;
  else if (m.extraCommand()) {}
  else errorToken("unknown command", "(try help)");
  return false;
}

/**
 * The console loop: prompt, wait for a line (serving the image's devices meanwhile), run it.
 * Returns when the user typed shutdown/halt or the host asked the guest to stop, after saying
 * which; the caller then powers off.
 */
export function shellRun(m: ShellMachine): void {
  if (load<usize>(STATS + S_BUFFER) == 0) store<usize>(STATS + S_BUFFER, pageAlloc());
  lineReset();
  puts(SHELL_PROMPT);
  for (;;) {
    while (!lineAssemble()) {
      if (m.waitForInput()) {
        puts("\nshutdown requested by the host: halting\n");
        return;
      }
    }
    const stop = execute(m);
    lineReset();
    if (stop) {
      puts("halting\n");
      return;
    }
    puts(SHELL_PROMPT);
  }
}

/** Commands run so far (for images that report it). */
export function shellCommands(): u32 { return load<u32>(STATS + S_COMMANDS); }
