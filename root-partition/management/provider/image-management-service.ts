/**
 * Msvm_ImageManagementService over the host's disk tools (MicrosoftDocs HyperV_v2
 * Msvm_ImageManagementService): New-VHD (CreateVirtualHardDisk with an embedded
 * Msvm_VirtualHardDiskSettingData), Get-VHD (GetVirtualHardDiskSettingData,
 * GetVirtualHardDiskState), Convert-VHD (ConvertVirtualHardDisk), Merge-VHD
 * (MergeVirtualHardDisk), Resize-VHD (ResizeVirtualHardDisk) and Optimize-VHD
 * (CompactVirtualHardDisk). The changes run as jobs (4096) with PercentComplete; a refusal is a
 * job in Exception whose ErrorCode is the Hyper-V code and ErrorDescription the reason, as the
 * management service answers (service-methods.ts). The two reads answer 0 with the instance.
 * Every change's job is Cancellable: RequestStateChange 4 (Terminate) or 5 (Kill) on it stops the
 * work at its next safe point, which undoes what it made (a partial copy removed, a merge's child
 * kept and linked), and the job ends Terminated with what was left.
 */
import { CimInstance } from '../cim/instance.ts';
import type { CimMethodResult } from '../cim/provider.ts';
import type { CimSchema } from '../cim/schema.ts';
import type { CimValue } from '../cim/types.ts';
import type { JobTable } from './job-table.ts';
import type { ConvertImageRequest, ImageJobResult, ImagePort, ImageRecord, NewImageRequest } from './vmms-port.ts';

export const IMAGE_SERVICE_CLASS = 'Msvm_ImageManagementService';
const Code = { Completed: 0, JobStarted: 4096, Failed: 32768, NotSupported: 32770, InvalidParameter: 32773 } as const;
/** Msvm_VirtualHardDiskSettingData.Format and Type values. */
const Format = { Raw: 0, Vhd: 2, Vhdx: 3, VhdSet: 4 } as const;
const TYPE_OF = { fixed: 2, dynamic: 3, differencing: 4, raw: 2 } as const;
const KIND_OF: Record<number, NewImageRequest['type']> = { 2: 'fixed', 3: 'dynamic', 4: 'differencing' };

type Params = Readonly<Record<string, CimValue>>;

export interface ImageServiceContext {
  readonly schema: CimSchema;
  readonly images: ImagePort;
  readonly jobs: JobTable;
  readonly hostName: string;
}

class Refused extends Error {
  constructor(
    readonly returnValue: number,
    message: string,
  ) {
    super(message);
  }
}

/** A whole, non-negative number from a CIM value (numbers arrive as numbers, bigints or text). */
function count(v: CimValue | undefined, name: string): number | undefined {
  if (v === null || v === undefined || v === '') return undefined;
  const n = typeof v === 'bigint' ? Number(v) : typeof v === 'number' ? v : typeof v === 'string' && /^\d+$/.test(v.trim()) ? Number(v.trim()) : NaN;
  if (!Number.isSafeInteger(n) || n < 0) throw new Refused(Code.InvalidParameter, `${name} must be a whole number of bytes, not ${String(v)}`);
  return n;
}

function text(v: CimValue | undefined, name: string): string {
  if (typeof v !== 'string' || v.trim() === '') throw new Refused(Code.InvalidParameter, `${name} must name a file (an absolute host path)`);
  return v;
}

export class ImageManagementService {
  constructor(private readonly ctx: ImageServiceContext) {}

  serviceInstance(): CimInstance {
    return this.ctx.schema.createInstance(IMAGE_SERVICE_CLASS, {
      CreationClassName: IMAGE_SERVICE_CLASS,
      Name: 'vhdsvc',
      SystemCreationClassName: 'Msvm_ComputerSystem',
      SystemName: this.ctx.hostName,
      ElementName: 'Image Management Service',
      Caption: 'Hyper-V Image Management Service',
      EnabledState: 2,
      HealthState: 5,
      OperationalStatus: [2],
    });
  }

