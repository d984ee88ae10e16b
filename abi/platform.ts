// The guest platform interface v1 (docs/guest-abi.md): fixed guest-physical addresses and the
// boot-information block. Shared by the host (TypeScript) and the child SDK (AssemblyScript).
export const GUEST_ABI_VERSION = 1;
export const PAGE_SIZE = 4096;

// Boot-information block, written by the VMWP before VP 0 starts.
export const BOOT_INFO_GPA = 0x1000;
export const BOOT_MAGIC = 0x42565354; // "TSVB" little-endian
export const BOOT_INFO_MAGIC = 0; // u32
export const BOOT_INFO_ABI_VERSION = 4; // u32
export const BOOT_INFO_RAM_PAGES = 8; // u32, 4 KiB pages of RAM
export const BOOT_INFO_VP_COUNT = 12; // u32
export const BOOT_INFO_PARTITION_ID = 16; // u32 (low half; ids stay below 2^32)
export const BOOT_INFO_FLAGS = 20; // u32, BOOT_FLAG_*
export const BOOT_INFO_CMDLINE_LENGTH = 24; // u32, bytes
export const BOOT_INFO_IMAGE_END = 28; // u32, first GPA after the image's static data
export const BOOT_INFO_CMDLINE = 256; // cmdline bytes (ASCII), up to BOOT_CMDLINE_MAX
export const BOOT_CMDLINE_MAX = 3840;
export const BOOT_FLAG_ENLIGHTENED = 0x1; // the partition offers the hypervisor CPUID leaves

// Below this GPA the compiler writes nothing: fixed pages for the boot block and per-VP
// hypercall pages. Guest images are linked with --memoryBase IMAGE_BASE.
export const IMAGE_BASE = 0x100000;
// Per-VP hypercall input/output pages the SDK uses: VP n at HYPERCALL_PAGES_GPA + n * 0x2000.
export const HYPERCALL_PAGES_GPA = 0x10000;
export const MAX_VPS = 64;

// Interrupt vectors the platform uses by default.
export const VECTOR_SINT_BASE = 0x30; // SDK default: SINTn -> 0x30 + n
export const VECTOR_TIMER = 0x40;
export const VECTOR_IRQ_BASE = 0x20; // emulated PIC: IRQn -> 0x20 + n

// Standard ports.
export const COM1_BASE = 0x3f8;
export const COM2_BASE = 0x2f8;
