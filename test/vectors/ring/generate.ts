// Regenerates the ring vectors' expected outcomes and bytes from the host ring:
//   npx tsx test/vectors/ring/generate.ts
// Only for new vectors or a deliberate format change: the committed JSON is the contract both
// rings are tested against (test/vmbus/ring-vectors.test.ts); review the diff by hand.
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hostDriver, runVector, type RingVector } from '../../vmbus/ring-vector-driver.ts';

const dir = new URL('.', import.meta.url).pathname;
for (const f of readdirSync(dir).filter((n) => n.endsWith('.json'))) {
  const v = JSON.parse(readFileSync(join(dir, f), 'utf8')) as RingVector;
  const out = runVector(v, hostDriver(v));
  writeFileSync(join(dir, f), JSON.stringify(out, null, 2) + '\n');
  console.log(`${f}: ${out.steps.length} steps`);
}
