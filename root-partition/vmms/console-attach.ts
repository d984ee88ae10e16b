/**
 * `tsvisor vm console <vm>`: attaches a terminal to a VM's COM1 through VMMS. Output: the console
 * VMMS holds, then what the guest writes, pushed as it comes (`console-follow`). Input: every byte
 * read from stdin goes to VMMS (`console-input`), which has the worker put it into COM1's
 * receiver. A terminal is put in raw mode so that keys reach the guest as typed (the guest's line
 * editor echoes and handles backspace); Ctrl-] detaches, as telnet and virsh console do. The end
 * of stdin detaches too, so `vm console <vm> </dev/null` prints the console and returns; so does
 * the VM stopping (Off or Saved), as `virsh console` does.
 */
import type { VmmsClient } from './vmms-client.ts';

/** Ctrl-] (GS): the detach key of telnet and `virsh console`; never sent to the guest. */
export const DETACH_BYTE = 0x1d;

export interface ConsoleStreams {
  stdin: NodeJS.ReadStream;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

/** Resolves when detached (Ctrl-], end of stdin, the VM stopped, or VMMS closed the connection). */
export async function attachConsole(client: VmmsClient, vm: string, io: ConsoleStreams): Promise<void> {
  client.onConsole = (data) => io.stdout.write(data);
  const { tail, enabledState } = await client.call<{ vm: string; tail: string; enabledState: number }>('console-follow', { vm });
  io.stdout.write(Buffer.from(tail, 'base64'));
  // A VM that is Off (3) or Saved (6) has no COM1 to type into: its console so far is all there is.
  if (enabledState === 3 || enabledState === 6) {
    client.onConsole = null;
    return;
  }
  const raw = io.stdin.isTTY === true;
  if (raw) {
    io.stdin.setRawMode(true);
    io.stderr.write('\r\n[tsvisor: attached to the console; Ctrl-] detaches]\r\n');
  }
  // Input is sent in order, one request at a time: a keystroke never overtakes the one before.
  let sending: Promise<unknown> = Promise.resolve();
  const send = (bytes: Buffer) => {
    if (bytes.length === 0) return;
    sending = sending.then(() => client.call('console-input', { vm, data: bytes.toString('base64') }));
  };
  await new Promise<void>((resolve, reject) => {
    let done = false;
    const detach = (error?: Error) => {
      if (done) return;
      done = true;
      io.stdin.off('data', onData);
      io.stdin.off('end', onEnd);
      if (raw) io.stdin.setRawMode(false);
      io.stdin.pause();
      // A pipe that stays open (the writer keeps it) must not keep the process attached.
      (io.stdin as { unref?: () => void }).unref?.();
      client.onConsole = null;
      client.onConsoleEnd = null;
      sending.then(() => (error ? reject(error) : resolve()), reject);
    };
    const onData = (chunk: Buffer) => {
      const at = chunk.indexOf(DETACH_BYTE);
      send(at < 0 ? chunk : chunk.subarray(0, at));
      if (at >= 0) detach();
    };
    const onEnd = () => detach();
    io.stdin.on('data', onData);
    io.stdin.on('end', onEnd);
    client.onClose = () => detach(new Error('the management service closed the connection'));
    client.onConsoleEnd = (state) => {
      io.stderr.write(`${raw ? '\r\n' : ''}[tsvisor: ${vm} is ${state}]${raw ? '\r' : ''}\n`);
      detach();
    };
    io.stdin.resume();
  });
  if (raw) io.stderr.write('\r\n[tsvisor: detached]\r\n');
}
