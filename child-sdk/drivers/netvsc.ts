// netvsc: the guest half of the synthetic NIC (Linux drivers/net/hyperv/netvsc.c and
// rndis_filter.c; OpenVMM netvsp). Opens the HV_NIC_GUID channel, runs
// the NVSP initialization (version, NDIS config and version, the receive and send buffers as
// GPADLs of their own), then RNDIS INITIALIZE, the MAC and link queries and the packet filter.
// Frames go out through send-buffer sections (one PACKET_MSG each, freed by the host's
// completion), a jumbo frame that does not fit a section through GPA-direct pages of its own (up
// to 8 in flight), and come in as transfer-page packets whose ranges point into the receive buffer;
// each packet is completed once all its frames were taken. Nothing on the frame path allocates.
// What the host writes is checked too: a range outside the receive buffer or a PACKET_MSG whose
// frame lies outside its range is dropped and counted, never followed.
// Multi-queue (enableQueues, Linux rndis_set_subchannel and netvsc_sc_open): NVSP SUBCHANNEL,
// each granted sub-channel opened with rings of its own, then RSS set (Toeplitz over IPv4 with
// TCP and UDP ports, a 16-entry table spreading flows over the channels). Every channel shares
// the primary's receive and send buffers; a receive packet is completed on the channel it came
// on, and a frame is sent on the channel the last received frame came on (a reply follows its
// request's flow).
import { puts, putDec } from "../kernel/console";
import { pageAllocRun } from "../kernel/pages";
import { eventFlagTake, referenceTime } from "../hv/synic";
import { VP_INDEX } from "../platform/hv";
import { VMBUS_MESSAGE_SINT } from "../vmbus/channel-protocol";
import { packetLen8, packetOffset8, packetTransIdHi, packetTransIdLo, packetType } from "../vmbus/ring";
import { VmbusPacketType, VMBUS_DATA_PACKET_FLAG_COMPLETION_REQUESTED } from "../vmbus/ring-layout";
import { VscChannel, vscCreateGpadl, vscOpen } from "../vmbus/vsc";
import { clientFindOffer } from "../vmbus/client";
import { vmbusState, vmbusWaitStep } from "../vmbus/vmbus-driver";
import { NET_MAX_FRAME, NET_MAX_JUMBO_FRAME, NetDevice } from "../net/net-device";
import {
  INIT_WAIT_100NS, JUMBO_BUFFERS, JUMBO_PAGES, MAX_SECTIONS, NETVSC_MAX_QUEUES, NetvscError, PACKET_BYTES, RECV_RING_BYTES, RX_PAGES, SEND_RING_BYTES, TAG_CONTROL,
  TAG_DATA, TAG_INIT, TAG_JUMBO, TX_PAGES, WAIT_STEP_100NS,
} from "./netvsc-config";
import { NetvscRxQueue } from "./netvsc-rx-queue";
import {
  NETVSC_INTERFACE_TYPE, NETVSC_PACKET_FILTER, NETVSC_RECEIVE_BUFFER_ID, NVSP_MESSAGE_SIZE, NVSP_MSG_INIT, NVSP_MSG_INIT_COMPLETE,
  NVSP_MSG_SEND_NDIS_CONFIG, NVSP_MSG_SEND_NDIS_VERSION, NVSP_MSG_SEND_RECV_BUF, NVSP_MSG_SEND_RECV_BUF_COMPLETE, NVSP_MSG_SEND_RNDIS_PKT,
  NVSP_MSG_SEND_RNDIS_PKT_COMPLETE, NVSP_MSG_SEND_SEND_BUF, NVSP_MSG_SEND_SEND_BUF_COMPLETE, NVSP_STAT_SUCCESS, NVSP_VERSIONS, NVSP_VERSION_2,
  NVSP_NO_SEND_SECTION, OID_802_3_PERMANENT_ADDRESS, OID_GEN_CURRENT_PACKET_FILTER, OID_GEN_MAXIMUM_FRAME_SIZE, OID_GEN_MEDIA_CONNECT_STATUS, RMC_CONTROL, RMC_DATA, RNDIS_MSG_COMPLETION_BIT,
  RNDIS_MSG_INDICATE, RNDIS_MSG_PACKET, RNDIS_PACKET_HEADER, RNDIS_STATUS_MEDIA_CONNECT, RNDIS_STATUS_MEDIA_DISCONNECT, RNDIS_STATUS_SUCCESS,
  nvspMessage, rndisInitialize, rndisPacketHeader, rndisQuery, rndisSetU32,
  NDIS_CSUM_IPV4, NDIS_CSUM_UDP, NDIS_OBJECT_TYPE_OFFLOAD, NDIS_OFFLOAD_IPV4_TX_UDP, OID_TCP_OFFLOAD_HARDWARE_CAPABILITIES, RNDIS_PPI_U32_BYTES,
  rndisPacketHeaderWithChecksum,
  NVSP_MSG_SEND_INDIRECTION_TABLE, NVSP_MSG_SUBCHANNEL, NVSP_SUBCHANNEL_ALLOCATE, NVSP_VERSION_5, OID_GEN_RECEIVE_SCALE_CAPABILITIES, rndisSetRssParameters,
} from "./netvsc-protocol";

