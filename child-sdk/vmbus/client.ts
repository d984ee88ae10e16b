// The VMBus client, guest side: a pure state machine over caller-provided memory (see
// client-state.ts). It produces the messages to post and consumes received payloads; moving them
// through HvCallPostMessage and the SINT2 message slot is the SynIC code's job. Life cycle:
// as in Linux (drivers/hv/connection.c vmbus_negotiate_version,
// drivers/hv/channel_mgmt.c, drivers/hv/channel.c). Every function that produces a message
// writes it at `out` (240 bytes) and returns its length, 0 when there is nothing to post, or a
// negative ClientError; clientPostConnectionId() then names the connection to post it on.
// Nothing here allocates.
import {
  ChannelMessageType, VMBUS_MESSAGE_SINT, VMBUS_MESSAGE_CONNECTION_ID, VMBUS_MESSAGE_CONNECTION_ID_4,
  VMBUS_MAX_MESSAGE_SIZE, VMBUS_MAX_RELID, VERSION_COPPER, VERSION_WIN10_V5_3, VERSION_WIN10_V5_2,
  VERSION_WIN10_V5_1, VERSION_WIN10_V5, VERSION_WIN10_V4_1, VERSION_WIN10, VERSION_WIN8_1,
  GPADL_HEADER_MAX_PFNS, GPADL_BODY_MAX_PFNS,
} from "./channel-protocol";
import {
  checkChannelMessage, encodeInitiateContact, encodeHeaderOnly, encodeRelidMessage, encodeOpenChannel,
  encodeGpadlHeader, encodeGpadlBody, encodeGpadlTeardown, VERSION_RESPONSE_SUPPORTED,
  VERSION_RESPONSE_MSG_CONN_ID, OFFER_IF_TYPE, OFFER_IF_INSTANCE, OFFER_FLAGS, OFFER_SUB_CHANNEL_INDEX,
  OFFER_CHILD_RELID, OFFER_CONNECTION_ID, RELID_CHILD_RELID, OPEN_RESULT_STATUS, GPADL_CREATED_GPADL,
  GPADL_CREATED_STATUS, GPADL_TORNDOWN_GPADL,
} from "./channel-messages";
import {
  CLIENT_STATE_SIZE, ST_PHASE, ST_VERSION_INDEX, ST_VERSION, ST_MSG_CONN_ID, ST_TARGET_VCPU, ST_POST_CONN_ID,
  ST_LAST_ERROR, ST_MONITOR_PAGE1, ST_MONITOR_PAGE2, ST_INTERRUPT_PAGE, ST_TX_GPADL, ST_TX_PFNS, ST_TX_PAGES,
  ST_TX_SENT, ST_RX_COPY, ST_CHANNELS, CHANNEL_SLOTS, CHANNEL_ENTRY_SIZE, CH_RELID, CH_CONNECTION_ID,
  CH_SUB_INDEX, CH_FLAGS, CH_STATE, CH_OPEN_STATUS, CH_IF_TYPE, CH_IF_INSTANCE, ST_GPADLS, GPADL_SLOTS,
  GPADL_ENTRY_SIZE, GP_HANDLE, GP_RELID, GP_STATE, GP_STATUS, ClientPhase, ClientChannelState,
  ClientGpadlState, ClientError,
} from "./client-state";

/** Versions proposed newest first, as Linux does with 6.0 at the head (vmbus_versions[]). */
const VERSION_COUNT: u32 = 8;
function proposedVersion(i: u32): u32 {
  switch (i) {
    case 0: return VERSION_COPPER;
    case 1: return VERSION_WIN10_V5_3;
    case 2: return VERSION_WIN10_V5_2;
    case 3: return VERSION_WIN10_V5_1;
    case 4: return VERSION_WIN10_V5;
    case 5: return VERSION_WIN10_V4_1;
    case 6: return VERSION_WIN10;
    default: return VERSION_WIN8_1;
  }
}

function get(st: usize, field: u32): u32 { return load<u32>(st + field); }
function set(st: usize, field: u32, v: u32): void { store<u32>(st + field, v); }

