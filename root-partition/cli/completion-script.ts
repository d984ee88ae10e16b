/**
 * Shell completion for bash and zsh, generated from the command tree: commands, options, paths
 * after options that take a file, and VM names (from `vm list --json` of the service the command
 * line names with --data-dir) where a command takes a VM. One function serves both shells: zsh runs
 * it through its bash-completion emulation (bashcompinit), where arrays count from 1, no variable
 * may be called `path` ($PATH), and table keys are unquoted (zsh keeps quotes in keys).
 */
import { allCommands, type TreeCommand } from './command-tree.ts';

const VM_ARGUMENT = /^(vm|vms|name-or-id)$/;

/** Words of a completion table must be safe inside a double-quoted bash string. */
function words(list: readonly string[]): string {
  for (const w of list) if (!/^[A-Za-z0-9_.:@+=,/-]+$/.test(w)) throw new Error(`completion word "${w}" has characters a shell would read`);
  return list.join(' ');
}

function tables(tree: TreeCommand): string {
  const lines: string[] = [];
  for (const c of allCommands(tree)) {
    const key = c.path.join('_');
    const flags = c.options.flatMap((o) => [o.long, o.short].filter((f): f is string => Boolean(f)));
    const valued = c.options.filter((o) => o.takesValue).flatMap((o) => [o.long, o.short].filter((f): f is string => Boolean(f)));
    const pathed = c.options.filter((o) => o.takesPath).flatMap((o) => [o.long, o.short].filter((f): f is string => Boolean(f)));
    lines.push(`  subs[${key}]="${words(c.subcommands.map((s) => s.path.at(-1)!))}"`);
    lines.push(`  opts[${key}]="${words([...flags, '--help'])}"`);
    if (valued.length) lines.push(`  vals[${key}]=" ${words(valued)} "`);
    if (pathed.length) lines.push(`  paths[${key}]=" ${words(pathed)} "`);
    if (c.args.some((a) => VM_ARGUMENT.test(a.name))) lines.push(`  takesvm[${key}]=1`);
  }
  return lines.join('\n');
}

function bashFunction(tree: TreeCommand): string {
  const prog = tree.path[0];
  return `_${prog}_vms() {
  local dir="" i b=0
  [[ -n "\${ZSH_VERSION-}" ]] && b=1
  for ((i=1; i<\${#COMP_WORDS[@]}; i++)); do
    [[ "\${COMP_WORDS[i+b]}" == --data-dir ]] && dir="\${COMP_WORDS[i+b+1]}"
  done
  "\${COMP_WORDS[b]}" vm \${dir:+--data-dir "$dir"} list --json 2>/dev/null | sed -n 's/^ *"ElementName": *"\\([^"]*\\)".*/\\1/p'
}

_${prog}() {
  local b=0 cur prev="" at="${prog}" w i
  [[ -n "\${ZSH_VERSION-}" ]] && b=1
  cur="\${COMP_WORDS[COMP_CWORD+b]}"
  local -A subs opts vals paths takesvm
${tables(tree)}
  for ((i=1; i<COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i+b]}"
    if [[ "$w" == -* ]]; then
      # An option's value is not a command word.
      [[ "$w" != *=* && "\${vals[$at]-}" == *" $w "* ]] && ((i++))
      continue
    fi
    [[ " \${subs[$at]-} " == *" $w "* ]] && at="\${at}_$w"
  done
  ((COMP_CWORD > 0)) && prev="\${COMP_WORDS[COMP_CWORD-1+b]}"
  COMPREPLY=()
  if [[ "\${paths[$at]-}" == *" $prev "* ]]; then
    COMPREPLY=($(compgen -f -- "$cur"))
  elif [[ "\${vals[$at]-}" == *" $prev "* ]]; then
    return 0
  elif [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "\${opts[$at]-}" -- "$cur"))
  elif [[ -n "\${subs[$at]-}" ]]; then
    COMPREPLY=($(compgen -W "\${subs[$at]}" -- "$cur"))
  elif [[ -n "\${takesvm[$at]-}" ]]; then
    COMPREPLY=($(compgen -W "$(_${prog}_vms)" -- "$cur"))
  else
    COMPREPLY=($(compgen -f -- "$cur"))
  fi
  return 0
}
complete -F _${prog} ${prog}
`;
}

export type Shell = 'bash' | 'zsh';

export function completionScript(tree: TreeCommand, shell: Shell): string {
  const prog = tree.path[0];
  const how =
    shell === 'bash'
      ? `# Load it with: source <(${prog} completion bash), or save it as\n# /usr/share/bash-completion/completions/${prog} (or ~/.local/share/bash-completion/completions/${prog}).`
      : `# Load it from ~/.zshrc, after compinit: source <(${prog} completion zsh).`;
  const zshPrelude = shell === 'zsh' ? 'autoload -U +X bashcompinit && bashcompinit\n' : '';
  return `# ${shell} completion for ${prog}, generated from its command tree by \`${prog} completion ${shell}\`.\n${how}\n${zshPrelude}${bashFunction(tree)}`;
}