export { NETVSC_MAX_QUEUES, NetvscError } from "./netvsc-config";

export class NetvscNic extends NetDevice {
  ch: VscChannel | null = null;
  error: NetvscError = NetvscError.None;
  nvspVersion: u32 = 0;
  linkUp: bool = false;
  /** Largest frame: asked of the host as 9014 (NDIS config), then what it agreed (OID_GEN_MAXIMUM_FRAME_SIZE + 14). */
  mtuBytes: u32 = NET_MAX_JUMBO_FRAME;
  // buffers
  private rx: usize = 0;
  private tx: usize = 0;
  private pkt: usize = 0;
  private out: usize = 0;
  private reply: usize = 0;
  private control: usize = 0;
  private rxq: NetvscRxQueue = new NetvscRxQueue();
  private jumbo: usize = 0;
  /** Bit i: jumbo buffer i is in flight (its completion carries trans_id_lo i). */
  private jumboBusy: u32 = 0;
  private mac: usize = 0;
  private subAllocSize: u32 = 0;
  private subAllocCount: u32 = 0;
  private sectionSize: u32 = 0;
  private sections: u32 = 0;
  private sectionBusy: u32 = 0;
  private replyType: u32 = 0;
  private controlId: u32 = 0;
  private controlDone: bool = false;
  // counters
  sent: u32 = 0;
  received: u32 = 0;
  rxPackets: u32 = 0;
  sendBusy: u32 = 0;
  rxDropped: u32 = 0;
  hostErrors: u32 = 0;
  linkChanges: u32 = 0;
  /** Channels in use: 1, or 1 + the sub-channels opened by enableQueues. */
  queues: u32 = 1;
  /** Frames received and sent on sub-channels (a subset of received / sent). */
  receivedOnSubChannels: u32 = 0;
  sentOnSubChannels: u32 = 0;
  /** The host computes UDP checksums over IPv4 (its NDIS_OFFLOAD says so), and datagrams sent with a checksum PPI asking it to. */
  udpChecksumOffload: bool = false;
  checksumsOffloaded: u32 = 0;
  /** SEND_INDIRECTION_TABLE messages the host sent (after SUBCHANNEL). */
  sendTables: u32 = 0;
  /** The channels by index (0 the primary); sub-channels appended by enableQueues. */
  private chans: VscChannel[] = [];
  /** The channel the next frame goes out on: the one the last frame came in on. */
  private txQueue: u32 = 0;

  /** Opens the first synthetic NIC offered and initializes it. False on failure (see error). */
  attach(): bool {
    // The offer first: a VM without a synthetic NIC spends none of its pages on the buffers.
    const ch = vscOpen(NETVSC_INTERFACE_TYPE, SEND_RING_BYTES, RECV_RING_BYTES);
    if (ch == null) return this.fail(NetvscError.NoOffer);
    this.ch = ch;
    this.chans.push(ch);
    this.rx = pageAllocRun(RX_PAGES);
    this.tx = pageAllocRun(TX_PAGES);
    this.pkt = pageAllocRun(PACKET_BYTES >> 12);
    this.out = pageAllocRun(1); // NVSP message @0, the MAC @256, RNDIS reply copy @1024, PFN list @2048
    const queued = this.rxq.allocate();
    this.jumbo = pageAllocRun(JUMBO_PAGES * JUMBO_BUFFERS);
    if (this.rx == 0 || this.tx == 0 || this.pkt == 0 || this.out == 0 || !queued || this.jumbo == 0) return this.fail(NetvscError.OutOfPages);
    this.mac = this.out + 256;
    this.reply = this.out + 512;
    this.control = this.out + 1024;
    if (!this.negotiate()) return false;
    if (!this.buffers()) return false;
    return this.rndisInit();
  }

