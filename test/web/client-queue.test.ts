/**
 * What one browser's queue may hold: the newest record per VM, per counter series and per job
 * (drop-to-latest), and console bytes up to its bound — past it the oldest go, and the count of
 * what went comes out first, before the newest bytes, exactly.
 */
import { describe, expect, it } from 'vitest';
import { ClientQueue, sseFrame, type ClientFrame } from '../../root-partition/management/web/client-queue.ts';
import type { WebVm } from '../../root-partition/management/web/web-port.ts';

const vm = (id: string, state: string): WebVm => ({
  id,
  name: id,
  enabledState: 2,
  state,
  healthState: 5,
  heartbeatStatus: null,
  uptimeMs: null,
  memoryBytes: 1,
  vpCount: 1,
  processId: null,
  availableRequestedStates: [],
  lastError: null,
});

function drain(q: ClientQueue): ClientFrame[] {
  const out: ClientFrame[] = [];
  for (let f = q.next(); f; f = q.next()) out.push(f);
  return out;
}

describe('ClientQueue', () => {
  it('keeps only the newest record per VM, counter series and job', () => {
    const q = new ClientQueue(null);
    for (let i = 0; i < 1000; i++) {
      q.vm('a', vm('a', `s${i}`));
      q.sample('a', { at: i, cpuPercent: i, exitsPerSecond: 0, ioPerSecond: 0, signalsPerSecond: 0 });
      q.job({ id: 'J', vmId: 'a', description: 'd', jobState: 4, percentComplete: i % 100, errorCode: 0, errorDescription: null });
    }
    q.vm('b', vm('b', 'Off'));
    q.vm('b', null);
    const frames = drain(q);
    expect(frames.map((f) => f.event)).toEqual(['vm', 'removed', 'counters', 'job']);
    expect((frames[0]!.data as WebVm).state).toBe('s999');
    expect(frames[1]!.data).toEqual({ id: 'b' });
    expect(frames[2]!.data).toMatchObject({ id: 'a', at: 999 });
    expect(frames[3]!.data).toMatchObject({ percentComplete: 99 });
    expect(q.replacedRecords).toBe(3 * 999 + 1);
    expect(q.empty).toBe(true);
  });

  it('holds at most its console bound, says how much it dropped, then delivers the newest bytes exactly', () => {
    const bound = 1000;
    const q = new ClientQueue('vm1', bound);
    q.console('other-vm', Buffer.alloc(500, 1)); // not the attached console: ignored
    const sent: number[] = [];
    for (let i = 0; i < 300; i++) {
      const chunk = Buffer.from(Array.from({ length: 7 }, (_, j) => (i * 7 + j) & 0xff));
      sent.push(...chunk);
      q.console('vm1', chunk);
      expect(q.queuedConsoleBytes).toBeLessThanOrEqual(bound);
    }
    q.console('vm1', Buffer.alloc(5000, 9)); // one chunk larger than the bound: its newest bytes stay
    sent.push(...Buffer.alloc(5000, 9));
    expect(q.queuedConsoleBytes).toBe(bound);
    const frames = drain(q);
    expect(frames[0]).toEqual({ event: 'console-dropped', data: { id: 'vm1', bytes: sent.length - bound } });
    const got = Buffer.concat(frames.slice(1).map((f) => Buffer.from((f.data as { data: string }).data, 'base64')));
    expect([...got]).toEqual(sent.slice(-bound));
    expect(q.droppedConsoleBytes).toBe(sent.length - bound);
  });

  it('writes frames in the event-stream format', () => {
    expect(sseFrame({ event: 'removed', data: { id: 'x' } })).toBe('event: removed\ndata: {"id":"x"}\n\n');
  });
});