function fail(st: usize, e: ClientError): i32 {
  set(st, ST_LAST_ERROR, <u32>e);
  return <i32>e;
}

// ---- tables ------------------------------------------------------------------------------------

function channelEntry(st: usize, relid: u32): usize {
  if (relid == 0) return 0;
  for (let i: u32 = 0; i < CHANNEL_SLOTS; i++) {
    const e = st + ST_CHANNELS + i * CHANNEL_ENTRY_SIZE;
    if (load<u32>(e + CH_RELID) == relid) return e;
  }
  return 0;
}

function gpadlEntry(st: usize, handle: u32): usize {
  if (handle == 0) return 0;
  for (let i: u32 = 0; i < GPADL_SLOTS; i++) {
    const e = st + ST_GPADLS + i * GPADL_ENTRY_SIZE;
    if (load<u32>(e + GP_HANDLE) == handle) return e;
  }
  return 0;
}

// ---- connection --------------------------------------------------------------------------------

/** Resets the state. Monitor pages are reported to the host though it offers no monitors. */
export function clientInit(st: usize, targetVcpu: u32, interruptPage: u32, monitorPage1: u32, monitorPage2: u32): void {
  memory.fill(st, 0, CLIENT_STATE_SIZE);
  set(st, ST_TARGET_VCPU, targetVcpu);
  set(st, ST_INTERRUPT_PAGE, interruptPage);
  set(st, ST_MONITOR_PAGE1, monitorPage1);
  set(st, ST_MONITOR_PAGE2, monitorPage2);
}

function contact(st: usize, out: usize): i32 {
  const version = proposedVersion(get(st, ST_VERSION_INDEX));
  const modern = version >= VERSION_WIN10_V5;
  set(st, ST_POST_CONN_ID, modern ? VMBUS_MESSAGE_CONNECTION_ID_4 : VMBUS_MESSAGE_CONNECTION_ID);
  set(st, ST_PHASE, ClientPhase.Contacting);
  return <i32>encodeInitiateContact(out, version, get(st, ST_TARGET_VCPU),
    modern ? VMBUS_MESSAGE_SINT : get(st, ST_INTERRUPT_PAGE), get(st, ST_MONITOR_PAGE1), get(st, ST_MONITOR_PAGE2));
}

/** INITIATE_CONTACT with the newest version. */
export function clientStart(st: usize, out: usize): i32 {
  const phase = get(st, ST_PHASE);
  if (phase != ClientPhase.Idle && phase != ClientPhase.Unloaded && phase != ClientPhase.NoVersion) return fail(st, ClientError.WrongPhase);
  set(st, ST_VERSION_INDEX, 0);
  return contact(st, out);
}

/** Connection id to post the last produced message on (4 or 1 for INITIATE_CONTACT, Linux connection.c). */
export function clientPostConnectionId(st: usize): u32 { return get(st, ST_POST_CONN_ID); }
/** The connection phase (ClientPhase: Idle, Contacting, Connected, Ready, NoVersion, Unloading, Unloaded). */
export function clientPhase(st: usize): u32 { return get(st, ST_PHASE); }
/** The negotiated VMBus protocol version (VERSION_*), 0 before VERSION_RESPONSE accepted one. */
export function clientVersion(st: usize): u32 { return get(st, ST_VERSION); }
/** Connection id for messages after INITIATE_CONTACT: VERSION_RESPONSE.msg_conn_id from 5.0, else 1. */
export function clientMsgConnId(st: usize): u32 { return get(st, ST_MSG_CONN_ID); }
/** The last ClientError any call returned (negative), 0 if none yet; a later success does not clear it. */
export function clientLastError(st: usize): i32 { return <i32>get(st, ST_LAST_ERROR); }

/**
 * Handles one host message of `length` bytes at `msg` (the SynIC slot's payload). It is copied
 * into the state first, so the host or another VP changing the slot cannot change what is used.
 */
