/**
 * Who sent a management request, and with which role — for every request, loopback included
 * (a local user is not root). Two ways in:
 *
 *  - HTTP Basic credentials, checked against the scrypt hashes of access.json; a failure adds a
 *    delay for that client address (login-backoff.ts). Credentials that are sent decide: wrong
 *    ones are refused even from a connection whose user would have been trusted.
 *  - Without credentials, the local user owning the client's TCP socket (peer-uid.ts): the
 *    service's own user and root are `full`; any other uid gets what access.json's `local`
 *    entries give its uid, name or groups, and nothing when none does.
 *
 * A request that is neither is refused (401, so the client may retry with credentials).
 */
import { createHash, randomBytes } from 'node:crypto';
import { statSync } from 'node:fs';
import { readAccessFile, type AccessList } from './access-file.ts';
import { localAccount, type LocalAccount } from './local-accounts.ts';
import { LoginBackoff } from './login-backoff.ts';
import { decoyHash, verifyPassword } from './password-hash.ts';
import { tcpPeerUid, type TcpEnd } from './peer-uid.ts';
import { strongerRole, type Role } from './roles.ts';

export interface RequestOrigin {
  /** The Authorization header, if any. */
  readonly authorization?: string | undefined;
  readonly client: TcpEnd;
  readonly server: TcpEnd;
}

export type AuthOutcome = { readonly ok: true; readonly principal: string; readonly role: Role } | { readonly ok: false; readonly reason: string };

export interface AuthenticatorOptions {
  /** access.json's path. */
  readonly accessFile: string;
  /** Uids that are always `full`: root and the service's own user. */
  readonly trustedUids?: readonly number[];
  /** Back-off per client address, and per user name (so that many source addresses buy no extra guesses at one account). */
  readonly backoff?: LoginBackoff;
  readonly userBackoff?: LoginBackoff;
  /** Test seams: the socket owner lookup and the account lookup. */
  readonly peerUid?: (client: TcpEnd, server: TcpEnd) => number | null;
  readonly account?: (uid: number) => LocalAccount;
  /** Called with the reason when the access file cannot be used (the service logs it). */
  readonly onAccessFileError?: (message: string) => void;
}

/** Successful Basic checks remembered (keyed by a salted digest of the header), so keep-alive clients pay scrypt once. */
const MAX_REMEMBERED = 256;

export class Authenticator {
  readonly backoff: LoginBackoff;
  readonly userBackoff: LoginBackoff;
  private list: AccessList = { local: [], basic: [] };
  private stamp = '';
  private listError: string | null = null;
  private readonly remembered = new Map<string, { principal: string; role: Role; stamp: string }>();
  private readonly cacheKey = randomBytes(32);
  private readonly trusted: ReadonlySet<number>;

  constructor(private readonly o: AuthenticatorOptions) {
    this.backoff = o.backoff ?? new LoginBackoff();
    this.userBackoff = o.userBackoff ?? new LoginBackoff();
    this.trusted = new Set(o.trustedUids ?? [0, process.geteuid?.() ?? 0]);
    this.refresh();
    if (this.listError) throw new Error(this.listError);
  }

  /** Re-reads access.json when it changed; a bad file leaves no one but the trusted users in. */
  private refresh(): void {
    let stamp = 'absent';
    try {
      const st = statSync(this.o.accessFile);
      stamp = `${st.ino}:${st.size}:${st.mtimeMs}:${st.mode}:${st.uid}`;
    } catch {
      /* absent */
    }
    if (stamp === this.stamp) return;
    this.stamp = stamp;
    this.remembered.clear();
    try {
      this.list = readAccessFile(this.o.accessFile);
      this.listError = null;
    } catch (e) {
      this.list = { local: [], basic: [] };
      this.listError = (e as Error).message;
      this.o.onAccessFileError?.(this.listError);
    }
  }

  /** The role access.json (or trust) gives a local uid; null for none. */
  roleOfUid(uid: number): Role | null {
    this.refresh();
    if (this.trusted.has(uid)) return 'full';
    const local = this.list.local;
    if (local.length === 0) return null;
    const account = (this.o.account ?? localAccount)(uid);
    let role: Role | null = null;
    for (const g of local) {
      const match = 'uid' in g ? g.uid === uid : 'user' in g ? g.user === account.name : account.groups.includes(g.group);
      if (match) role = strongerRole(role, g.role);
    }
    return role;
  }

  /** The role access.json gives an HTTP Basic user now; null when it lists no such user. */
  roleOfBasicUser(user: string): Role | null {
    this.refresh();
    return this.list.basic.find((b) => b.user === user)?.role ?? null;
  }

  async authenticate(origin: RequestOrigin): Promise<AuthOutcome> {
    this.refresh();
    if (origin.authorization !== undefined) return this.basic(origin.authorization, origin.client.address);
    const uid = (this.o.peerUid ?? tcpPeerUid)(origin.client, origin.server);
    if (uid === null) return { ok: false, reason: 'no credentials, and the connection is not from a local user this host can identify' };
    const role = this.roleOfUid(uid);
    if (!role) return { ok: false, reason: `local uid ${uid} has no role in the access list` };
    return { ok: true, principal: `uid ${uid}`, role };
  }

  private async basic(header: string, address: string): Promise<AuthOutcome> {
    const digest = createHash('sha256').update(this.cacheKey).update(header).digest('base64');
    const known = this.remembered.get(digest);
    if (known && known.stamp === this.stamp) return { ok: true, principal: known.principal, role: known.role };
    const match = /^Basic\s+([A-Za-z0-9+/]+={0,2})\s*$/i.exec(header);
    const decoded = match ? Buffer.from(match[1]!, 'base64').toString('utf8') : '';
    const colon = decoded.indexOf(':');
    const user = colon > 0 ? decoded.slice(0, colon) : '';
    const password = colon > 0 ? decoded.slice(colon + 1) : '';
    const wait = Math.max(this.backoff.reserve(address), this.userBackoff.reserve(user));
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const entry = this.list.basic.find((b) => b.user === user);
    // An unknown user costs the same scrypt as a known one: the time taken does not say who exists.
    const ok = (await verifyPassword(password, entry?.password ?? (await decoyHash()))) && entry !== undefined && password.length > 0;
    if (!ok || !entry) {
      this.backoff.failed(address);
      this.userBackoff.failed(user);
      return { ok: false, reason: match ? 'wrong user name or password' : 'credentials that are not HTTP Basic' };
    }
    this.backoff.succeeded(address);
    this.userBackoff.succeeded(user);
    if (this.remembered.size >= MAX_REMEMBERED) this.remembered.delete(this.remembered.keys().next().value!);
    this.remembered.set(digest, { principal: entry.user, role: entry.role, stamp: this.stamp });
    return { ok: true, principal: entry.user, role: entry.role };
  }

  /** Why the access file is not in use, when it is not. */
  get accessFileError(): string | null {
    return this.listError;
  }
}
