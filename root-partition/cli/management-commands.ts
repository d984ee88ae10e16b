/**
 * `tsvisor query "<WQL>"`, `tsvisor watch "<event WQL>"` and `tsvisor job list | show`: the
 * management model itself, for people (tables) and scripts (--json). Events are pushed by the
 * service as each change happens.
 */
import type { Command } from 'commander';
import type { CimInstance } from '../management/cim/instance.ts';
import { JobStateValues } from '../management/cim/msvm-classes.ts';
import { defaultDataDir } from '../host/data-dir.ts';
import { CommandFailure, withManagement } from './management-session.ts';
import { instanceJson, printJson, printTable, valueText } from './table.ts';

/** Few columns as a table; many as one block per instance. */
function printInstances(instances: readonly CimInstance[]): void {
  if (instances.length === 0) {
    console.log('(no instances)');
    return;
  }
  const names = instances[0]!.properties.map((p) => p.name).filter((n) => instances.some((i) => i.get(n) !== null && i.get(n) !== undefined));
  if (names.length <= 6) {
    printTable(
      names,
      instances.map((i) => names.map((n) => valueText(i.get(n)))),
    );
    return;
  }
  for (const i of instances) {
    console.log(i.className);
    for (const p of i.properties) if (p.value !== null) console.log(`  ${p.name.padEnd(28)} ${valueText(p.value)}`);
    console.log('');
  }
}

function changed(target: CimInstance, previous: CimInstance | undefined): string {
  if (!previous) return '';
  return target.properties
    .filter(
      (p) =>
        valueText(p.value) !== valueText(previous.get(p.name)) &&
        p.name !== 'OnTimeInMilliseconds' &&
        p.name !== 'ElapsedTime' &&
        p.name !== 'TimeOfLastStateChange',
    )
    .map((p) => `${p.name} ${valueText(previous.get(p.name))} → ${valueText(p.value)}`)
    .join(', ');
}

function label(i: CimInstance): string {
  return String(i.get('ElementName') ?? i.get('InstanceID') ?? i.get('Name') ?? '');
}

export function registerManagementCommands(program: Command): void {
  program
    .command('query <wql>')
    .description('run a WQL query (SELECT, ASSOCIATORS OF, REFERENCES OF) against root/virtualization/v2')
    .option('--data-dir <dir>', "the service's data directory", defaultDataDir())
    .option('--json', 'machine-readable output')
    .action((wql: string, o: { dataDir: string; json?: boolean }) =>
      withManagement(o.dataDir, async (c) => {
        const instances = await c.query(wql);
        if (o.json) printJson(instances.map(instanceJson));
        else printInstances(instances);
      }),
    );

  program
    .command('watch <wql>')
    .description('print intrinsic events as they happen (SELECT * FROM __InstanceModificationEvent WITHIN 1 WHERE TargetInstance ISA …)')
    .option('--data-dir <dir>', "the service's data directory", defaultDataDir())
    .option('--count <n>', 'stop after n events')
    .option('--json', 'one JSON object per line')
    .action((wql: string, o: { dataDir: string; count?: string; json?: boolean }) =>
      withManagement(o.dataDir, async (c) => {
        const limit = o.count === undefined ? Infinity : Number(o.count);
        if (!(limit > 0)) throw new CommandFailure('CIM_ERR_INVALID_PARAMETER', 4, '--count must be a positive number');
        let seen = 0;
        let finish!: () => void;
        const finished = new Promise<void>((r) => {
          finish = r;
        });
        await c.watch(wql, (e) => {
          if (seen >= limit) return;
          seen++;
          if (o.json)
            console.log(
              JSON.stringify({
                eventClass: e.eventClass,
                time: e.time.toISOString(),
                target: instanceJson(e.target),
                ...(e.previous ? { previous: instanceJson(e.previous) } : {}),
              }),
            );
          else console.log([e.time.toISOString(), e.eventClass, e.target.className, label(e.target), changed(e.target, e.previous)].filter(Boolean).join('  '));
          if (seen >= limit) finish();
        });
        // Scripts and tests wait for this line before making changes: on stderr, so it is printed with
        // --json too without mixing into the machine-readable stream.
        console.error('tsvisor: watching; events are printed as they happen (Ctrl-C stops)');
        c.events.once('close', () => finish());
        process.once('SIGINT', () => finish());
        await finished;
      }),
    );

  const job = program
    .command('job')
    .description('Msvm_ConcreteJob: the long operations and how they ended')
    .option('--data-dir <dir>', "the service's data directory", defaultDataDir());
  const dir = () => (job.opts() as { dataDir: string }).dataDir;
  job
    .command('list')
    .description('jobs still kept (running, or ended within the retention window)')
    .option('--json', 'machine-readable output')
    .action((o: { json?: boolean }) =>
      withManagement(dir(), async (c) => {
        const jobs = await c.enumerate('Msvm_ConcreteJob');
        if (o.json) return printJson(jobs.map(instanceJson));
        printTable(
          ['ID', 'STATE', '%', 'ERROR', 'DESCRIPTION', 'SUBMITTED'],
          jobs.map((j) => [
            String(j.get('InstanceID')),
            JobStateValues[Number(j.get('JobState'))] ?? String(j.get('JobState')),
            valueText(j.get('PercentComplete')),
            Number(j.get('ErrorCode')) ? `${String(j.get('ErrorCode'))}: ${String(j.get('ErrorDescription'))}` : '',
            String(j.get('Description')),
            String(j.get('TimeSubmitted')),
          ]),
        );
      }),
    );
  job
    .command('show <id>')
    .description('one job')
    .option('--json', 'machine-readable output')
    .action((id: string, o: { json?: boolean }) =>
      withManagement(dir(), async (c) => {
        const j = await c.get({ className: 'Msvm_ConcreteJob', keys: [{ name: 'InstanceID', value: id.toUpperCase() }] });
        if (o.json) return printJson(instanceJson(j));
        for (const p of j.properties)
          if (p.value !== null)
            console.log(`${p.name.padEnd(22)} ${valueText(p.value)}${p.name === 'JobState' ? ` (${JobStateValues[Number(p.value)] ?? '?'})` : ''}`);
      }),
    );
}