export function clientReceive(st: usize, msg: usize, length: u32, out: usize): i32 {
  if (length > VMBUS_MAX_MESSAGE_SIZE) return fail(st, ClientError.BadMessage);
  const m = st + ST_RX_COPY;
  memory.copy(m, msg, length);
  const type = checkChannelMessage(m, length);
  if (type < 0) return fail(st, ClientError.BadMessage);
  const phase = get(st, ST_PHASE);
  switch (type) {
    case ChannelMessageType.VersionResponse: {
      if (phase != ClientPhase.Contacting) break;
      if (load<u8>(m + VERSION_RESPONSE_SUPPORTED) != 0) {
        const version = proposedVersion(get(st, ST_VERSION_INDEX));
        set(st, ST_VERSION, version);
        // From 5.0 later messages go to the connection the host names (VERSION_RESPONSE.msg_conn_id).
        const conn = version >= VERSION_WIN10_V5 ? load<u32>(m + VERSION_RESPONSE_MSG_CONN_ID) : VMBUS_MESSAGE_CONNECTION_ID;
        set(st, ST_MSG_CONN_ID, conn);
        set(st, ST_POST_CONN_ID, conn);
        set(st, ST_PHASE, ClientPhase.Connected);
        return <i32>encodeHeaderOnly(out, ChannelMessageType.RequestOffers);
      }
      const next = get(st, ST_VERSION_INDEX) + 1;
      if (next >= VERSION_COUNT) {
        set(st, ST_PHASE, ClientPhase.NoVersion);
        return 0;
      }
      set(st, ST_VERSION_INDEX, next);
      return contact(st, out);
    }
    case ChannelMessageType.OfferChannel: {
      if (phase != ClientPhase.Connected && phase != ClientPhase.Ready) break;
      return receiveOffer(st, m);
    }
    case ChannelMessageType.AllOffersDelivered: {
      if (phase != ClientPhase.Connected) break;
      set(st, ST_PHASE, ClientPhase.Ready);
      return 0;
    }
    case ChannelMessageType.RescindChannelOffer: {
      const e = channelEntry(st, load<u32>(m + RELID_CHILD_RELID));
      if (e == 0) break;
      store<u32>(e + CH_STATE, ClientChannelState.Rescinded);
      return 0;
    }
    case ChannelMessageType.OpenChannelResult: {
      const e = channelEntry(st, load<u32>(m + RELID_CHILD_RELID));
      if (e == 0 || load<u32>(e + CH_STATE) != ClientChannelState.Opening) break;
      const status = load<u32>(m + OPEN_RESULT_STATUS);
      store<u32>(e + CH_OPEN_STATUS, status);
      store<u32>(e + CH_STATE, status == 0 ? ClientChannelState.Open : ClientChannelState.OpenFailed);
      return 0;
    }
    case ChannelMessageType.GpadlCreated: {
      const g = gpadlEntry(st, load<u32>(m + GPADL_CREATED_GPADL));
      if (g == 0 || load<u32>(g + GP_STATE) != ClientGpadlState.Creating) break;
      const status = load<u32>(m + GPADL_CREATED_STATUS);
      store<u32>(g + GP_STATUS, status);
      store<u32>(g + GP_STATE, status == 0 ? ClientGpadlState.Created : ClientGpadlState.Failed);
      if (get(st, ST_TX_GPADL) == load<u32>(g + GP_HANDLE)) set(st, ST_TX_GPADL, 0); // rejected early
      return 0;
    }
    case ChannelMessageType.GpadlTorndown: {
      const g = gpadlEntry(st, load<u32>(m + GPADL_TORNDOWN_GPADL));
      if (g == 0 || load<u32>(g + GP_STATE) != ClientGpadlState.TearingDown) break;
      memory.fill(g, 0, GPADL_ENTRY_SIZE);
      return 0;
    }
    case ChannelMessageType.UnloadResponse: {
      if (phase != ClientPhase.Unloading) break;
      // After UNLOAD_RESPONSE the host has forgotten all channels and GPADLs (Linux vmbus_initiate_unload).
      memory.fill(st + ST_CHANNELS, 0, CHANNEL_SLOTS * CHANNEL_ENTRY_SIZE + GPADL_SLOTS * GPADL_ENTRY_SIZE);
      set(st, ST_TX_GPADL, 0);
      set(st, ST_PHASE, ClientPhase.Unloaded);
      return 0;
    }
  }
  return fail(st, ClientError.UnexpectedMessage);
}

