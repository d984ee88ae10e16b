/** `tsvisor completion bash|zsh` and `tsvisor man`: what shells and man(1) need, from the command tree. */
import type { Command } from 'commander';
import { writeFileSync } from 'node:fs';
import { commandTree } from './command-tree.ts';
import { completionScript, type Shell } from './completion-script.ts';
import { manPage } from './man-page.ts';
import { CommandFailure } from './management-session.ts';

export function registerHelpOutputCommands(program: Command): void {
  program
    .command('completion')
    .description('print the shell completion script (bash or zsh): source <(tsvisor completion bash)')
    .argument('<shell>', 'bash or zsh')
    .action((shell: string) => {
      if (shell !== 'bash' && shell !== 'zsh') throw new CommandFailure('COMPLETION', 5, `no completion for "${shell}": choose bash or zsh`);
      process.stdout.write(completionScript(commandTree(program), shell as Shell));
    });

  program
    .command('man')
    .description('print the tsvisor(1) man page (roff): tsvisor man | man -l -')
    .option('--output <file>', 'write it to this file instead')
    .action((o: { output?: string }) => {
      const page = manPage(commandTree(program), program.version() ?? '', new Date());
      if (o.output) writeFileSync(o.output, page);
      else process.stdout.write(page);
    });
}
