/**
 * The four IC devices this host offers: interface GUIDs (Linux include/linux/hyperv.h), instance
 * GUIDs (OpenVMM's where it has one; tsvisor's own for heartbeat), and the message versions the
 * host lists in NEGOTIATE, newest last as OpenVMM lists them.
 */
import { HeartbeatInterface, KvpInterface, ShutdownInterface, TimeSyncInterface } from '../../../abi/vmbus-channel.ts';
import { guidFromWords } from '../../../vmbus/protocol/guid.ts';
import { IcMessageType, type IcVersion } from './ic-protocol.ts';

export interface IcServiceSpec {
  readonly name: 'heartbeat' | 'shutdown' | 'timesync' | 'kvp';
  readonly interfaceType: string;
  readonly interfaceInstance: string;
  readonly messageType: number;
  readonly messageVersions: readonly IcVersion[];
  /** Largest IC message (both headers and body) of this service either way. */
  readonly maxMessageBytes: number;
}

const v = (major: number, minor: number): IcVersion => ({ major, minor });

export const HEARTBEAT_SERVICE: IcServiceSpec = {
  name: 'heartbeat',
  interfaceType: guidFromWords(HeartbeatInterface),
  // OpenVMM gives heartbeat no fixed instance; this one is tsvisor's.
  interfaceInstance: 'fedf1c9f-0b7c-4b1e-9a9e-3f0d2a1b7c01',
  messageType: IcMessageType.Heartbeat,
  messageVersions: [v(1, 0), v(3, 0)],
  maxMessageBytes: 28 + 40,
};

export const SHUTDOWN_SERVICE: IcServiceSpec = {
  name: 'shutdown',
  interfaceType: guidFromWords(ShutdownInterface),
  interfaceInstance: 'b6650ff7-33bc-4840-8048-e0676786f393',
  messageType: IcMessageType.Shutdown,
  messageVersions: [v(1, 0), v(3, 0), v(3, 1), v(3, 2)],
  maxMessageBytes: 28 + 12 + 2048,
};

export const TIMESYNC_SERVICE: IcServiceSpec = {
  name: 'timesync',
  interfaceType: guidFromWords(TimeSyncInterface),
  interfaceInstance: '2dd1ce17-079e-403c-b352-a1921ee207ee',
  messageType: IcMessageType.TimeSync,
  messageVersions: [v(1, 0), v(3, 0), v(4, 0)],
  maxMessageBytes: 28 + 32,
};

export const KVP_SERVICE: IcServiceSpec = {
  name: 'kvp',
  interfaceType: guidFromWords(KvpInterface),
  interfaceInstance: '242ff919-07db-4180-9c2e-b86cb68c8c55',
  messageType: IcMessageType.KvpExchange,
  messageVersions: [v(3, 0), v(4, 0), v(5, 0)],
  maxMessageBytes: 28 + 2580,
};
