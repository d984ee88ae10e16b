/**
 * Loads a guest image the way a boot loader does: the data segments are copied into guest memory
 * once, and the VPs instantiate a copy of the module without its data section. WebAssembly
 * re-applies active data segments at every instantiation, which would reset live data whenever a
 * later VP starts (WebAssembly spec, "Instantiation"). An image is untrusted input: its
 * size is bounded before anything parses it, every length is checked, V8 validates the module
 * before the rewriter sees it, and the rewrite runs in a worker under a time bound (rewrite/):
 * anything unexpected is a clear error, never a host crash.
 */
import { HvError } from './hv-error.ts';
import { cacheKey, preparedModule } from './rewrite/prepared-image-cache.ts';
import { DEFAULT_REWRITE, NO_REWRITE, PREEMPTIBLE_REWRITE, type RewriteOptions } from './rewrite/rewrite-abi.ts';

/** Largest image accepted (guest images are tens to hundreds of KiB). TSVISOR_MAX_IMAGE_BYTES overrides. */
export const MAX_IMAGE_BYTES = 32 * 1024 * 1024;

export interface LoadOptions {
  /** How the image is prepared; default: preemption points (rewrite/rewrite-abi.ts). */
  rewrite?: RewriteOptions;
  /** Bound on the rewrite (ms); default TSVISOR_REWRITE_TIMEOUT_MS or 30 s. */
  rewriteTimeoutMs?: number;
  maxBytes?: number;
}

function maxImageBytes(): number {
  const env = Number(process.env.TSVISOR_MAX_IMAGE_BYTES);
  return Number.isFinite(env) && env > 0 ? env : MAX_IMAGE_BYTES;
}

export interface DataSegment {
  offset: number;
  bytes: Uint8Array;
}

export interface GuestImage {
  /** The module without data (and data-count) sections, prepared and compiled once, shareable with workers. */
  module: WebAssembly.Module;
  /** How `module` was prepared from the image. */
  rewrite: RewriteOptions;
  /**
   * Names this exact preparation (image, options, rewriter version): a VP's captured stack fits
   * only the module it was captured from, so saved state records it and a restore checks it.
   */
  preparation: string;
  segments: DataSegment[];
  /** First byte after the highest data segment. */
  dataEnd: number;
  /** Minimum memory (64 KiB pages) the module declares for its memory import. */
  minPages: number;
  maxPages: number | null;
  imports: { module: string; name: string; kind: string }[];
  exports: { name: string; kind: string }[];
}

const SECTION_IMPORT = 2;
const SECTION_DATA = 11;
const SECTION_DATA_COUNT = 12;

class Reader {
  pos = 0;
  constructor(
    readonly u8: Uint8Array,
    readonly end: number,
  ) {}
  byte(): number {
    if (this.pos >= this.end) throw bad('truncated');
    return this.u8[this.pos++];
  }
  uleb(): number {
    let r = 0,
      shift = 0,
      b: number;
    do {
      b = this.byte();
      if (shift > 28) throw bad('LEB128 value too long');
      r += (b & 0x7f) * 2 ** shift;
      shift += 7;
    } while (b & 0x80);
    return r;
  }
  sleb32(): number {
    let r = 0,
      shift = 0,
      b: number;
    do {
      b = this.byte();
      if (shift > 28) throw bad('LEB128 value too long');
      r |= (b & 0x7f) << shift;
      shift += 7;
    } while (b & 0x80);
    return shift < 32 && b & 0x40 ? r | (~0 << shift) : r;
  }
  bytes(n: number): Uint8Array {
    if (n < 0 || this.pos + n > this.end) throw bad('truncated');
    const s = this.u8.subarray(this.pos, this.pos + n);
    this.pos += n;
    return s;
  }
  name(): string {
    return new TextDecoder().decode(this.bytes(this.uleb()));
  }
}

function bad(why: string): HvError {
  return new HvError('HV_ERR_BAD_IMAGE', `guest image is not a valid WebAssembly module: ${why}`);
}

/** An image split into its code (a module without data) and its data segments, not yet compiled. */
export interface ParsedImage {
  stripped: Uint8Array<ArrayBuffer>;
  segments: DataSegment[];
  minPages: number;
  maxPages: number | null;
}

