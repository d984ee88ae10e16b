/**
 * The parser thread's body: parses request documents (parsed-document.ts) so that large bodies
 * never hold the service's thread. One message in, one out, matched by id.
 */
import { parentPort } from 'node:worker_threads';
import { failureOf, parseDocument } from './parsed-document.ts';
import type { XmlParserReply, XmlParserRequest } from './xml-parser-thread.ts';

parentPort!.on('message', (m: XmlParserRequest) => {
  let reply: XmlParserReply;
  try {
    reply = { id: m.id, document: parseDocument(m.text, m.limits) };
  } catch (e) {
    try {
      reply = { id: m.id, failure: failureOf(e) };
    } catch {
      reply = { id: m.id, fault: e instanceof Error ? e.message : String(e) };
    }
  }
  parentPort!.postMessage(reply);
});