function receiveOffer(st: usize, m: usize): i32 {
  const relid = load<u32>(m + OFFER_CHILD_RELID);
  if (relid == 0 || relid > VMBUS_MAX_RELID || channelEntry(st, relid) != 0) return fail(st, ClientError.UnexpectedMessage);
  const free = channelEntry0(st);
  if (free == 0) return fail(st, ClientError.TableFull);
  store<u32>(free + CH_RELID, relid);
  store<u32>(free + CH_CONNECTION_ID, load<u32>(m + OFFER_CONNECTION_ID));
  store<u16>(free + CH_SUB_INDEX, load<u16>(m + OFFER_SUB_CHANNEL_INDEX));
  store<u16>(free + CH_FLAGS, load<u16>(m + OFFER_FLAGS));
  store<u32>(free + CH_STATE, ClientChannelState.Offered);
  memory.copy(free + CH_IF_TYPE, m + OFFER_IF_TYPE, 16);
  memory.copy(free + CH_IF_INSTANCE, m + OFFER_IF_INSTANCE, 16);
  return 0;
}

/** First free channel slot. */
function channelEntry0(st: usize): usize {
  for (let i: u32 = 0; i < CHANNEL_SLOTS; i++) {
    const e = st + ST_CHANNELS + i * CHANNEL_ENTRY_SIZE;
    if (load<u32>(e + CH_RELID) == 0) return e;
  }
  return 0;
}

// ---- offers ------------------------------------------------------------------------------------

/** Relid of the offer with this interface GUID (16 wire bytes at `ifType`) and sub-channel index, or 0. */
export function clientFindOffer(st: usize, ifType: usize, subChannelIndex: u32): u32 {
  for (let i: u32 = 0; i < CHANNEL_SLOTS; i++) {
    const e = st + ST_CHANNELS + i * CHANNEL_ENTRY_SIZE;
    if (load<u32>(e + CH_RELID) == 0 || <u32>load<u16>(e + CH_SUB_INDEX) != subChannelIndex) continue;
    if (load<u64>(e + CH_IF_TYPE) == load<u64>(ifType) && load<u64>(e + CH_IF_TYPE + 8) == load<u64>(ifType + 8)) {
      return load<u32>(e + CH_RELID);
    }
  }
  return 0;
}

/** Channels in the table (offered, opening, open or rescinded), at most CHANNEL_SLOTS. */
export function clientOfferCount(st: usize): u32 {
  let n: u32 = 0;
  for (let i: u32 = 0; i < CHANNEL_SLOTS; i++) if (load<u32>(st + ST_CHANNELS + i * CHANNEL_ENTRY_SIZE) != 0) n++;
  return n;
}

/** ClientChannelState of channel `relid`, ClientChannelState.None when the relid is unknown. */
export function clientChannelState(st: usize, relid: u32): u32 {
  const e = channelEntry(st, relid);
  return e == 0 ? ClientChannelState.None : load<u32>(e + CH_STATE);
}
/** The connection id to pass to HvCallSignalEvent for this channel (offer @192). */
export function clientChannelConnectionId(st: usize, relid: u32): u32 {
  const e = channelEntry(st, relid);
  return e == 0 ? 0 : load<u32>(e + CH_CONNECTION_ID);
}
/** The offer's sub_channel_index (0 for a primary channel); 0 when the relid is unknown. */
export function clientChannelSubIndex(st: usize, relid: u32): u32 {
  const e = channelEntry(st, relid);
  return e == 0 ? 0 : <u32>load<u16>(e + CH_SUB_INDEX);
}
/** OPENCHANNEL_RESULT status of the last open of `relid` (0 = opened); 0 when unknown or not answered yet. */
export function clientChannelOpenStatus(st: usize, relid: u32): u32 {
  const e = channelEntry(st, relid);
  return e == 0 ? 0 : load<u32>(e + CH_OPEN_STATUS);
}
/** Copies the offer's instance GUID (16 wire bytes) to `dst`; false when the relid is unknown. */
export function clientChannelInstance(st: usize, relid: u32, dst: usize): bool {
  const e = channelEntry(st, relid);
  if (e == 0) return false;
  memory.copy(dst, e + CH_IF_INSTANCE, 16);
  return true;
}