  private fail(e: NetvscError): bool {
    this.error = e;
    return false;
  }

  /** NVSP INIT, one version at a time newest first; the host answers status NONE to one it does not take. */
  private negotiate(): bool {
    for (let i = 0; i < NVSP_VERSIONS.length; i++) {
      const v = NVSP_VERSIONS[i];
      nvspMessage(this.out, NVSP_MSG_INIT, v, v);
      if (!this.request(NVSP_MSG_INIT_COMPLETE)) return this.fail(NetvscError.Timeout);
      if (load<u32>(this.reply, 12) == NVSP_STAT_SUCCESS) {
        this.nvspVersion = v;
        break;
      }
    }
    if (this.nvspVersion == 0) return this.fail(NetvscError.NoVersion);
    if (this.nvspVersion >= NVSP_VERSION_2) {
      nvspMessage(this.out, NVSP_MSG_SEND_NDIS_CONFIG, this.mtuBytes);
      this.post(false);
    }
    nvspMessage(this.out, NVSP_MSG_SEND_NDIS_VERSION, 6, 30);
    this.post(false);
    return true;
  }

  /** The receive buffer, then the send buffer, each a GPADL of its own; the host chooses their geometry. */
  private buffers(): bool {
    const ch = this.ch!;
    const rxGpadl = vscCreateGpadl(ch, this.rx, RX_PAGES, this.out + 2048);
    if (rxGpadl == 0) return this.fail(NetvscError.BufferRefused);
    nvspMessage(this.out, NVSP_MSG_SEND_RECV_BUF, rxGpadl, NETVSC_RECEIVE_BUFFER_ID);
    if (!this.request(NVSP_MSG_SEND_RECV_BUF_COMPLETE)) return this.fail(NetvscError.Timeout);
    const r = this.reply;
    if (load<u32>(r, 4) != NVSP_STAT_SUCCESS || load<u32>(r, 8) < 1) return this.fail(NetvscError.BufferRefused);
    this.subAllocSize = load<u32>(r, 16);
    this.subAllocCount = load<u32>(r, 20);
    if (this.subAllocSize == 0 || <u64>this.subAllocSize * <u64>this.subAllocCount > <u64>(RX_PAGES << 12)) return this.fail(NetvscError.BufferRefused);
    const txGpadl = vscCreateGpadl(ch, this.tx, TX_PAGES, this.out + 2048);
    if (txGpadl == 0) return this.fail(NetvscError.BufferRefused);
    nvspMessage(this.out, NVSP_MSG_SEND_SEND_BUF, txGpadl, 0);
    if (!this.request(NVSP_MSG_SEND_SEND_BUF_COMPLETE)) return this.fail(NetvscError.Timeout);
    if (load<u32>(r, 4) != NVSP_STAT_SUCCESS) return this.fail(NetvscError.BufferRefused);
    this.sectionSize = load<u32>(r, 8);
    if (this.sectionSize < RNDIS_PACKET_HEADER + NET_MAX_FRAME || this.sectionSize > (TX_PAGES << 12)) return this.fail(NetvscError.BufferRefused);
    this.sections = (TX_PAGES << 12) / this.sectionSize;
    if (this.sections > MAX_SECTIONS) this.sections = MAX_SECTIONS;
    return true;
  }