  async invoke(method: string, p: Params): Promise<CimMethodResult> {
    try {
      switch (method.toLowerCase()) {
        case 'createvirtualharddisk':
          return this.create(p);
        case 'getvirtualharddisksettingdata':
          return this.read(p, (i) => ({ SettingData: this.settingData(i) }));
        case 'getvirtualharddiskstate':
          return this.read(p, (i) => ({ State: this.state(i) }));
        case 'mergevirtualharddisk': {
          const source = text(p.SourcePath, 'SourcePath');
          const destination = text(p.DestinationPath, 'DestinationPath');
          return this.job('Merging Virtual Hard Disk', (progress, signal) => this.ctx.images.merge(source, destination, progress, signal));
        }
        case 'convertvirtualharddisk':
          return this.convert(p);
        case 'compactvirtualharddisk': {
          const path = text(p.Path, 'Path');
          // Mode 0 Full (Optimize-VHD -Mode Full): the only one here — every all-zero block goes.
          const mode = count(p.Mode, 'Mode') ?? 0;
          if (mode !== 0)
            throw new Refused(Code.NotSupported, `Mode ${mode} is not supported: this host compacts in mode 0 (Full), copying only the blocks that hold data`);
          return this.job('Compacting Virtual Hard Disk', (progress, signal) => this.ctx.images.compact(path, progress, signal));
        }
        case 'resizevirtualharddisk': {
          const path = text(p.Path, 'Path');
          const size = count(p.MaxInternalSize, 'MaxInternalSize');
          if (size === undefined || size === 0) throw new Refused(Code.InvalidParameter, 'MaxInternalSize (the new virtual size in bytes) is required');
          return this.job('Resizing Virtual Hard Disk', (progress, signal) => this.ctx.images.resize(path, size, progress, signal));
        }
      }
      return this.failed(method, Code.NotSupported, `${method} is not offered by this host`);
    } catch (e) {
      if (e instanceof Refused) return this.failed(method, e.returnValue, e.message);
      throw e;
    }
  }

  /** CreateVirtualHardDisk: the embedded settings checked here, the file made in the job. */
  private create(p: Params): CimMethodResult {
    const sd = p.VirtualDiskSettingData;
    if (!(sd instanceof CimInstance) || sd.className.toLowerCase() !== 'msvm_virtualharddisksettingdata') {
      throw new Refused(Code.InvalidParameter, 'VirtualDiskSettingData must hold an embedded Msvm_VirtualHardDiskSettingData');
    }
    const path = text(sd.get('Path'), 'Path');
    const format = count(sd.get('Format'), 'Format') ?? Format.Vhdx;
    if (format === Format.Vhd || format === Format.VhdSet) {
      throw new Refused(
        Code.NotSupported,
        `Format ${format} (${format === Format.Vhd ? 'VHD' : 'VHD Set'}) is not supported by this host: create a VHDX (Format 3), or convert an existing file with \`qemu-img convert -O vhdx\``,
      );
    }
    if (format !== Format.Vhdx) throw new Refused(Code.InvalidParameter, `Format ${format} is not a virtual hard disk format (3 is VHDX)`);
    if (!/\.a?vhdx$/i.test(path))
      throw new Refused(Code.InvalidParameter, `Path ${path}: a VHDX file's name must end in .vhdx (or .avhdx for a differencing disk)`);
    const type = KIND_OF[count(sd.get('Type'), 'Type') ?? -1];
    if (!type) throw new Refused(Code.InvalidParameter, `Type ${String(sd.get('Type'))} is not 2 (fixed), 3 (dynamic) or 4 (differencing)`);
    const size = count(sd.get('MaxInternalSize'), 'MaxInternalSize') || undefined;
    const parentPath = typeof sd.get('ParentPath') === 'string' && sd.get('ParentPath') !== '' ? String(sd.get('ParentPath')) : undefined;
    if (type === 'differencing' && !parentPath) throw new Refused(Code.InvalidParameter, 'a differencing disk (Type 4) needs ParentPath');
    if (type !== 'differencing' && parentPath)
      throw new Refused(Code.InvalidParameter, `ParentPath is only for a differencing disk (Type 4), not Type ${TYPE_OF[type]}`);
    if (type !== 'differencing' && !size) throw new Refused(Code.InvalidParameter, 'MaxInternalSize (the virtual size in bytes) is required');
    const request: NewImageRequest = {
      path,
      type,
      ...(size !== undefined ? { sizeBytes: size } : {}),
      ...(parentPath ? { parentPath } : {}),
      ...optional('blockSizeBytes', count(sd.get('BlockSize'), 'BlockSize')),
      ...optional('logicalSectorSize', count(sd.get('LogicalSectorSize'), 'LogicalSectorSize')),
      ...optional('physicalSectorSize', count(sd.get('PhysicalSectorSize'), 'PhysicalSectorSize')),
    };
    return this.job('Creating Virtual Hard Disk', (progress, signal) => this.ctx.images.create(request, progress, signal));
  }

