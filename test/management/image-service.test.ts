/**
 * Msvm_ImageManagementService through Debian's unmodified wbemcli against a real `tsvisor serve`:
 * New-VHD (dynamic, fixed, differencing), Get-VHD, Resize-VHD, Merge-VHD, Convert-VHD and
 * Optimize-VHD as jobs, the files checked with qemu-img and vhdiinfo; a conversion cancelled
 * through its job (RequestStateChange 4) ends Terminated with its new file removed; refusals (VHD format, a path outside the storage roots,
 * shrinking, a merge into a disk that is not the parent) end their job in Exception with the
 * Hyper-V code and the reason.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDisk } from '../../root-partition/storage/open-disk.ts';
import { LiveDaemon, run, WBEMCLI } from './live-daemon.ts';

const CREDS = 'operator:s3cret';
const MiB = 1024 * 1024;
const QEMU_IMG = ['/usr/bin/qemu-img'].find((p) => existsSync(p));
const VHDIINFO = ['/usr/bin/vhdiinfo'].find((p) => existsSync(p));

const wbemcli = (...args: string[]) => run(WBEMCLI!, args, 30_000);
const xmlEscape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
/** An embedded Msvm_VirtualHardDiskSettingData, typed as Hyper-V's class declares it. */
const settings = (props: Record<string, string | number>) => {
  const type: Record<string, string> = {
    Type: 'uint16',
    Format: 'uint16',
    MaxInternalSize: 'uint64',
    BlockSize: 'uint32',
    LogicalSectorSize: 'uint32',
    PhysicalSectorSize: 'uint32',
  };
  const body = Object.entries(props)
    .map(([k, v]) => `<PROPERTY NAME="${k}" TYPE="${type[k] ?? 'string'}"><VALUE>${v}</VALUE></PROPERTY>`)
    .join('');
  return xmlEscape(`<INSTANCE CLASSNAME="Msvm_VirtualHardDiskSettingData">${body}</INSTANCE>`);
};
const qemuInfo = (path: string) =>
  JSON.parse(execFileSync(QEMU_IMG!, ['info', '--output=json', path], { encoding: 'utf8' })) as {
    format: string;
    'virtual-size': number;
    'cluster-size'?: number;
  };

