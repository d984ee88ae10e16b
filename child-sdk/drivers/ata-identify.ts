// IDENTIFY DEVICE data (ATA/ATAPI-6, IDENTIFY DEVICE data table): 256 little-endian words.

export function identifyWord(page: usize, word: u32): u32 {
  return <u32>load<u16>(page + (<usize>word << 1));
}

/**
 * Word 255: when bits 7:0 are A5h, bits 15:8 are a checksum that makes the 512 bytes sum to zero
 * (mod 256); without the signature the word is not used.
 */
export function identifyValid(page: usize): bool {
  if (load<u8>(page + 510) != 0xa5) return true;
  let sum: u32 = 0;
  for (let i: usize = 0; i < 512; i += 8) {
    const q = load<u64>(page + i);
    // Sum the eight bytes of q without a per-byte loop over memory.
    let s = (q & 0x00ff00ff00ff00ff) + ((q >> 8) & 0x00ff00ff00ff00ff);
    s = (s & 0x0000ffff0000ffff) + ((s >> 16) & 0x0000ffff0000ffff);
    s = (s & 0xffffffff) + (s >> 32);
    sum += <u32>s;
  }
  return (sum & 0xff) == 0;
}

/** Addressable sectors: words 100–103 for a 48-bit drive, else words 60–61. */
export function identifyCapacity(page: usize, lba48: bool): u64 {
  if (lba48) return load<u64>(page + 200);
  return <u64>load<u32>(page + 120);
}
