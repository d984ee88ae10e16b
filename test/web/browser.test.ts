/**
 * The web console in a real browser (Debian's chromium driven by playwright-core) against a real
 * `tsvisor serve` over HTTPS and real VMs: a wrong password is refused; the operator logs in,
 * creates a VM, starts it and sees the state and heartbeat pushed; opens the guest's serial
 * console, types a shell command and sees the guest's answer; detaches; shuts the VM down from
 * the keyboard alone (tab to the action, confirm in the dialog); a read-only user sees no action
 * and the server refuses one sent anyway. Screenshots go to build/web-screenshots/ (and, with
 * TSVISOR_UPDATE_DOC_SCREENSHOTS=1, to docs/images/).
 */
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildGuests } from '../../scripts/build-guests.ts';
import { buildWeb } from '../../scripts/build-web.ts';
import { LiveDaemon } from '../management/live-daemon.ts';
import type { VmView } from '../../root-partition/vmms/vm-entry.ts';
import { VmmsClient } from '../../root-partition/vmms/vmms-client.ts';
import { USERS } from './web-fixture.ts';

const CHROMIUM = '/usr/bin/chromium';
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SHOTS = join(ROOT, 'build', 'web-screenshots');
const DOC_SHOTS = join(ROOT, 'docs', 'images');

