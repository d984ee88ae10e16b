// Exits whose GPA arguments lie in the last page of RAM, for VMs above 2 GiB (where a GPA no
// longer fits an i32): CPUID 0x40000000 with its output block there, then the vendor string
// written out of that page with one `rep outsb`. Prints `cpuid_eax=<n>`, the vendor line, and
// halts.
import { cpuid, outsb } from "../../platform/hv";
import { puts, putDec } from "../../kernel/console";
import { ramPages } from "../../kernel/boot-info";
import { kernelBoot } from "../../kernel/boot";
import { COM1_BASE } from "../../../abi/platform";

function main(): i32 {
  const page: usize = <usize>((<u64>ramPages() - 1) * 4096);
  cpuid(0x40000000, 0, page);
  puts("cpuid_eax=");
  putDec(load<u32>(page));
  puts("\nvendor ");
  outsb(COM1_BASE, page + 4, 12); // EBX, ECX, EDX: "Microsoft Hv"
  puts("\n");
  return 0;
}

export function boot(): i32 {
  return kernelBoot(main);
}

export function interrupt(vector: u32): void {}
