import { afterEach, describe, expect, it } from 'vitest';
import { setTraceSink, tracer } from '../../root-partition/devices/device-trace.ts';

afterEach(() => setTraceSink((line) => process.stderr.write(line + '\n')));

describe('device tracing', () => {
  it('is off (undefined) unless the component is named in TSVISOR_TRACE', () => {
    if ((process.env.TSVISOR_TRACE ?? '') === '') expect(tracer('ide')).toBeUndefined();
    const lines: string[] = [];
    setTraceSink((l) => lines.push(l));
    tracer('ide', true)!('command 0xec');
    expect(lines).toEqual(['[ide] command 0xec']);
  });
});