/** Polls wait this long: scrypt logins, VM starts and pushes are slower when the machine is loaded. */
const SLOW = { timeout: 30_000 };
let daemon: LiveDaemon;
let browser: Browser;
let url = '';

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (.ci/run does)`);
  await Promise.all([buildGuests(['ref-enlightened']), buildWeb()]);
  daemon = await LiveDaemon.start({ users: USERS, extraArgs: ['--web-port', '0', '--cim-https-port', 'none'] });
  url = /web console on (https:\/\/127\.0\.0\.1:\d+\/)/.exec(daemon.output())?.[1] ?? '';
  expect(url).not.toBe('');
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  mkdirSync(SHOTS, { recursive: true });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  if (daemon) expect(await daemon.stop()).toEqual([]);
}, 60_000);

async function shot(page: Page, name: string): Promise<void> {
  const file = join(SHOTS, `${name}.png`);
  await page.screenshot({ path: file });
  if (process.env.TSVISOR_UPDATE_DOC_SCREENSHOTS === '1') {
    mkdirSync(DOC_SHOTS, { recursive: true });
    copyFileSync(file, join(DOC_SHOTS, `web-console-${name}.png`));
  }
}

async function logIn(page: Page, user: string, password: string): Promise<void> {
  await page.goto(url);
  await page.getByLabel('User name').fill(user);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
}

describe('the web console in chromium', () => {
  it('logs in, creates and starts a VM, talks to its console, and shuts it down from the keyboard', async () => {
    const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1180, height: 760 } });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    try {
      await logIn(page, 'admin', 'wrong-password');
      await expect.poll(() => page.getByRole('alert').textContent(), SLOW).toBe('Wrong user name or password.');
      await page.getByLabel('Password').fill(USERS[0]!.password);
      await page.getByRole('button', { name: 'Log in' }).click();
      await page.getByRole('heading', { name: 'Virtual machines' }).waitFor();

      await page.getByLabel('Name', { exact: true }).fill('web-vm');
      await page.getByLabel('Memory (MiB)').fill('32');
      await page.getByLabel('Guest image').selectOption('ref-enlightened.wasm');
      await page.getByLabel('Command line').fill('echo');
      await page.getByRole('button', { name: 'Create' }).click();
      const row = page.locator('tr', { has: page.getByRole('link', { name: 'web-vm' }) });
      await expect.poll(() => row.locator('.state').textContent(), SLOW).toBe('Off');

      await page.getByRole('button', { name: 'Start web-vm' }).click();
      await expect.poll(() => row.locator('.state').textContent(), SLOW).toBe('Running');
      const client = await VmmsClient.connect(daemon.dataDir);
      try {
        daemon.noteWorker((await client.call<VmView>('show', { vm: 'web-vm' })).processId);
      } finally {
        client.close();
      }
      await expect.poll(() => row.locator('.heartbeat').textContent(), SLOW).toBe('OK');
      await expect.poll(() => row.locator('.cpu').textContent(), SLOW).toMatch(/^\d+ %$/);
      await shot(page, 'vm-list');

      // The VM's page: settings, integration services, KVP items from the guest, charts.
      await page.getByRole('link', { name: 'web-vm' }).click();
      await page.getByRole('heading', { name: 'web-vm' }).waitFor();
      await expect.poll(() => page.locator('table', { hasText: 'Integration services' }).textContent(), SLOW).toContain('HeartbeatyesOK');
      await expect.poll(() => page.locator('table', { hasText: 'Key-value pairs' }).textContent(), SLOW).toContain('OSName');
      await expect.poll(() => page.getByRole('img', { name: /^CPU: \d+ %$/ }).count(), SLOW).toBe(1);
      // Set-VM from the page: the VM runs, so only its notes change; memory is greyed out.
      await expect.poll(() => page.getByLabel('Memory (MiB)').isDisabled(), SLOW).toBe(true);
      await page.getByLabel('Notes').fill('serves the team');
      await page.getByRole('button', { name: 'Apply' }).click();
      await expect.poll(() => page.locator('table', { hasText: 'Guest image' }).textContent(), SLOW).toContain('Notesserves the team');
      await page.waitForTimeout(3000); // a few samples on the charts
      await page.screenshot({ path: join(SHOTS, 'vm-page.png'), fullPage: true });

      // The console: the banner VMMS held, then the guest's answer to what is typed.
      await page.getByRole('link', { name: 'Connect to the console' }).click();
      const screen = page.locator('.xterm-rows');
      await expect.poll(() => screen.textContent(), SLOW).toContain('tsvisor>');
      await page.getByLabel('Type into the console of web-vm').focus();
      await page.keyboard.type('echo hello from the browser');
      await page.keyboard.press('Enter');
      await expect
        .poll(async () => (await screen.textContent())?.split('tsvisor> echo hello from the browser')[1] ?? '', SLOW)
        .toContain('hello from the browser');
      await page.keyboard.type('help');
      await page.keyboard.press('Enter');
      await expect.poll(() => screen.textContent(), SLOW).toContain('uptime');
      await shot(page, 'console');
      await page.getByRole('button', { name: 'Detach' }).click();
      await page.getByRole('heading', { name: 'web-vm' }).waitFor();

      // Keyboard only: tab to "Shut Down web-vm" in the list, Enter, then confirm in the dialog.
      await page.getByRole('link', { name: 'Virtual machines', exact: true }).click();
      await row.waitFor();
      await page.locator('body').focus();
      let label: string | null = null;
      for (let i = 0; i < 30 && label !== 'Shut Down web-vm'; i++) {
        await page.keyboard.press('Tab');
        label = await page.evaluate(() => document.activeElement?.getAttribute('aria-label') ?? null);
      }
      expect(label).toBe('Shut Down web-vm');
      await page.keyboard.press('Enter');
      const dialog = page.getByRole('dialog', { name: 'Shut Down Machine' });
      await dialog.waitFor();
      expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Cancel');
      await page.keyboard.press('Tab');
      await page.keyboard.press('Enter');
      await expect.poll(() => row.locator('.state').textContent(), SLOW).toBe('Off');

      // The I/O benchmark's report (the reference run the package ships).
      await page.getByRole('link', { name: 'I/O benchmark' }).click();
      await expect.poll(() => page.locator('table caption').first().textContent(), SLOW).toMatch(/MB\/s \(log scale\)$/);
      expect(await page.locator('.bench tbody tr').count()).toBeGreaterThan(4);
      await page.screenshot({ path: join(SHOTS, 'bench.png'), fullPage: true });
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  }, 120_000);

  it('shows a read-only user no action, and its server refuses one sent anyway', async () => {
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    const page = await context.newPage();
    try {
      await logIn(page, 'viewer', USERS[1]!.password);
      const row = page.locator('tr', { has: page.getByRole('link', { name: 'web-vm' }) });
      await expect.poll(() => row.locator('.state').textContent(), SLOW).toMatch(/^(Off|Running)$/);
      expect(await page.locator('button[data-action]').count()).toBe(0);
      expect(await page.getByRole('button', { name: 'Create' }).count()).toBe(0);
      const status = await page.evaluate(async () => {
        const s = (await (await fetch('/api/session')).json()) as { csrf: string };
        const id = ((await (await fetch('/api/vms')).json()) as { vms: { id: string }[] }).vms[0]!.id;
        const r = await fetch(`/api/vms/${id}/action`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': s.csrf },
          body: '{"action":"start"}',
        });
        return r.status;
      });
      expect(status).toBe(403);
    } finally {
      await context.close();
    }
  }, 60_000);
});