  /** RNDIS INITIALIZE, the permanent address, the link state, then the packet filter (Linux rndis_filter_device_add order). */
  private rndisInit(): bool {
    const c = this.control;
    if (!this.rndisRequest(rndisInitialize(c, 1), 1) || load<u32>(c, 12) != RNDIS_STATUS_SUCCESS) return this.fail(NetvscError.RndisFailed);
    if (!this.rndisRequest(rndisQuery(c, 2, OID_802_3_PERMANENT_ADDRESS), 2) || load<u32>(c, 12) != RNDIS_STATUS_SUCCESS) return this.fail(NetvscError.RndisFailed);
    const length = load<u32>(c, 16);
    const offset = load<u32>(c, 20);
    if (length < 6 || offset < 16 || 8 + offset + 6 > 256) return this.fail(NetvscError.RndisFailed);
    memory.copy(this.mac, c + 8 + offset, 6);
    if (!this.rndisRequest(rndisQuery(c, 3, OID_GEN_MEDIA_CONNECT_STATUS), 3) || load<u32>(c, 12) != RNDIS_STATUS_SUCCESS) return this.fail(NetvscError.RndisFailed);
    const at = load<u32>(c, 20);
    this.linkUp = load<u32>(c, 16) >= 4 && at >= 16 && at <= 244 && load<u32>(c + 8 + at) == 0; // NdisMediaStateConnected
    // The MTU the host agreed to the NDIS config's 9014: 9000 on a jumbo port, else 1500 (or before NVSP 2).
    this.mtuBytes = NET_MAX_FRAME;
    if (this.rndisRequest(rndisQuery(c, 5, OID_GEN_MAXIMUM_FRAME_SIZE), 5) && load<u32>(c, 12) == RNDIS_STATUS_SUCCESS) {
      const o = load<u32>(c, 20);
      if (load<u32>(c, 16) >= 4 && o >= 16 && o <= 244) {
        const mtu = load<u32>(c + 8 + o);
        if (mtu >= 1500 && mtu <= NET_MAX_JUMBO_FRAME - 14) this.mtuBytes = mtu + 14;
      }
    }
    // UDP checksums over IPv4 computed by the host when it says it can (NDIS_OFFLOAD, IPv4 transmit flags at @8).
    if (this.rndisRequest(rndisQuery(c, 8, OID_TCP_OFFLOAD_HARDWARE_CAPABILITIES), 8) && load<u32>(c, 12) == RNDIS_STATUS_SUCCESS) {
      const o = load<u32>(c, 20);
      if (load<u32>(c, 16) >= 12 && o >= 16 && o <= 256 - 8 - 12 && load<u8>(c + 8 + o) == NDIS_OBJECT_TYPE_OFFLOAD)
        this.udpChecksumOffload = (load<u32>(c + 8 + o, 8) & NDIS_OFFLOAD_IPV4_TX_UDP) != 0;
    }
    if (!this.rndisRequest(rndisSetU32(c, 4, OID_GEN_CURRENT_PACKET_FILTER, NETVSC_PACKET_FILTER), 4) || load<u32>(c, 12) != RNDIS_STATUS_SUCCESS) return this.fail(NetvscError.RndisFailed);
    return true;
  }

  /** An unfragmented IPv4 UDP datagram (20-byte IP header) whose checksum is left 0: the host can fill it in. */
  private wantsUdpChecksum(gpa: usize, length: u32): bool {
    return (
      this.udpChecksumOffload && length >= 42 && RNDIS_PACKET_HEADER + RNDIS_PPI_U32_BYTES + length <= this.sectionSize &&
      load<u8>(gpa + 12) == 0x08 && load<u8>(gpa + 13) == 0x00 && load<u8>(gpa + 14) == 0x45 && load<u8>(gpa + 23) == 17 &&
      (load<u8>(gpa + 20) & 0x3f) == 0 && load<u8>(gpa + 21) == 0 && load<u16>(gpa + 40) == 0
    );
  }

