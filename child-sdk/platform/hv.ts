// The guest platform interface v1 (docs/guest-abi.md): each import stands for a privileged
// instruction and is an exit to the hypervisor.

// @ts-ignore: decorator
@external("hv", "vp_index") export declare const VP_INDEX: i32;
// @ts-ignore: decorator
@external("hv", "cpuid") export declare function cpuid(leaf: u32, subleaf: u32, outGpa: usize): void;
// @ts-ignore: decorator
@external("hv", "rdmsr") export declare function rdmsr(msr: u32): u64;
// @ts-ignore: decorator
@external("hv", "wrmsr") export declare function wrmsr(msr: u32, value: u64): void;
// @ts-ignore: decorator
@external("hv", "hypercall") export declare function hypercall(controlLo: u32, controlHi: u32, inputGpa: usize, outputGpa: usize): u32;
// @ts-ignore: decorator
@external("hv", "hypercall_fast") export declare function hypercallFast(controlLo: u32, controlHi: u32, in0Lo: u32, in0Hi: u32, in1Lo: u32, in1Hi: u32): u32;
// @ts-ignore: decorator
@external("hv", "inb") export declare function inb(port: u32): u32;
// @ts-ignore: decorator
@external("hv", "inw") export declare function inw(port: u32): u32;
// @ts-ignore: decorator
@external("hv", "inl") export declare function inl(port: u32): u32;
// @ts-ignore: decorator
@external("hv", "outb") export declare function outb(port: u32, value: u32): void;
// @ts-ignore: decorator
@external("hv", "outw") export declare function outw(port: u32, value: u32): void;
// @ts-ignore: decorator
@external("hv", "outl") export declare function outl(port: u32, value: u32): void;
// @ts-ignore: decorator
@external("hv", "insb") export declare function insb(port: u32, gpa: usize, count: u32): u32;
// @ts-ignore: decorator
@external("hv", "insw") export declare function insw(port: u32, gpa: usize, count: u32): u32;
// @ts-ignore: decorator
@external("hv", "insl") export declare function insl(port: u32, gpa: usize, count: u32): u32;
// @ts-ignore: decorator
@external("hv", "outsb") export declare function outsb(port: u32, gpa: usize, count: u32): u32;
// @ts-ignore: decorator
@external("hv", "outsw") export declare function outsw(port: u32, gpa: usize, count: u32): u32;
// @ts-ignore: decorator
@external("hv", "outsl") export declare function outsl(port: u32, gpa: usize, count: u32): u32;
// @ts-ignore: decorator
@external("hv", "mmio_read") export declare function mmioRead(gpa: usize, size: u32): u32;
// @ts-ignore: decorator
@external("hv", "mmio_write") export declare function mmioWrite(gpa: usize, size: u32, value: u32): void;
// @ts-ignore: decorator
@external("hv", "halt") export declare function halt(): void;
// @ts-ignore: decorator
@external("hv", "sti") export declare function sti(): void;
// @ts-ignore: decorator
@external("hv", "cli") export declare function cli(): void;
// @ts-ignore: decorator
@external("hv", "panic") export declare function panic(msg: usize, msgBytes: u32, file: usize, fileBytes: u32, line: u32, col: u32): void;
