/**
 * The systemd unit that runs `tsvisor serve` as a service: a dedicated user, the data directory its
 * own (0700, as the service insists), the rest of the file system read-only to it.
 *
 * KillMode=process: stopping or restarting the service stops VMMS only. The VM worker processes
 * run on and the next VMMS reattaches to them, as Hyper-V's VMs outlive a restart of vmms.exe;
 * `tsvisor vm stop` (or shutting the host down) is what stops VMs.
 */
export interface UnitOptions {
  user: string;
  dataDir: string;
  /** Absolute paths of node and of the package's bin/tsvisor.mjs. */
  node: string;
  bin: string;
  storageRoots: readonly string[];
}

/** systemd reads `%` specifiers and whitespace in ExecStart: paths with either are refused, not quoted. */
function unitPath(p: string, what: string): string {
  if (!p.startsWith('/') || /[\s%"'\\$;]/.test(p)) throw new Error(`${what} "${p}" must be an absolute path without spaces, quotes, %, $ or ;`);
  return p;
}

export function systemdUnit(o: UnitOptions): string {
  if (!/^[a-z_][a-z0-9_-]{0,31}$/.test(o.user)) throw new Error(`"${o.user}" is not a valid user name (lowercase letters, digits, _ and -)`);
  const dataDir = unitPath(o.dataDir, 'the data directory');
  const roots = o.storageRoots.map((r) => unitPath(r, 'the storage root'));
  const exec = [
    unitPath(o.node, 'node'),
    unitPath(o.bin, 'the tsvisor command'),
    'serve',
    '--data-dir',
    dataDir,
    ...roots.flatMap((r) => ['--storage-root', r]),
  ].join(' ');
  return `[Unit]
Description=tsvisor virtual machine management service (VMMS)
Documentation=man:tsvisor(1)
After=network.target

[Service]
Type=simple
User=${o.user}
Group=${o.user}
Environment=XDG_CACHE_HOME=${dataDir}/cache
ExecStart=${exec}
# VM workers outlive a restart of VMMS, which reattaches to them.
KillMode=process
Restart=on-failure
RestartSec=2
UMask=0077
NoNewPrivileges=yes
PrivateTmp=yes
ProtectSystem=strict
ReadWritePaths=${[dataDir, ...roots].join(' ')}

[Install]
WantedBy=multi-user.target
`;
}
