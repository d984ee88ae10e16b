import asc from 'assemblyscript/asc';

/**
 * Compiles an AssemblyScript entry file in-process (no files written) into a module that imports
 * a shared memory as env.memory, like every guest image. For unit tests of child-SDK code
 * (for example the guest ring against the shared hex vectors); whole guest images are built
 * by scripts/build-guests.ts.
 */
export async function compileAssemblyScript(entry: string, extra: string[] = []): Promise<WebAssembly.Module> {
  let binary: Uint8Array | undefined;
  const { error, stderr } = await asc.main(
    [
      entry,
      '--outFile',
      'out.wasm',
      '--runtime',
      'stub',
      '-O3',
      '--importMemory',
      '--sharedMemory',
      '--enable',
      'threads',
      '--maximumMemory',
      '65536',
      '--memoryBase',
      '1048576',
      '--use',
      'abort=',
      ...extra,
    ],
    {
      writeFile: (name: string, contents: Uint8Array | string) => {
        if (name.endsWith('.wasm')) binary = contents as Uint8Array;
      },
    },
  );
  if (error || !binary) throw new Error(`asc failed for ${entry}: ${error?.message}\n${stderr.toString()}`);
  return new WebAssembly.Module(binary as Uint8Array<ArrayBuffer>);
}