export function parseGuestImage(image: Uint8Array, opts: LoadOptions = {}): ParsedImage {
  const u8 = image;
  const limit = opts.maxBytes ?? maxImageBytes();
  if (u8.length > limit) throw bad(`${u8.length} bytes is more than the ${limit} bytes an image may have`);
  if (u8.length < 8 || u8[0] !== 0 || u8[1] !== 0x61 || u8[2] !== 0x73 || u8[3] !== 0x6d) throw bad('missing \\0asm magic');
  if (u8[4] !== 1 || u8[5] !== 0 || u8[6] !== 0 || u8[7] !== 0) throw bad('unsupported version');
  const keep: Uint8Array[] = [u8.subarray(0, 8)];
  const segments: DataSegment[] = [];
  let minPages = 0,
    maxPages: number | null = null,
    sawMemoryImport = false;
  const r = new Reader(u8, u8.length);
  r.pos = 8;
  while (r.pos < u8.length) {
    const start = r.pos;
    const id = r.byte();
    const size = r.uleb();
    const end = r.pos + size;
    if (end > u8.length) throw bad(`section ${id} overruns the file`);
    const s = new Reader(u8, end);
    s.pos = r.pos;
    if (id === SECTION_DATA) {
      for (let n = s.uleb(); n > 0; n--) {
        const flags = s.uleb();
        if (flags !== 0) throw bad(`data segment kind ${flags} (only active segments of memory 0 are supported)`);
        if (s.byte() !== 0x41) throw bad('data segment offset is not an i32.const');
        const offset = s.sleb32() >>> 0;
        if (s.byte() !== 0x0b) throw bad('data segment offset expression not terminated');
        segments.push({ offset, bytes: s.bytes(s.uleb()).slice() });
      }
    } else if (id !== SECTION_DATA_COUNT) {
      keep.push(u8.subarray(start, end));
      if (id === SECTION_IMPORT) {
        for (let n = s.uleb(); n > 0; n--) {
          const mod = s.name(),
            field = s.name(),
            kind = s.byte();
          if (kind === 0) s.uleb();
          else if (kind === 1) {
            s.byte();
            const f = s.uleb();
            s.uleb();
            if (f & 1) s.uleb();
          } else if (kind === 2) {
            const flags = s.uleb();
            if (mod === 'env' && field === 'memory') {
              sawMemoryImport = true;
              minPages = s.uleb();
              maxPages = flags & 1 ? s.uleb() : null;
              if ((flags & 2) === 0) throw bad('the memory import is not shared (build with --sharedMemory)');
            } else {
              s.uleb();
              if (flags & 1) s.uleb();
            }
          } else if (kind === 3) {
            s.byte();
            s.byte();
          } else throw bad(`import kind ${kind}`);
        }
      }
    }
    r.pos = end;
  }
  if (!sawMemoryImport) throw bad('the image does not import env.memory (build with --importMemory)');
  const total = keep.reduce((a, p) => a + p.length, 0);
  const stripped = new Uint8Array(total);
  keep.reduce((o, p) => (stripped.set(p, o), o + p.length), 0);
  return { stripped, segments, minPages, maxPages };
}

export function loadGuestImage(image: Uint8Array, opts: LoadOptions = {}): GuestImage {
  const { stripped, segments, minPages, maxPages } = parseGuestImage(image, opts);
  let plain: WebAssembly.Module;
  try {
    plain = new WebAssembly.Module(stripped);
  } catch (e) {
    throw bad((e as Error).message);
  }
  const rewrite = opts.rewrite ?? rewriteFromEnv();
  const module = rewrite.preemption ? preparedModule(stripped, { rewrite, timeoutMs: opts.rewriteTimeoutMs }) : plain;
  const dataEnd = segments.reduce((m, s) => Math.max(m, s.offset + s.bytes.length), 0);
  return {
    module,
    rewrite,
    preparation: cacheKey(stripped, rewrite),
    segments,
    dataEnd,
    minPages,
    maxPages,
    imports: WebAssembly.Module.imports(plain).map((i) => ({ module: i.module, name: i.name, kind: i.kind })),
    exports: WebAssembly.Module.exports(plain).map((e) => ({ name: e.name, kind: e.kind })),
  };
}

/**
 * TSVISOR_REWRITE: `0` runs images unmodified (cooperative VPs, as before the rewrite existed),
 * `preemptible` adds preemption points only (VPs cannot be captured: no saved state), anything
 * else the default (preemption points and capturable stacks).
 */
function rewriteFromEnv(): RewriteOptions {
  const v = process.env.TSVISOR_REWRITE;
  if (v === '0' || v === 'off') return NO_REWRITE;
  if (v === 'preemptible') return PREEMPTIBLE_REWRITE;
  return DEFAULT_REWRITE;
}
