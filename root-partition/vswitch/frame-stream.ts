/**
 * The byte stream between a switch and whoever plugs into it: records of a 4-byte big-endian
 * length followed by that many bytes — the framing passt uses on its Unix socket (QEMU's
 * "-netdev stream"), so one codec serves VM workers and passt alike. Many records go in one
 * write: that batching is what keeps the per-frame cost of the process hop low.
 */
export const RECORD_HEADER_BYTES = 4;
/** Largest record accepted: a jumbo frame with an 802.1Q tag, and room for the hello record. */
export const MAX_RECORD_BYTES = 9018 + 1024;

export class FrameStreamError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FrameStreamError';
  }
}

/**
 * Splits incoming chunks into records. Holds at most one partial record: a peer that announces a
 * length above the limit is a protocol error (the connection is closed), never an allocation.
 */
export class FrameStreamDecoder {
  private pending: Buffer = Buffer.alloc(0);

  constructor(private readonly maxRecord = MAX_RECORD_BYTES) {}

  /** Calls `onRecord` for each complete record (a view valid during the call). Throws FrameStreamError. */
  push(chunk: Buffer, onRecord: (record: Uint8Array) => void): void {
    const buf = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    let at = 0;
    while (buf.length - at >= RECORD_HEADER_BYTES) {
      const len = buf.readUInt32BE(at);
      if (len > this.maxRecord) throw new FrameStreamError(`record of ${len} bytes exceeds ${this.maxRecord}`);
      if (buf.length - at - RECORD_HEADER_BYTES < len) break;
      onRecord(buf.subarray(at + RECORD_HEADER_BYTES, at + RECORD_HEADER_BYTES + len));
      at += RECORD_HEADER_BYTES + len;
    }
    // Copy the tail: `chunk` belongs to the stream and may be reused.
    this.pending = at === buf.length ? Buffer.alloc(0) : Buffer.from(buf.subarray(at));
  }

  get bufferedBytes(): number {
    return this.pending.length;
  }
}

/** What a FrameBatcher writes to (a net.Socket). */
export interface ByteSink {
  write(data: Buffer): boolean;
  /** Bytes accepted but not yet handed to the OS. */
  readonly writableLength: number;
}

export interface FrameBatcherStats {
  records: number;
  writes: number;
  /** Records dropped because the peer was not reading (its socket backlog over the limit). */
  dropped: number;
}

/**
 * Collects records and writes them in one `write` per event-loop turn (or when the batch fills).
 * If the peer stops reading, records are dropped once its backlog passes `maxBacklogBytes`: a
 * switch drops on a congested port rather than holding unbounded memory for it.
 */
export class FrameBatcher {
  readonly stats: FrameBatcherStats = { records: 0, writes: 0, dropped: 0 };
  private batch: Buffer;
  private used = 0;
  private scheduled = false;

  constructor(
    private readonly sink: ByteSink,
    batchBytes = 256 * 1024,
    private readonly maxBacklogBytes = 4 * 1024 * 1024,
  ) {
    this.batch = Buffer.allocUnsafe(batchBytes);
  }

  /** Queues one record (copied). False when it was dropped. */
  push(record: Uint8Array): boolean {
    const need = RECORD_HEADER_BYTES + record.length;
    if (this.sink.writableLength + this.used + need > this.maxBacklogBytes) {
      this.stats.dropped++;
      return false;
    }
    if (this.used + need > this.batch.length) this.flush();
    if (need > this.batch.length) this.batch = Buffer.allocUnsafe(need);
    this.batch.writeUInt32BE(record.length, this.used);
    this.batch.set(record, this.used + RECORD_HEADER_BYTES);
    this.used += need;
    this.stats.records++;
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
    return true;
  }

  /** Writes what is batched now. */
  flush(): void {
    this.scheduled = false;
    if (this.used === 0) return;
    // The socket keeps the buffer it is given: hand it this batch and start a new one.
    const out = this.batch.subarray(0, this.used);
    this.batch = Buffer.allocUnsafe(this.batch.length);
    this.used = 0;
    this.stats.writes++;
    this.sink.write(out);
  }
}
