/**
 * The CLI's command tree as plain data, read from the same commander tree the command parses with,
 * so that the man page and the shell completions cannot drift from what the command accepts.
 */
import type { Command, Option } from 'commander';

export interface TreeOption {
  flags: string;
  long?: string;
  short?: string;
  /** The option is followed by a value (`--memory <size>`), not a switch. */
  takesValue: boolean;
  /** The value names a file or directory (shells complete paths for it). */
  takesPath: boolean;
  description: string;
  defaultValue?: string;
}

export interface TreeArgument {
  name: string;
  required: boolean;
  variadic: boolean;
  description: string;
}

export interface TreeCommand {
  /** Words from the program name down, e.g. ['tsvisor', 'vm', 'start']. */
  path: string[];
  description: string;
  options: TreeOption[];
  args: TreeArgument[];
  subcommands: TreeCommand[];
}

const PATH_VALUE = /<(file|dir|image|path|directory|cert|key)>|\[(file|dir|path)\]/i;

function optionOf(o: Option): TreeOption {
  const takesValue = o.required || o.optional;
  return {
    flags: o.flags,
    ...(o.long ? { long: o.long } : {}),
    ...(o.short ? { short: o.short } : {}),
    takesValue,
    takesPath: takesValue && PATH_VALUE.test(o.flags),
    description: o.description,
    ...(o.defaultValue !== undefined && typeof o.defaultValue !== 'object' && typeof o.defaultValue !== 'function'
      ? { defaultValue: String(o.defaultValue) }
      : {}),
  };
}

/** Hidden commands and options (commander's `hidden`) stay out of help, completion and the man page. */
export function commandTree(cmd: Command, parents: string[] = []): TreeCommand {
  const path = [...parents, cmd.name()];
  const visible = (c: Command) => !(c as unknown as { _hidden?: boolean })._hidden;
  return {
    path,
    description: cmd.description(),
    options: cmd.options.filter((o) => !o.hidden).map(optionOf),
    args: cmd.registeredArguments.map((a) => ({ name: a.name(), required: a.required, variadic: a.variadic, description: a.description })),
    subcommands: cmd.commands.filter(visible).map((c) => commandTree(c, path)),
  };
}

/** Every command of the tree, depth first, the root included. */
export function allCommands(t: TreeCommand): TreeCommand[] {
  return [t, ...t.subcommands.flatMap(allCommands)];
}

/** The synopsis line: `tsvisor vm start [options] <vm>`. */
export function synopsis(t: TreeCommand): string {
  const args = t.args.map((a) => (a.required ? `<${a.name}${a.variadic ? '...' : ''}>` : `[${a.name}${a.variadic ? '...' : ''}]`));
  return [...t.path, ...(t.options.length ? ['[options]'] : []), ...(t.subcommands.length && !t.args.length ? ['<command>'] : []), ...args].join(' ');
}
