/**
 * The actions a VM offers in its state, as Hyper-V Manager's Actions pane lists them, and running
 * one (with its confirmation where Hyper-V Manager asks). Shown to the `full` role only; the
 * server refuses the others' actions anyway.
 */
import type { WebAction, WebVm } from '../web-port.ts';
import { api, type ApiRefused } from './api.ts';
import { confirmAction } from './confirm.ts';
import { h } from './dom.ts';

const LABEL: Record<WebAction, string> = {
  start: 'Start',
  shutdown: 'Shut Down…',
  'turn-off': 'Turn Off…',
  save: 'Save',
  pause: 'Pause',
  resume: 'Resume',
  reset: 'Reset…',
  delete: 'Delete…',
};

const CONFIRM: Partial<Record<WebAction, [string, string, string]>> = {
  'turn-off': [
    'Turn Off Machine',
    'Turning off the virtual machine is like pulling its plug: whatever the guest has not written is lost. Turn it off?',
    'Turn Off',
  ],
  shutdown: ['Shut Down Machine', 'The guest is asked to shut down through its shutdown integration service. Shut it down?', 'Shut Down'],
  reset: ['Reset Machine', 'Resetting restarts the virtual machine at once: whatever the guest has not written is lost. Reset it?', 'Reset'],
  delete: ['Delete Selected Virtual Machine', 'The definition is deleted, and its saved state with it. Disks are kept. Delete it?', 'Delete'],
};

/** What the VM accepts now (its EnabledState and availableRequestedStates). */
export function availableActions(vm: WebVm): WebAction[] {
  const can = (n: number) => vm.availableRequestedStates.includes(n);
  const s = vm.enabledState;
  const out: WebAction[] = [];
  if ((s === 3 || s === 6) && can(2)) out.push('start');
  if (s === 9 && can(2)) out.push('resume');
  if (s === 2) out.push('shutdown');
  if (s !== 3 && s !== 6 && can(3)) out.push('turn-off');
  if (can(6) && (s === 2 || s === 9)) out.push('save');
  if (can(9) && s === 2) out.push('pause');
  if (can(11) && s === 2) out.push('reset');
  if (s === 3 || s === 6) out.push('delete');
  return out;
}

export async function runAction(vm: WebVm, action: WebAction, say: (text: string, error?: boolean) => void): Promise<void> {
  const c = CONFIRM[action];
  if (c && !(await confirmAction(c[0], `${vm.name}: ${c[1]}`, c[2]))) return;
  try {
    await api.post(`/api/vms/${vm.id}/action`, { action });
    say(`${vm.name}: ${LABEL[action].replace('…', '')} requested`);
  } catch (e) {
    say(`${vm.name}: ${(e as ApiRefused).message}`, true);
  }
}

export function actionButtons(vm: WebVm, say: (text: string, error?: boolean) => void): HTMLElement {
  return h(
    'div',
    { class: 'actions', role: 'group', 'aria-label': `Actions for ${vm.name}` },
    ...availableActions(vm).map((a) =>
      h(
        'button',
        { type: 'button', 'data-action': a, 'aria-label': `${LABEL[a].replace('…', '')} ${vm.name}`, onclick: () => void runAction(vm, a, say) },
        LABEL[a],
      ),
    ),
  );
}
