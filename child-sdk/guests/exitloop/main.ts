// Exit-cost guest: performs `n` port reads (one exit each), then `n` string reads of 512 bytes
// (one exit each), where n is the first number on the command line; prints the checksum of
// what it read, then halts. Reference times (100 ns) at the start, between the phases and at the
// end are left at RESULT_GPA for the host. Used by the exit benchmark.
import { inb, insw, rdmsr } from "../../platform/hv";
import { HV_X64_MSR_TIME_REF_COUNT } from "../../../abi/hv-msr";
import { puts, putDec } from "../../kernel/console";
import { cmdlineGpa, cmdlineLength } from "../../kernel/boot-info";
import { kernelBoot } from "../../kernel/boot";

const BUF: usize = memory.data(512, 16);
const RESULT_GPA: usize = 0x3000;

function firstNumber(): u32 {
  const base = cmdlineGpa();
  const len = cmdlineLength();
  let n: u32 = 0;
  let seen = false;
  for (let i: u32 = 0; i < len; i++) {
    const c = load<u8>(base + i);
    if (c >= 0x30 && c <= 0x39) { n = n * 10 + (c - 0x30); seen = true; } else if (seen) break;
  }
  return n;
}

function main(): i32 {
  const n = firstNumber();
  let sum: u32 = 0;
  store<u64>(RESULT_GPA, rdmsr(HV_X64_MSR_TIME_REF_COUNT));
  for (let i: u32 = 0; i < n; i++) sum += inb(0xe0);
  store<u64>(RESULT_GPA, rdmsr(HV_X64_MSR_TIME_REF_COUNT), 8);
  for (let i: u32 = 0; i < n; i++) {
    insw(0xe2, BUF, 256);
    sum += load<u32>(BUF);
  }
  store<u64>(RESULT_GPA, rdmsr(HV_X64_MSR_TIME_REF_COUNT), 16);
  store<u32>(RESULT_GPA, sum, 24);
  puts("sum=");
  putDec(sum);
  puts("\n");
  return 0;
}

export function boot(): i32 {
  return kernelBoot(main);
}