  /**
   * Asks for `want` channels in all (bounded by NETVSC_MAX_QUEUES and the host's
   * OID_GEN_RECEIVE_SCALE_CAPABILITIES), opens the sub-channels granted and sets RSS over them.
   * Needs NVSP 5. Returns the channels in use; 1 when the host offers no more (nothing changed).
   */
  enableQueues(want: u32): u32 {
    if (this.ch == null || this.queues > 1 || this.nvspVersion < NVSP_VERSION_5) return this.queues;
    const c = this.control;
    if (!this.rndisRequest(rndisQuery(c, 6, OID_GEN_RECEIVE_SCALE_CAPABILITIES), 6) || load<u32>(c, 12) != RNDIS_STATUS_SUCCESS) return 1;
    const at = load<u32>(c, 20);
    if (load<u32>(c, 16) < 16 || at < 16 || at > 228) return 1;
    let n = load<u32>(c + 8 + at, 12); // NumberOfReceiveQueues
    if (n > want) n = want;
    if (n > NETVSC_MAX_QUEUES) n = NETVSC_MAX_QUEUES;
    if (n < 2) return 1;
    nvspMessage(this.out, NVSP_MSG_SUBCHANNEL, NVSP_SUBCHANNEL_ALLOCATE, n - 1);
    if (!this.request(NVSP_MSG_SUBCHANNEL) || load<u32>(this.reply, 4) != NVSP_STAT_SUCCESS) return 1;
    const granted = load<u32>(this.reply, 8);
    if (granted == 0 || granted > n - 1) { this.hostErrors++; return 1; }
    // The offers follow the response (Linux waits for every sub-channel to open before RSS).
    const st = vmbusState();
    for (let i: u32 = 1; i <= granted; i++) {
      const start = referenceTime();
      while (clientFindOffer(st, NETVSC_INTERFACE_TYPE, i) == 0 && referenceTime() - start < INIT_WAIT_100NS) vmbusWaitStep();
      const sub = vscOpen(NETVSC_INTERFACE_TYPE, SEND_RING_BYTES, RECV_RING_BYTES, 0, i);
      if (sub == null) break;
      this.chans.push(sub);
    }
    this.queues = <u32>this.chans.length;
    if (this.queues > 1 && (!this.rndisRequest(rndisSetRssParameters(c, 7, this.queues), 7) || load<u32>(c, 12) != RNDIS_STATUS_SUCCESS)) this.hostErrors++;
    return this.queues;
  }

  // ---- requests and waiting --------------------------------------------------------------

  /** Sends the NVSP message at `out` in-band. */
  private post(completion: bool): bool {
    return this.ch!.sendInband(0, TAG_INIT, this.out, NVSP_MESSAGE_SIZE, completion) >= 0;
  }

  /** Sends the NVSP message at `out` and waits for the completion of type `answer`, copied to `reply`. */
  private request(answer: u32): bool {
    this.replyType = 0;
    if (!this.post(true)) return false;
    const start = referenceTime();
    while (this.replyType != answer) {
      if (this.pump() == 0 && referenceTime() - start > INIT_WAIT_100NS) return false;
    }
    return true;
  }

  /** Sends the RNDIS control message at `control` through a send section and waits for its completion message (copied back to `control`). */
  private rndisRequest(length: u32, requestId: u32): bool {
    const section = this.takeSection();
    if (section < 0) return false;
    memory.copy(this.tx + <usize>section * this.sectionSize, this.control, length);
    this.controlId = requestId;
    this.controlDone = false;
    nvspMessage(this.out, NVSP_MSG_SEND_RNDIS_PKT, RMC_CONTROL, <u32>section, length);
    if (this.ch!.sendInband(<u32>section, TAG_CONTROL, this.out, NVSP_MESSAGE_SIZE, true) < 0) return false;
    const start = referenceTime();
    while (!this.controlDone) {
      if (this.pump() == 0 && referenceTime() - start > INIT_WAIT_100NS) return false;
    }
    return true;
  }

  /** A free send section (marked busy), reaping completions while none is; -1 after the wait budget. */
  private takeSection(): i32 {
    const all: u32 = this.sections >= 32 ? 0xffffffff : (<u32>1 << this.sections) - 1;
    let start: u64 = 0;
    while ((this.sectionBusy & all) == all) {
      if (this.pump() > 0) continue;
      if (start == 0) start = referenceTime();
      else if (referenceTime() - start > WAIT_STEP_100NS * 2000) return -1;
    }
    const free = ~this.sectionBusy & all;
    const s = ctz(free);
    this.sectionBusy |= <u32>1 << s;
    return <i32>s;
  }