describe.skipIf(!WBEMCLI || !QEMU_IMG || !VHDIINFO)(
  'Msvm_ImageManagementService through wbemcli — skipped only when wbemcli, qemu-img or vhdiinfo is absent; CI installs them',
  () => {
    let daemon: LiveDaemon;
    let scratch: string;
    let U = '';
    let SVC = '';

    beforeAll(async () => {
      scratch = mkdtempSync(join(tmpdir(), 'tsv-vhd-'));
      daemon = await LiveDaemon.start({ users: [{ user: 'operator', password: 's3cret', role: 'full' }], storageRoots: [scratch] });
      U = daemon.url(CREDS);
      const svc = await wbemcli('ein', `${U}:Msvm_ImageManagementService`);
      expect(svc.stdout.trim().split('\n')).toHaveLength(1);
      SVC = `http://${CREDS}@${svc.stdout.trim()}`;
    }, 120_000);

    afterAll(async () => {
      if (daemon) expect(await daemon.stop()).toEqual([]);
      if (scratch) rmSync(scratch, { recursive: true, force: true });
    });

    /** Calls a method that answers 4096 and waits for its job: [JobState, ErrorCode, ErrorDescription, PercentComplete]. */
    async function job(call: string): Promise<[number, number, string, number]> {
      const r = await wbemcli('cm', SVC, call);
      expect(r.stdout, r.stderr).toMatch(/: 4096, Job \(reference\): .*Msvm_ConcreteJob\.InstanceID="[0-9A-F-]{36}"/);
      const id = /InstanceID="([0-9A-F-]{36})"/.exec(r.stdout)![1]!;
      for (const deadline = Date.now() + 30_000; Date.now() < deadline; await new Promise((res) => setTimeout(res, 50))) {
        const gi = await wbemcli('gi', `${U}:Msvm_ConcreteJob.InstanceID="${id}"`, 'JobState,ErrorCode,ErrorDescription,PercentComplete');
        const state = Number(/JobState=(\d+)/.exec(gi.stdout)?.[1]);
        if (state === 7 || state === 8 || state === 10) {
          return [
            state,
            Number(/ErrorCode=(\d+)/.exec(gi.stdout)![1]),
            /ErrorDescription="([^"]*)"/.exec(gi.stdout)?.[1] ?? '',
            Number(/PercentComplete=(\d+)/.exec(gi.stdout)![1]),
          ];
        }
      }
      throw new Error(`job ${id} did not end; log: ${daemon.log()}`);
    }

    it('creates dynamic, fixed and differencing VHDX files that qemu-img and vhdiinfo read as asked', async () => {
      const dyn = join(scratch, 'dyn.vhdx');
      expect(
        await job(
          `CreateVirtualHardDisk.VirtualDiskSettingData="${settings({ Path: dyn, Type: 3, Format: 3, MaxInternalSize: 64 * MiB, BlockSize: 2 * MiB })}"`,
        ),
      ).toEqual([7, 0, '', 100]);
      expect(qemuInfo(dyn)).toMatchObject({ format: 'vhdx', 'virtual-size': 64 * MiB, 'cluster-size': 2 * MiB });
      execFileSync(QEMU_IMG!, ['check', dyn]);

      const fixed = join(scratch, 'fixed.vhdx');
      expect(
        await job(
          `CreateVirtualHardDisk.VirtualDiskSettingData="${settings({ Path: fixed, Type: 2, Format: 3, MaxInternalSize: 8 * MiB, PhysicalSectorSize: 512 })}"`,
        ),
      ).toEqual([7, 0, '', 100]);
      expect(qemuInfo(fixed)).toMatchObject({ format: 'vhdx', 'virtual-size': 8 * MiB });
      const child = join(scratch, 'child.avhdx');
      expect(await job(`CreateVirtualHardDisk.VirtualDiskSettingData="${settings({ Path: child, Type: 4, Format: 3, ParentPath: dyn })}"`)).toEqual([
        7,
        0,
        '',
        100,
      ]);
      const vhdi = execFileSync(VHDIINFO!, [child], { encoding: 'utf8' });
      expect(vhdi).toMatch(/Disk type\s*:\s*Differential/);
      const parentId = /Parent identifier\s*:\s*([0-9a-f-]{36})/.exec(vhdi)![1];

      // Get-VHD: the settings and the state, as embedded instances.
      const sd = await wbemcli('cm', SVC, `GetVirtualHardDiskSettingData.Path="${child}"`);
      expect(sd.stdout).toMatch(/GetVirtualHardDiskSettingData: 0/);
      const text = sd.stdout.replace(/\\"/g, '"');
      expect(text).toMatch(/NAME="Type" TYPE="uint16"><VALUE>4</);
      expect(text).toMatch(/NAME="Format" TYPE="uint16"><VALUE>3</);
      expect(text).toMatch(new RegExp(`NAME="MaxInternalSize" TYPE="uint64"><VALUE>${64 * MiB}<`));
      expect(text).toMatch(/NAME="BlockSize" TYPE="uint32"><VALUE>8388608</); // a differencing disk's own default, as for a base of its size
      expect(text).toContain(`NAME="ParentPath" TYPE="string"><VALUE>${dyn}</VALUE>`);
      // The child links to the parent libvhdi names (the parent's DataWriteGuid).
      expect(text).toContain(`NAME="ParentIdentifier" TYPE="string"><VALUE>${parentId}</VALUE>`);
      const st = await wbemcli('cm', SVC, `GetVirtualHardDiskState.Path="${fixed}"`);
      const stText = st.stdout.replace(/\\"/g, '"');
      expect(stText).toMatch(new RegExp(`NAME="FileSize" TYPE="uint64"><VALUE>${readFileSync(fixed).length}<`));
      expect(stText).toMatch(/NAME="InUse" TYPE="boolean"><VALUE>FALSE</);
      expect(stText).toMatch(/NAME="FragmentationPercentage" TYPE="uint32"><VALUE>0</);
    }, 60_000);

    it('resizes and merges as jobs; the merged parent reads back what the child held', async () => {
      const base = join(scratch, 'base.vhdx');
      expect(
        (
          await job(`CreateVirtualHardDisk.VirtualDiskSettingData="${settings({ Path: base, Type: 3, Format: 3, MaxInternalSize: 4 * MiB, BlockSize: MiB })}"`)
        )[0],
      ).toBe(7);
      expect(await job(`ResizeVirtualHardDisk.Path="${base}",MaxInternalSize=${8 * MiB}`)).toEqual([7, 0, '', 100]);
      expect(qemuInfo(base)['virtual-size']).toBe(8 * MiB);
      const shrink = await job(`ResizeVirtualHardDisk.Path="${base}",MaxInternalSize=${4 * MiB}`);
      expect(shrink.slice(0, 2)).toEqual([10, 32773]);
      expect(shrink[2]).toContain('shrinking is not supported');

      const child = join(scratch, 'base-1.avhdx');
      expect((await job(`CreateVirtualHardDisk.VirtualDiskSettingData="${settings({ Path: child, Type: 4, Format: 3, ParentPath: base })}"`))[0]).toBe(7);
      const pattern = Buffer.alloc(3 * 512);
      for (let i = 0; i < pattern.length; i++) pattern[i] = (i * 7 + 1) & 0xff;
      const d = openDisk(child);
      d.write((5 * MiB) / 512 + 3, pattern);
      d.close();

      const wrong = await job(`MergeVirtualHardDisk.SourcePath="${child}",DestinationPath="${join(scratch, 'dyn.vhdx')}"`);
      expect(wrong.slice(0, 2)).toEqual([10, 32773]);
      expect(wrong[2]).toContain('is not the parent of');
      expect(await job(`MergeVirtualHardDisk.SourcePath="${child}",DestinationPath="${base}"`)).toEqual([7, 0, '', 100]);
      expect(existsSync(child)).toBe(false);
      execFileSync(QEMU_IMG!, ['check', base]);
      const raw = join(scratch, 'base.raw');
      execFileSync(QEMU_IMG!, ['convert', '-O', 'raw', base, raw]);
      const bytes = readFileSync(raw);
      const expected = Buffer.alloc(8 * MiB);
      pattern.copy(expected, 5 * MiB + 3 * 512);
      expect(bytes.equals(expected)).toBe(true);
    }, 60_000);

    it('converts and compacts as jobs; a job cancelled with RequestStateChange 4 stops, removes its new file and ends Terminated', async () => {
      const src = join(scratch, 'conv-src.vhdx');
      expect(
        (
          await job(`CreateVirtualHardDisk.VirtualDiskSettingData="${settings({ Path: src, Type: 3, Format: 3, MaxInternalSize: 8 * MiB, BlockSize: MiB })}"`)
        )[0],
      ).toBe(7);
      const d = openDisk(src);
      d.write(MiB / 512, Buffer.alloc(4096, 0x5c));
      d.close();
      const fixed = join(scratch, 'conv-fixed.vhdx');
      expect(await job(`ConvertVirtualHardDisk.SourcePath="${src}",VirtualDiskSettingData="${settings({ Path: fixed, Type: 2, Format: 3 })}"`)).toEqual([
        7,
        0,
        '',
        100,
      ]);
      execFileSync(QEMU_IMG!, ['compare', src, fixed]);
      expect(await job(`CompactVirtualHardDisk.Path="${src}",Mode=0`)).toEqual([7, 0, '', 100]);
      const quick = await job(`CompactVirtualHardDisk.Path="${src}",Mode=1`);
      expect(quick.slice(0, 2)).toEqual([10, 32770]);

      // 1 TiB with no data: the copy would take minutes, so the cancel always comes mid-copy.
      const huge = join(scratch, 'huge.vhdx');
      expect(
        (await job(`CreateVirtualHardDisk.VirtualDiskSettingData="${settings({ Path: huge, Type: 3, Format: 3, MaxInternalSize: 1024 * 1024 * MiB })}"`))[0],
      ).toBe(7);
      const before = readFileSync(huge);
      const out = join(scratch, 'huge-copy.vhdx');
      const r = await wbemcli('cm', SVC, `ConvertVirtualHardDisk.SourcePath="${huge}",VirtualDiskSettingData="${settings({ Path: out, Type: 3, Format: 3 })}"`);
      const id = /InstanceID="([0-9A-F-]{36})"/.exec(r.stdout)![1]!;
      const JOB = `${U}:Msvm_ConcreteJob.InstanceID="${id}"`;
      for (const deadline = Date.now() + 30_000; !existsSync(out); await new Promise((res) => setTimeout(res, 20))) {
        if (Date.now() > deadline) throw new Error(`the conversion did not start; log: ${daemon.log()}`);
      }
      expect((await wbemcli('gi', JOB, 'Cancellable')).stdout).toMatch(/Cancellable=TRUE/);
      expect((await wbemcli('cm', JOB, 'RequestStateChange.RequestedState=4')).stdout.trim()).toMatch(/RequestStateChange: 0$/);
      let gi = '';
      for (const deadline = Date.now() + 30_000; !/JobState=8/.test(gi); await new Promise((res) => setTimeout(res, 50))) {
        if (Date.now() > deadline) throw new Error(`the job did not end Terminated: ${gi}`);
        gi = (await wbemcli('gi', JOB, 'JobState,ErrorCode,ErrorDescription,Cancellable')).stdout;
      }
      expect(gi).toMatch(/ErrorCode=0/);
      expect(gi).toContain(`ErrorDescription="the conversion of ${huge} was cancelled: ${out} was removed, ${huge} is unchanged"`);
      expect(gi).toMatch(/Cancellable=FALSE/);
      expect(existsSync(out)).toBe(false);
      expect(readFileSync(huge).equals(before)).toBe(true);
      // An ended job cannot be cancelled.
      expect((await wbemcli('cm', JOB, 'RequestStateChange.RequestedState=4')).stdout.trim()).toMatch(/RequestStateChange: 4097$/);
    }, 60_000);

    it('refuses VHD, paths outside the storage roots and bad settings, each with its code and reason', async () => {
      const vhd = await job(
        `CreateVirtualHardDisk.VirtualDiskSettingData="${settings({ Path: join(scratch, 'old.vhd'), Type: 3, Format: 2, MaxInternalSize: 4 * MiB })}"`,
      );
      expect(vhd.slice(0, 2)).toEqual([10, 32770]);
      expect(vhd[2]).toContain('Format 2 (VHD) is not supported');
      const outside = await job(
        `CreateVirtualHardDisk.VirtualDiskSettingData="${settings({ Path: '/tmp/escape.vhdx', Type: 3, Format: 3, MaxInternalSize: 4 * MiB })}"`,
      );
      expect(outside.slice(0, 2)).toEqual([10, 32769]);
      expect(outside[2]).toContain('is not in a storage root this host allows');
      expect(existsSync('/tmp/escape.vhdx')).toBe(false);
      const noSize = await job(`CreateVirtualHardDisk.VirtualDiskSettingData="${settings({ Path: join(scratch, 'n.vhdx'), Type: 3, Format: 3 })}"`);
      expect(noSize.slice(0, 2)).toEqual([10, 32773]);
      const exists = await job(
        `CreateVirtualHardDisk.VirtualDiskSettingData="${settings({ Path: join(scratch, 'dyn.vhdx'), Type: 3, Format: 3, MaxInternalSize: 4 * MiB })}"`,
      );
      expect(exists.slice(0, 2)).toEqual([10, 32773]);
      expect(qemuInfo(join(scratch, 'dyn.vhdx'))['virtual-size']).toBe(64 * MiB);
      const read = await wbemcli('cm', SVC, 'GetVirtualHardDiskSettingData.Path="/etc/passwd"');
      expect(read.stdout).toMatch(/GetVirtualHardDiskSettingData: 4096/);
    }, 60_000);
  },
);