// ---- GPADLs ------------------------------------------------------------------------------------

/**
 * Starts a GPADL over `pageCount` pages whose PFNs are u64s at `pfns` (kept unchanged until the
 * last body is produced). Returns the GPADL_HEADER; clientNextGpadlBody gives the bodies.
 */
export function clientCreateGpadl(st: usize, relid: u32, handle: u32, pfns: usize, pageCount: u32, out: usize): i32 {
  if (get(st, ST_PHASE) != ClientPhase.Ready) return fail(st, ClientError.WrongPhase);
  const e = channelEntry(st, relid);
  if (e == 0 || load<u32>(e + CH_STATE) == ClientChannelState.Rescinded) return fail(st, ClientError.UnknownChannel);
  // range_buflen is a u16: 8 + 8 × pages must fit (8190 pages, 32 MiB).
  if (handle == 0 || pageCount == 0 || pageCount > 8190 || gpadlEntry(st, handle) != 0) return fail(st, ClientError.BadArgument);
  if (get(st, ST_TX_GPADL) != 0) return fail(st, ClientError.GpadlInProgress);
  const g = freeGpadlSlot(st);
  if (g == 0) return fail(st, ClientError.TableFull);
  store<u32>(g + GP_HANDLE, handle);
  store<u32>(g + GP_RELID, relid);
  store<u32>(g + GP_STATE, ClientGpadlState.Creating);
  const first = pageCount < GPADL_HEADER_MAX_PFNS ? pageCount : GPADL_HEADER_MAX_PFNS;
  if (first < pageCount) {
    set(st, ST_TX_GPADL, handle);
    set(st, ST_TX_PFNS, <u32>pfns);
    set(st, ST_TX_PAGES, pageCount);
    set(st, ST_TX_SENT, first);
  }
  set(st, ST_POST_CONN_ID, get(st, ST_MSG_CONN_ID));
  return <i32>encodeGpadlHeader(out, relid, handle, pageCount, pfns, first);
}

function freeGpadlSlot(st: usize): usize {
  for (let i: u32 = 0; i < GPADL_SLOTS; i++) {
    const e = st + ST_GPADLS + i * GPADL_ENTRY_SIZE;
    if (load<u32>(e + GP_HANDLE) == 0) return e;
  }
  return 0;
}

/** The next GPADL_BODY of the GPADL in progress, or 0 when all its PFNs have been sent. */
export function clientNextGpadlBody(st: usize, out: usize): i32 {
  const handle = get(st, ST_TX_GPADL);
  if (handle == 0) return 0;
  const sent = get(st, ST_TX_SENT);
  const left = get(st, ST_TX_PAGES) - sent;
  const n = left < GPADL_BODY_MAX_PFNS ? left : GPADL_BODY_MAX_PFNS;
  set(st, ST_TX_SENT, sent + n);
  if (sent + n >= get(st, ST_TX_PAGES)) set(st, ST_TX_GPADL, 0);
  set(st, ST_POST_CONN_ID, get(st, ST_MSG_CONN_ID));
  return <i32>encodeGpadlBody(out, 0, handle, <usize>get(st, ST_TX_PFNS) + 8 * sent, n);
}

/** ClientGpadlState of GPADL `handle`, ClientGpadlState.None when no entry has it. */
export function clientGpadlState(st: usize, handle: u32): u32 {
  const g = gpadlEntry(st, handle);
  return g == 0 ? ClientGpadlState.None : load<u32>(g + GP_STATE);
}
/** GPADL_CREATED creation_status of `handle` (0 = created); 0 when unknown or not answered yet. */
export function clientGpadlStatus(st: usize, handle: u32): u32 {
  const g = gpadlEntry(st, handle);
  return g == 0 ? 0 : load<u32>(g + GP_STATUS);
}

