// The boot-information block the root partition writes before VP 0 starts.
import * as B from "../../abi/platform";

/** True when the boot-information block has the boot magic and this SDK's GUEST_ABI_VERSION. */
export function bootInfoValid(): bool {
  return load<u32>(B.BOOT_INFO_GPA + B.BOOT_INFO_MAGIC) == B.BOOT_MAGIC && load<u32>(B.BOOT_INFO_GPA + B.BOOT_INFO_ABI_VERSION) == B.GUEST_ABI_VERSION;
}
/** Guest RAM size in 4 KiB pages. */
export function ramPages(): u32 { return load<u32>(B.BOOT_INFO_GPA + B.BOOT_INFO_RAM_PAGES); }
/** Virtual processors in the partition. */
export function vpCount(): u32 { return load<u32>(B.BOOT_INFO_GPA + B.BOOT_INFO_VP_COUNT); }
/** The partition id the root partition assigned (low 32 bits; ids stay below 2^32). */
export function partitionId(): u32 { return load<u32>(B.BOOT_INFO_GPA + B.BOOT_INFO_PARTITION_ID); }
/** Command-line length in bytes, clamped to BOOT_CMDLINE_MAX. */
export function cmdlineLength(): u32 { return min(load<u32>(B.BOOT_INFO_GPA + B.BOOT_INFO_CMDLINE_LENGTH), B.BOOT_CMDLINE_MAX); }
/** GPA of the command line (ASCII, not NUL-terminated; cmdlineLength bytes). */
export function cmdlineGpa(): usize { return B.BOOT_INFO_GPA + B.BOOT_INFO_CMDLINE; }

/** True when the command line contains `word` as a whole space-separated token. */
export function cmdlineHas(word: string): bool {
  const base = cmdlineGpa();
  const n = <i32>cmdlineLength();
  const w = word.length;
  for (let start = 0; start <= n - w; start++) {
    if (start > 0 && load<u8>(base + start - 1) != 0x20) continue;
    let ok = true;
    for (let i = 0; i < w && ok; i++) ok = load<u8>(base + start + i) == <u8>word.charCodeAt(i);
    if (ok && (start + w == n || load<u8>(base + start + w) == 0x20)) return true;
  }
  return false;
}

/**
 * The decimal number after `key=` in the command line (the word must start a space-separated
 * token), or `fallback` when the key is absent.
 */
export function cmdlineNumber(key: string, fallback: u64): u64 {
  const base = cmdlineGpa();
  const n = <i32>cmdlineLength();
  const k = key.length;
  for (let start = 0; start + k < n; start++) {
    if (start > 0 && load<u8>(base + start - 1) != 0x20) continue;
    let match = true;
    for (let i = 0; i < k && match; i++) match = load<u8>(base + start + i) == <u8>key.charCodeAt(i);
    if (!match || load<u8>(base + start + k) != 0x3d) continue;
    let v: u64 = 0;
    for (let i = start + k + 1; i < n; i++) {
      const c = load<u8>(base + i);
      if (c < 0x30 || c > 0x39) break;
      v = v * 10 + (c - 0x30);
    }
    return v;
  }
  return fallback;
}
