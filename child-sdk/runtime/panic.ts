// Target of --use abort=child-sdk/runtime/panic/guestAbort: an assertion, a bounds check or a
// throw reports its message to the hypervisor, which stops the VP and tells the root partition.
// The strings are passed as raw addresses with their byte length (the u32 just before an
// AssemblyScript object is its size), so reporting a failure never allocates or touches the heap.
import { panic } from "../platform/hv";

/** AssemblyScript abort handler: reports message, file, line and column through the hv.panic import and never returns. */
export function guestAbort(message: string | null, fileName: string | null, line: u32, column: u32): void {
  const m = changetype<usize>(message);
  const f = changetype<usize>(fileName);
  panic(m, m ? load<u32>(m - 4) : 0, f, f ? load<u32>(f - 4) : 0, line, column);
  unreachable();
}