  /**
   * Reads every packet waiting on the ring: completions free sections or answer requests,
   * control transfer-page packets are handled and completed at once, data ones are queued frame
   * by frame for receive(). Returns the packets read.
   */
  private pump(): u32 {
    let n: u32 = 0;
    for (let q: u32 = 0; q < this.queues; q++) {
      const ch = this.chans[q];
      ch.recvBegin();
      for (;;) {
        const got = ch.recvNext(this.pkt, PACKET_BYTES);
        if (got <= 0) {
          if (got < 0) this.hostErrors++;
          break;
        }
        n++;
        this.dispatch(<u32>got, q);
      }
      ch.recvEnd();
    }
    return n;
  }

  private dispatch(length: u32, q: u32): void {
    const p = this.pkt;
    const type = packetType(p);
    const offset = packetOffset8(p) << 3;
    const total = packetLen8(p) << 3;
    if (offset > total || total > length || total - offset < 8) { this.hostErrors++; return; }
    const msg = p + offset;
    if (type == VmbusPacketType.Completion) {
      const nvsp = load<u32>(msg);
      const hi = packetTransIdHi(p);
      const lo = packetTransIdLo(p);
      if (nvsp == NVSP_MSG_SEND_RNDIS_PKT_COMPLETE && (hi == TAG_DATA || hi == TAG_CONTROL) && lo < this.sections) {
        this.sectionBusy &= ~(<u32>1 << lo);
      } else if (nvsp == NVSP_MSG_SEND_RNDIS_PKT_COMPLETE && hi == TAG_JUMBO && lo < JUMBO_BUFFERS) {
        this.jumboBusy &= ~(<u32>1 << lo);
      } else if (hi == TAG_INIT && q == 0) {
        const size = total - offset < NVSP_MESSAGE_SIZE ? total - offset : NVSP_MESSAGE_SIZE;
        memory.fill(this.reply, 0, NVSP_MESSAGE_SIZE);
        memory.copy(this.reply, msg, size);
        this.replyType = nvsp;
      } else this.hostErrors++;
      return;
    }
    if (type == VmbusPacketType.DataInband && q == 0 && load<u32>(msg) == NVSP_MSG_SEND_INDIRECTION_TABLE) {
      this.sendTables++; // frames go out on the channel their flow came in on instead
      return;
    }
    if (type != VmbusPacketType.DataUsingTransferPages || offset < 24 || load<u32>(msg) != NVSP_MSG_SEND_RNDIS_PKT) { this.hostErrors++; return; }
    const ranges = load<u32>(p, 20);
    if (ranges == 0 || <u64>ranges * 8 > <u64>(offset - 24)) { this.hostErrors++; return; }
    this.rxPackets++;
    const lo = packetTransIdLo(p);
    const hi = packetTransIdHi(p);
    if (load<u32>(msg, 4) == RMC_CONTROL && q == 0) {
      for (let i: u32 = 0; i < ranges; i++) this.controlMessage(load<u32>(p + 28 + (<usize>i << 3)), load<u32>(p + 24 + (<usize>i << 3)));
      this.completeReceive(lo, hi, 0);
      return;
    }
    if (load<u32>(msg, 4) != RMC_DATA || !this.rxq.room(ranges)) {
      this.rxDropped += ranges;
      this.completeReceive(lo, hi, q);
      return;
    }
    // Each range's channel goes with it; the last range of a packet carries its completion.
    for (let i: u32 = 0; i < ranges; i++) this.rxq.push(load<u32>(p + 28 + (<usize>i << 3)), load<u32>(p + 24 + (<usize>i << 3)), q, i + 1 == ranges, lo, hi);
  }

  /** VM_PKT_COMP for a transfer-page packet, on the channel `q` it came on: the slots are the host's again. */
  private completeReceive(lo: u32, hi: u32, q: u32): void {
    nvspMessage(this.out + 128, NVSP_MSG_SEND_RNDIS_PKT_COMPLETE, NVSP_STAT_SUCCESS);
    this.chans[q].send(VmbusPacketType.Completion, 0, lo, hi, 0, 0, this.out + 128, 16);
  }

