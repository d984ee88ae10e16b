/**
 * Parsing large request bodies on a worker thread. fast-xml-parser is synchronous and costs about
 * a microsecond per byte of text (more on a loaded machine): a 1 MiB body held the service's thread
 * for 0.3-1.4 s, during which no other client was answered. Bodies above `inlineMaxBytes` are
 * parsed here instead; the service's thread only receives the tree. Small bodies, which are nearly
 * all requests, are parsed inline: a thread hop would cost them more than the parse.
 *
 * The thread starts on the first large body and stays up; it is limited to `heapLimitMb` of heap,
 * so a document that exhausts memory kills the thread (the request gets a 500), not the service.
 */
import { Worker } from 'node:worker_threads';
import { failureError, parseDocument, type ParsedDocument, type XmlFailure } from './parsed-document.ts';
import type { XmlLimits } from './xml-limits.ts';

export interface XmlParserRequest {
  readonly id: number;
  readonly text: string;
  readonly limits: XmlLimits;
}

export type XmlParserReply =
  | { readonly id: number; readonly document: ParsedDocument }
  | { readonly id: number; readonly failure: XmlFailure }
  | { readonly id: number; readonly fault: string };

export interface XmlParserThreadOptions {
  /** Bodies up to this many bytes are parsed on the caller's thread; default 16 KiB. */
  readonly inlineMaxBytes?: number;
  /** Old-generation heap of the parser thread; default 256 MB. */
  readonly heapLimitMb?: number;
}

export const DEFAULT_INLINE_PARSE_MAX_BYTES = 16 * 1024;

export class XmlParserThread {
  private worker: Worker | null = null;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (d: ParsedDocument) => void; reject: (e: Error) => void }>();
  private readonly inlineMaxBytes: number;
  private readonly heapLimitMb: number;
  private parsedOffThread = 0;

  constructor(options: XmlParserThreadOptions = {}) {
    this.inlineMaxBytes = options.inlineMaxBytes ?? DEFAULT_INLINE_PARSE_MAX_BYTES;
    this.heapLimitMb = options.heapLimitMb ?? 256;
  }

  /** Documents parsed on the parser thread so far. */
  get offThreadCount(): number {
    return this.parsedOffThread;
  }

  parse(text: string, limits: XmlLimits): Promise<ParsedDocument> {
    if (text.length <= this.inlineMaxBytes) {
      try {
        return Promise.resolve(parseDocument(text, limits));
      } catch (e) {
        return Promise.reject(e);
      }
    }
    const id = this.nextId++;
    const worker = this.started();
    this.parsedOffThread++;
    // A parse in progress keeps the process alive; an idle parser thread does not.
    worker.ref();
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.postMessage({ id, text, limits } satisfies XmlParserRequest);
    });
  }

  async close(): Promise<void> {
    const w = this.worker;
    this.worker = null;
    if (w) await w.terminate();
  }

  private started(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(new URL('./xml-parser-worker.mjs', import.meta.url), {
      name: 'cim-xml parser',
      resourceLimits: { maxOldGenerationSizeMb: this.heapLimitMb },
    });
    worker.on('message', (m: XmlParserReply) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (this.pending.size === 0) worker.unref();
      if ('document' in m) p.resolve(m.document);
      else if ('failure' in m) p.reject(failureError(m.failure));
      else p.reject(new Error(`the XML parser thread failed: ${m.fault}`));
    });
    const fail = (why: string) => {
      if (this.worker === worker) this.worker = null;
      for (const p of this.pending.values()) p.reject(new Error(why));
      this.pending.clear();
    };
    worker.on('error', (e) => fail(`the XML parser thread failed: ${e.message}`));
    worker.on('exit', (code) => fail(`the XML parser thread exited (${code})`));
    this.worker = worker;
    return worker;
  }
}
