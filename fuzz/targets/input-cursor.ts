/**
 * Reads a fuzz input as a program: small integers and byte runs taken in order, zero past the
 * end. Targets that drive a stateful device turn the bytes into a sequence of operations with it,
 * so mutations of the bytes are mutations of the guest's behaviour.
 */
export class InputCursor {
  private at = 0;
  constructor(readonly bytes: Uint8Array) {}

  get done(): boolean {
    return this.at >= this.bytes.length;
  }

  u8(): number {
    return this.at < this.bytes.length ? this.bytes[this.at++]! : (this.at++, 0);
  }
  u16(): number {
    return this.u8() | (this.u8() << 8);
  }
  u32(): number {
    return (this.u16() | (this.u16() << 16)) >>> 0;
  }

  /** Up to `n` bytes (fewer at the end of the input). */
  take(n: number): Uint8Array {
    const out = this.bytes.slice(this.at, this.at + n);
    this.at += n;
    return out;
  }
}

/** The inverse, for building seeds. */
export class InputBuilder {
  private readonly out: number[] = [];
  u8(v: number): this {
    this.out.push(v & 0xff);
    return this;
  }
  u16(v: number): this {
    return this.u8(v).u8(v >>> 8);
  }
  u32(v: number): this {
    return this.u16(v & 0xffff).u16(v >>> 16);
  }
  bytes(b: Uint8Array): this {
    for (const x of b) this.out.push(x);
    return this;
  }
  build(): Uint8Array {
    return Uint8Array.from(this.out);
  }
}
