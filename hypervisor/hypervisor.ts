/**
 * The hypervisor's host part: the partition table and partition ids (TLFS: ids are allocated
 * from 1 upward; 0 is HV_PARTITION_ID_INVALID). The root partition holds id 1; children follow.
 * It knows nothing of VMBus, devices or management.
 */
import { HvStatus } from '../abi/hv-status.ts';
import { HvError } from './hv-error.ts';
import { Partition, type PartitionConfig } from './partition.ts';

export const ROOT_PARTITION_ID = 1;

export class Hypervisor {
  private nextId = ROOT_PARTITION_ID + 1;
  private readonly partitions = new Map<number, Partition>();

  /** HvCallCreatePartition for a child; `id` may be given when restoring a known partition. */
  createPartition(config: Omit<PartitionConfig, 'id'> & { id?: number }): Partition {
    const id = config.id ?? this.nextId;
    if (!Number.isInteger(id) || id <= ROOT_PARTITION_ID || id > 0xffffffff)
      throw new HvError('HV_ERR_PARTITION_ID', `invalid partition id ${id}`, HvStatus.InvalidPartitionId);
    if (this.partitions.has(id)) throw new HvError('HV_ERR_PARTITION_ID', `partition id ${id} is in use`, HvStatus.InvalidPartitionId);
    this.nextId = Math.max(this.nextId, id + 1);
    const p = new Partition({ ...config, id });
    this.partitions.set(id, p);
    return p;
  }

  get(id: number): Partition | undefined {
    return this.partitions.get(id);
  }

  /** HvCallGetNextChildPartition: ids in creation order; 0 after the last. */
  nextChild(previous: number): number {
    const ids = [...this.partitions.keys()].sort((a, b) => a - b);
    return ids.find((id) => id > previous) ?? 0;
  }

  async deletePartition(id: number): Promise<HvStatus> {
    const p = this.partitions.get(id);
    if (!p) return HvStatus.InvalidPartitionId;
    await p.delete();
    this.partitions.delete(id);
    return HvStatus.Success;
  }

  async shutdown(): Promise<void> {
    await Promise.all([...this.partitions.keys()].map((id) => this.deletePartition(id)));
  }
}
