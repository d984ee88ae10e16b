/**
 * Hand-assembled WebAssembly modules for loader tests: the smallest module a guest image can be
 * (it imports a shared env.memory), with function bodies given as raw code bytes.
 */
function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return out;
}

function name(s: string): number[] {
  const b = [...Buffer.from(s)];
  return [...uleb(b.length), ...b];
}

function section(id: number, body: number[]): number[] {
  return [id, ...uleb(body.length), ...body];
}

export interface TestModule {
  /** Extra function imports (module, field), all of type () -> (). */
  imports?: [string, string][];
  /** Bodies of functions of type () -> () without locals: code bytes, the final `end` added. */
  bodies: Uint8Array[];
}

export function buildModule(m: TestModule): Uint8Array {
  const imports = m.imports ?? [];
  const importEntries = [
    ...name('env'),
    ...name('memory'),
    0x02,
    0x03,
    0x01,
    0x01,
    ...imports.flatMap(([mod, field]) => [...name(mod), ...name(field), 0x00, 0x00]),
  ];
  const codes = m.bodies.map((b) => {
    const body = [0x00, ...b, 0x0b];
    return [...uleb(body.length), ...body];
  });
  const bytes = [
    0x00,
    0x61,
    0x73,
    0x6d,
    0x01,
    0x00,
    0x00,
    0x00,
    ...section(1, [0x01, 0x60, 0x00, 0x00]),
    ...section(2, [...uleb(1 + imports.length), ...importEntries]),
    ...section(3, [...uleb(m.bodies.length), ...m.bodies.map(() => 0x00)]),
    ...section(7, [0x01, ...name('boot'), 0x00, ...uleb(imports.length)]),
    ...section(10, [...uleb(codes.length), ...codes.flat()]),
  ];
  return Uint8Array.from(bytes);
}

/** `depth` nested empty blocks. */
export function nestedBlocks(depth: number): Uint8Array {
  const code = new Uint8Array(depth * 3);
  for (let i = 0; i < depth; i++) {
    code[2 * i] = 0x02;
    code[2 * i + 1] = 0x40;
  }
  code.fill(0x0b, depth * 2);
  return code;
}