  /** A control message in the receive buffer: a completion for the request in flight, or a status indication. */
  private controlMessage(offset: u32, count: u32): void {
    if (<u64>offset + <u64>count > <u64>(RX_PAGES << 12) || count < 12) { this.hostErrors++; return; }
    const m = this.rx + offset;
    const type = load<u32>(m);
    if (type == RNDIS_MSG_INDICATE) {
      const status = load<u32>(m, 8);
      if (status == RNDIS_STATUS_MEDIA_CONNECT || status == RNDIS_STATUS_MEDIA_DISCONNECT) {
        this.linkUp = status == RNDIS_STATUS_MEDIA_CONNECT;
        this.linkChanges++;
      }
      return;
    }
    if ((type & RNDIS_MSG_COMPLETION_BIT) != 0 && load<u32>(m, 8) == this.controlId && !this.controlDone) {
      const n = count < 256 ? count : 256;
      memory.fill(this.control, 0, 256);
      memory.copy(this.control, m, n);
      this.controlDone = true;
      return;
    }
    this.hostErrors++;
  }

  /**
   * True while received frames wait to be taken, or the ring has packets: the guest must not
   * sleep then, since the frames hold receive-buffer slots the host needs to deliver more.
   */
  hasWork(): bool {
    if (this.rxq.count > 0) return true;
    for (let q: u32 = 0; q < <u32>this.chans.length; q++) {
      const ch = this.chans[q];
      if (ch.inbound.writeIndex() != ch.inbound.readIndex()) return true;
    }
    return false;
  }

  /** Clears every channel's SynIC event flag (before checking hasWork and sleeping). */
  takeEventFlags(): void {
    for (let q: u32 = 0; q < <u32>this.chans.length; q++) eventFlagTake(VP_INDEX, VMBUS_MESSAGE_SINT, this.chans[q].relid);
  }

  // ---- NetDevice -------------------------------------------------------------------------

  macByte(i: u32): u8 { return load<u8>(this.mac + (i % 6)); }

  maxFrame(): u32 { return this.mtuBytes; }

  send(gpa: usize, length: u32): bool {
    if (length < 14 || length > this.mtuBytes || this.ch == null) return false;
    if (RNDIS_PACKET_HEADER + length > this.sectionSize) return this.sendJumbo(gpa, length);
    const section = this.takeSection();
    if (section < 0) { this.sendBusy++; return false; }
    const s = this.tx + <usize>section * this.sectionSize;
    let total: u32;
    if (this.wantsUdpChecksum(gpa, length)) {
      total = rndisPacketHeaderWithChecksum(s, length, NDIS_CSUM_IPV4 | NDIS_CSUM_UDP | (34 << 16));
      memory.copy(s + RNDIS_PACKET_HEADER + RNDIS_PPI_U32_BYTES, gpa, length);
      this.checksumsOffloaded++;
    } else {
      total = rndisPacketHeader(s, length);
      memory.copy(s + RNDIS_PACKET_HEADER, gpa, length);
    }
    nvspMessage(this.out + 64, NVSP_MSG_SEND_RNDIS_PKT, RMC_DATA, <u32>section, total);
    const q = this.txQueue;
    if (this.chans[q].send(VmbusPacketType.DataInband, VMBUS_DATA_PACKET_FLAG_COMPLETION_REQUESTED, <u32>section, TAG_DATA, 0, 0, this.out + 64, NVSP_MESSAGE_SIZE) < 0) {
      this.sectionBusy &= ~(<u32>1 << <u32>section);
      return false;
    }
    this.sent++;
    if (q != 0) this.sentOnSubChannels++;
    return true;
  }

  /**
   * A frame too large for a send section (Linux netvsc sends those as page buffers too): its
   * PACKET_MSG in pages of its own, described by GPA direct (one range, the header in it, as the
   * host requires), section index "none"; each buffer freed by the host's completion.
   */
  private sendJumbo(gpa: usize, length: u32): bool {
    const all: u32 = (<u32>1 << JUMBO_BUFFERS) - 1;
    let start: u64 = 0;
    while ((this.jumboBusy & all) == all) {
      if (this.pump() > 0) continue;
      if (start == 0) start = referenceTime();
      else if (referenceTime() - start > WAIT_STEP_100NS * 2000) { this.sendBusy++; return false; }
    }
    const i = <u32>ctz(~this.jumboBusy & all);
    const buffer = this.jumbo + <usize>i * (JUMBO_PAGES << 12);
    const total = rndisPacketHeader(buffer, length);
    memory.copy(buffer + RNDIS_PACKET_HEADER, gpa, length);
    nvspMessage(this.out + 64, NVSP_MSG_SEND_RNDIS_PKT, RMC_DATA, NVSP_NO_SEND_SECTION, 0);
    const q = this.txQueue;
    if (this.chans[q].sendGpaDirect(i, TAG_JUMBO, buffer, total, this.out + 64, NVSP_MESSAGE_SIZE) < 0) return false;
    this.jumboBusy |= <u32>1 << i;
    this.sent++;
    if (q != 0) this.sentOnSubChannels++;
    return true;
  }

