// Starting further VPs (docs/guest-abi.md §8): VP 0 asks the hypervisor with
// HvCallStartVirtualProcessor, whose initial RIP carries an AssemblyScript function reference;
// the new VP's thread instantiates the image and calls its `vp_start(rip)` export, which an image
// implements by calling `apEntry(rip)`.

/** Runs the function a VP was started with (`startVirtualProcessor(vp, entry)`), passing its index. */
export function apEntry(rip: u32, vp: i32): void {
  changetype<(arg: u32) => void>(rip)(<u32>vp);
}