  /** ConvertVirtualHardDisk(SourcePath, VirtualDiskSettingData): a new VHDX of the given type from any disk this host opens. */
  private convert(p: Params): CimMethodResult {
    const source = text(p.SourcePath, 'SourcePath');
    const sd = p.VirtualDiskSettingData;
    if (!(sd instanceof CimInstance) || sd.className.toLowerCase() !== 'msvm_virtualharddisksettingdata') {
      throw new Refused(Code.InvalidParameter, 'VirtualDiskSettingData must hold an embedded Msvm_VirtualHardDiskSettingData');
    }
    const path = text(sd.get('Path'), 'Path');
    const format = count(sd.get('Format'), 'Format') ?? Format.Vhdx;
    if (format !== Format.Vhdx) throw new Refused(Code.NotSupported, `Format ${format}: this host converts into VHDX (Format 3) only`);
    if (!/\.vhdx$/i.test(path)) throw new Refused(Code.InvalidParameter, `Path ${path}: a VHDX file's name must end in .vhdx`);
    const type = count(sd.get('Type'), 'Type') ?? 3;
    if (type !== 2 && type !== 3)
      throw new Refused(Code.InvalidParameter, `Type ${type} is not 2 (fixed) or 3 (dynamic): a conversion makes a self-contained disk`);
    const request: ConvertImageRequest = {
      path,
      type: type === 2 ? 'fixed' : 'dynamic',
      ...optional('blockSizeBytes', count(sd.get('BlockSize'), 'BlockSize')),
    };
    return this.job('Converting Virtual Hard Disk', (progress, signal) => this.ctx.images.convert(source, request, progress, signal));
  }

  private read(p: Params, out: (image: ImageRecord) => Record<string, CimValue>): CimMethodResult {
    const r = this.ctx.images.describe(text(p.Path, 'Path'));
    if (!('image' in r)) throw new Refused(r.returnValue, r.error ?? 'failed');
    return { returnValue: Code.Completed, out: out(r.image) };
  }

  settingData(i: ImageRecord): CimInstance {
    return this.ctx.schema.createInstance('Msvm_VirtualHardDiskSettingData', {
      InstanceID: `Microsoft:${i.path}`,
      ElementName: i.path.slice(i.path.lastIndexOf('/') + 1),
      Path: i.path,
      Type: TYPE_OF[i.type],
      Format: i.format === 'vhdx' ? Format.Vhdx : Format.Raw,
      ParentPath: i.parentPath,
      ParentIdentifier: i.parentIdentifier,
      MaxInternalSize: BigInt(i.sizeBytes),
      BlockSize: i.blockSizeBytes ?? 0,
      LogicalSectorSize: i.logicalSectorSize,
      PhysicalSectorSize: i.physicalSectorSize,
      VirtualDiskId: i.diskIdentifier,
    });
  }

  state(i: ImageRecord): CimInstance {
    return this.ctx.schema.createInstance('Msvm_VirtualHardDiskState', {
      FileSize: BigInt(i.fileSizeBytes),
      InUse: i.inUse,
      MinInternalSize: null,
      PhysicalSectorSize: i.physicalSectorSize,
      // Every VHDX payload block starts on a 1 MiB boundary ([MS-VHDX] 2.3), so the data is aligned.
      Alignment: 1,
      FragmentationPercentage: i.fragmentationPercent,
    });
  }

  private job(what: string, work: (progress: (percent: number) => void, signal: AbortSignal) => Promise<ImageJobResult>): CimMethodResult {
    const stop = new AbortController();
    const job = this.ctx.jobs.start(what, null, () => stop.abort());
    // The work starts after the answer is sent: a client reads the job before its first change.
    setImmediate(() => {
      void work((percent) => this.ctx.jobs.progress(job, percent), stop.signal).then(
        (r) => (r.cancelled ? this.ctx.jobs.terminated(job, r.error ?? `${what} was cancelled`) : this.ctx.jobs.finish(job, r.returnValue, r.error)),
        (e: Error) => this.ctx.jobs.finish(job, Code.Failed, e.message),
      );
    });
    return { returnValue: Code.JobStarted, out: { Job: job } };
  }

  private failed(what: string, code: number, description: string): CimMethodResult {
    const job = this.ctx.jobs.start(what, null);
    this.ctx.jobs.finish(job, code, description);
    return { returnValue: Code.JobStarted, out: { Job: job } };
  }
}

function optional<K extends string>(key: K, v: number | undefined): Partial<Record<K, number>> {
  return v ? ({ [key]: v } as Record<K, number>) : {};
}