  receive(gpa: usize): u32 {
    for (;;) {
      if (this.rxq.count == 0 && this.pump() == 0) return 0;
      while (this.rxq.count > 0) {
        const e = this.rxq.front();
        const offset = load<u32>(e);
        const count = <u32>load<u16>(e, 4);
        const tag = <u32>load<u16>(e, 6);
        const q = tag >> 8;
        const lo = load<u32>(e, 8);
        const hi = load<u32>(e, 12);
        this.rxq.shift();
        const length = this.frameAt(offset, count, gpa);
        if ((tag & 1) != 0) this.completeReceive(lo, hi, q);
        if (length > 0) {
          this.received++;
          if (q != 0) this.receivedOnSubChannels++;
          this.txQueue = q;
          return length;
        }
      }
    }
    return 0; // not reached
  }

  /** Copies the frame of the PACKET_MSG at `offset` (a range of `count` bytes) to `gpa`; 0 when the message is malformed. */
  private frameAt(offset: u32, count: u32, gpa: usize): u32 {
    if (<u64>offset + <u64>count > <u64>(RX_PAGES << 12) || count < RNDIS_PACKET_HEADER) { this.rxDropped++; return 0; }
    const m = this.rx + offset;
    const dataOffset = load<u32>(m, 8);
    const dataLength = load<u32>(m, 12);
    if (load<u32>(m) != RNDIS_MSG_PACKET || dataLength < 14 || dataLength > this.mtuBytes || <u64>8 + <u64>dataOffset + <u64>dataLength > <u64>count) {
      this.rxDropped++;
      return 0;
    }
    memory.copy(gpa, m + 8 + dataOffset, dataLength);
    return dataLength;
  }

  /**
   * Spins on the ring for up to 50 µs of reference time (each look an MSR exit, where a pending
   * interrupt is also delivered). True when something arrived: call receive().
   */
  waitStep(): bool {
    if (this.rxq.count > 0) return true;
    if (this.ch == null) return false;
    this.takeEventFlags();
    const start = referenceTime();
    for (;;) {
      if (this.hasWork()) return true;
      if (referenceTime() - start > WAIT_STEP_100NS) return false;
    }
    return false; // not reached
  }

  describe(): void {
    puts("netvsc (VMBus relid ");
    putDec(this.ch != null ? this.ch!.relid : 0);
    puts(", NVSP ");
    putDec(this.nvspVersion >> 16);
    puts(".");
    putDec(this.nvspVersion & 0xffff);
    if (this.queues > 1) {
      puts(", ");
      putDec(this.queues);
      puts(" queues");
    }
    puts(this.linkUp ? ", link up)" : ", link down)");
  }

  printCounters(): void {
    const ch = this.ch;
    puts("netvsc: sent="); putDec(this.sent);
    puts(" received="); putDec(this.received);
    puts(" rx_packets="); putDec(this.rxPackets);
    puts(" rx_dropped="); putDec(this.rxDropped);
    puts(" send_busy="); putDec(this.sendBusy);
    puts(" host_errors="); putDec(this.hostErrors);
    puts(" signals="); putDec(ch != null ? ch.signals : 0);
    puts(" link_changes="); putDec(this.linkChanges);
    puts(" queues="); putDec(this.queues);
    puts(" rx_sub="); putDec(this.receivedOnSubChannels);
    puts(" tx_sub="); putDec(this.sentOnSubChannels);
    puts(" tx_csum="); putDec(this.checksumsOffloaded);
    puts("\n");
  }
}
