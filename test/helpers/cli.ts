import { main } from '../../lib/cli/main';

export interface CapturedStdio {
  /** Everything written to stdout / stderr so far. */
  out(): string;
  err(): string;
  restore(): void;
}

/** Captures what the process writes to stdout and stderr until restore(). */
export function captureStdio(): CapturedStdio {
  const out: string[] = [];
  const err: string[] = [];
  const so = jest.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => (out.push(String(s)), true));
  const se = jest.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => (err.push(String(s)), true));
  return {
    out: () => out.join(''),
    err: () => err.join(''),
    restore: () => {
      so.mockRestore();
      se.mockRestore();
    },
  };
}

/** Runs the CLI in-process and captures what it writes, as a user would see it. */
export async function runCli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const io = captureStdio();
  try {
    const code = await main(argv);
    return { code, out: io.out(), err: io.err() };
  } finally {
    io.restore();
  }
}