/** GPADL_TEARDOWN; the entry is freed when GPADL_TORNDOWN arrives (a failed one is freed now). */
export function clientTeardownGpadl(st: usize, handle: u32, out: usize): i32 {
  const g = gpadlEntry(st, handle);
  if (g == 0) return fail(st, ClientError.BadArgument);
  const state = load<u32>(g + GP_STATE);
  if (state == ClientGpadlState.Failed) {
    memory.fill(g, 0, GPADL_ENTRY_SIZE);
    return 0;
  }
  if (state != ClientGpadlState.Created) return fail(st, ClientError.WrongPhase);
  store<u32>(g + GP_STATE, ClientGpadlState.TearingDown);
  set(st, ST_POST_CONN_ID, get(st, ST_MSG_CONN_ID));
  return <i32>encodeGpadlTeardown(out, load<u32>(g + GP_RELID), handle);
}

// ---- channels ----------------------------------------------------------------------------------

/**
 * OPENCHANNEL with the rings in GPADL `handle`: pages [0, downstream) carry guest → host,
 * [downstream, n) host → guest (Linux __vmbus_open). openid = relid, as Linux does.
 */
export function clientOpenChannel(st: usize, relid: u32, handle: u32, downstreamPageOffset: u32, targetVp: u32, userData: usize, out: usize): i32 {
  const e = channelEntry(st, relid);
  if (e == 0) return fail(st, ClientError.UnknownChannel);
  const state = load<u32>(e + CH_STATE);
  if (state != ClientChannelState.Offered && state != ClientChannelState.OpenFailed) return fail(st, ClientError.ChannelBusy);
  if (clientGpadlState(st, handle) != ClientGpadlState.Created) return fail(st, ClientError.BadArgument);
  store<u32>(e + CH_STATE, ClientChannelState.Opening);
  set(st, ST_POST_CONN_ID, get(st, ST_MSG_CONN_ID));
  return <i32>encodeOpenChannel(out, relid, relid, handle, targetVp, downstreamPageOffset, userData);
}

/** CLOSECHANNEL (no reply). Also sent for a rescinded channel, as Linux vmbus_close does. */
export function clientCloseChannel(st: usize, relid: u32, out: usize): i32 {
  const e = channelEntry(st, relid);
  if (e == 0) return fail(st, ClientError.UnknownChannel);
  const state = load<u32>(e + CH_STATE);
  if (state != ClientChannelState.Open && state != ClientChannelState.Rescinded) return fail(st, ClientError.WrongPhase);
  if (state == ClientChannelState.Open) store<u32>(e + CH_STATE, ClientChannelState.Offered);
  set(st, ST_POST_CONN_ID, get(st, ST_MSG_CONN_ID));
  return <i32>encodeRelidMessage(out, ChannelMessageType.CloseChannel, relid);
}

/** RELID_RELEASED for a rescinded channel; forgets it and any of its GPADLs still listed. */
export function clientReleaseRelid(st: usize, relid: u32, out: usize): i32 {
  const e = channelEntry(st, relid);
  if (e == 0 || load<u32>(e + CH_STATE) != ClientChannelState.Rescinded) return fail(st, ClientError.WrongPhase);
  memory.fill(e, 0, CHANNEL_ENTRY_SIZE);
  for (let i: u32 = 0; i < GPADL_SLOTS; i++) {
    const g = st + ST_GPADLS + i * GPADL_ENTRY_SIZE;
    if (load<u32>(g + GP_RELID) == relid) memory.fill(g, 0, GPADL_ENTRY_SIZE);
  }
  set(st, ST_POST_CONN_ID, get(st, ST_MSG_CONN_ID));
  return <i32>encodeRelidMessage(out, ChannelMessageType.RelidReleased, relid);
}

/** UNLOAD; UNLOAD_RESPONSE then clears all channels and GPADLs. */
export function clientUnload(st: usize, out: usize): i32 {
  const phase = get(st, ST_PHASE);
  if (phase != ClientPhase.Connected && phase != ClientPhase.Ready) return fail(st, ClientError.WrongPhase);
  set(st, ST_PHASE, ClientPhase.Unloading);
  set(st, ST_POST_CONN_ID, get(st, ST_MSG_CONN_ID));
  return <i32>encodeHeaderOnly(out, ChannelMessageType.Unload);
}
