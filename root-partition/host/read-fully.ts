import { readSync } from 'node:fs';

/** Up to `size` bytes from the start of an open file (fewer if it ends sooner: a file shrinking under the reader). */
export function readFully(fd: number, size: number): Buffer {
  const out = Buffer.alloc(size);
  let off = 0;
  while (off < out.length) {
    const n = readSync(fd, out, off, out.length - off, off);
    if (n === 0) break;
    off += n;
  }
  return off === out.length ? out : out.subarray(0, off);
}
