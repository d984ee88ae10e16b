/**
 * tsvisor(1), generated from the command tree (man(7) macros): every command with its synopsis,
 * description and options, so `man tsvisor` says what `--help` says.
 */
import { allCommands, synopsis, type TreeCommand } from './command-tree.ts';

const GROFF_NAMED: Record<string, string> = {
  '…': '...',
  '→': '\\(->',
  '←': '\\(<-',
  µ: '\\(mc',
  '×': '\\(mu',
  '÷': '\\(di',
  '≥': '\\(>=',
  '≤': '\\(<=',
  '—': '\\(em',
  '–': '\\(en',
  '±': '\\(+-',
};

/** Text made safe for roff: backslashes, a leading dot or quote, hyphens, characters beyond ASCII. */
function roff(text: string): string {
  return (
    text
      .replace(/\\/g, '\\e')
      .replace(/-/g, '\\-')
      .replace(/^([.'])/gm, '\\&$1')
      // Beyond ASCII: groff's named characters (they have ASCII renderings too), else its Unicode escape.
      .replace(/[^\x00-\x7f]/gu, (c) => GROFF_NAMED[c] ?? `\\[u${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}]`)
  );
}

const ABOUT = [
  'tsvisor is a Hyper\\-V\\-style partitioned hypervisor for WebAssembly guests. A thin hypervisor core exposes hypercalls and partitions; a root partition hosts the management service (VMMS, started by \\fBtsvisor serve\\fR),',
  'one worker process per running VM and the virtualization service providers; enlightened guests use VSC drivers over VMBus, others use emulated PC devices.',
].join('\n');

const FILES = `.TP
.I $XDG_DATA_HOME/tsvisor
The default data directory (\\fI~/.local/share/tsvisor\\fR): VM definitions, saved states, logs, the service's sockets and \\fIaccess.json\\fR.
.TP
.I /etc/systemd/system/tsvisor.service
The unit \\fBtsvisor service install\\fR writes.`;

export function manPage(tree: TreeCommand, version: string, date: Date): string {
  const prog = tree.path[0];
  const month = date.toISOString().slice(0, 7);
  const out: string[] = [
    `.TH ${prog.toUpperCase()} 1 "${month}" "${prog} ${version}" "User Commands"`,
    '.SH NAME',
    `${prog} \\- ${roff(tree.description)}`,
    '.SH SYNOPSIS',
    `.B ${prog}`,
    '[\\fIoptions\\fR] \\fIcommand\\fR [\\fIargs\\fR]',
    '.SH DESCRIPTION',
    ABOUT,
    '.SH OPTIONS',
  ];
  for (const o of tree.options) out.push('.TP', `.B ${roff(o.flags)}`, roff(o.description));
  out.push('.SH COMMANDS');
  for (const c of allCommands(tree).slice(1)) {
    if (c.subcommands.length && !c.options.length && !c.args.length) {
      out.push('.SS ' + roff(c.path.slice(1).join(' ')), roff(c.description || ''));
      continue;
    }
    out.push('.SS ' + roff(c.path.slice(1).join(' ')), '.nf', roff(synopsis(c)), '.fi', roff(c.description || ''));
    if (c.args.some((a) => a.description)) for (const a of c.args) if (a.description) out.push('.TP', `.I ${roff(a.name)}`, roff(a.description));
    for (const o of c.options)
      out.push(
        '.TP',
        `.B ${roff(o.flags)}`,
        roff(o.description + (o.defaultValue !== undefined && o.defaultValue !== '' ? ` (default: ${o.defaultValue})` : '')),
      );
  }
  out.push(
    '.SH FILES',
    FILES,
    '.SH EXIT STATUS',
    '0 on success; non\\-zero when the command failed (the message says why; with \\fB\\-\\-json\\fR it is a JSON object).',
  );
  out.push('.SH SEE ALSO', '\\fBsystemctl\\fR(1), \\fBwbemcli\\fR(1)');
  return out.join('\n') + '\n';
}
