/**
 * The command framework of the CLI: a command declares its flags once (type, placeholder, meaning,
 * default) and gets from that its parsing, its `--help` and its usage errors, so help cannot drift
 * from what the parser accepts. How to add a command: the comment at the top of ./main.ts.
 */
import { parseArgs } from 'node:util';
import { ConfigError } from '../config';

/** A mistake in how the command was called: printed with a hint, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

interface FlagBase {
  /** What the flag does, in words a user can act on; shown in --help. */
  description: string;
  /** The default in words, when it is not a plain value (e.g. "the config's region"). */
  defaultText?: string;
}
export interface StringFlag extends FlagBase {
  type: 'string';
  /** Placeholder for the value in help and errors: FILE, NAME, ISO8601. */
  value: string;
  default?: string;
  required?: boolean;
  /** The accepted values, when they are a fixed list. */
  choices?: readonly string[];
}
export interface ListFlag extends FlagBase {
  type: 'string';
  multiple: true;
  value: string;
  required?: boolean;
}
export interface NumberFlag extends FlagBase {
  type: 'number';
  value: string;
  default?: number;
  min?: number;
  max?: number;
  integer?: boolean;
}
export interface BooleanFlag extends FlagBase {
  type: 'boolean';
}
export type Flag = StringFlag | ListFlag | NumberFlag | BooleanFlag;
export type Flags = Record<string, Flag>;

type FlagValue<F> = F extends BooleanFlag
  ? boolean
  : F extends NumberFlag
    ? F extends { default: number }
      ? number
      : number | undefined
    : F extends ListFlag
      ? string[]
      : F extends { default: string } | { required: true }
        ? string
        : string | undefined;

/** The parsed options of a command, typed from its flag declarations. */
export type Values<F extends Flags> = { -readonly [K in keyof F]: FlagValue<F[K]> };

export interface Command<F extends Flags = Flags> {
  name: string;
  /** One line for the command list of `gitlab-spot-autoscaler --help`. */
  summary: string;
  /**
   * The usage line after the command's name, when the flags combine in a way a list cannot show
   * (`(--deployment NAME | --config FILE)`); derived from the flags when left out.
   */
  synopsis?: string;
  /** Paragraphs after the usage line in the command's --help. */
  description?: string;
  flags: F;
  examples?: string[];
  run(options: Values<F>): Promise<number> | number;
}

/** Declares a command; `const` keeps the flag literals, so `run` gets typed options. */
export function defineCommand<const F extends Flags>(command: Command<F>): Command<F> {
  return command;
}

export const PROGRAM = 'gitlab-spot-autoscaler';
const HELP_FLAG: BooleanFlag = { type: 'boolean', description: 'show this help and exit' };

function flagLabel(name: string, flag: Flag): string {
  return flag.type === 'boolean' ? `--${name}` : `--${name} ${flag.value}`;
}

/** The usage line of a command, derived from its flags unless it states its own synopsis. */
export function synopsis(command: Command<Flags>): string {
  if (command.synopsis) return `${command.name} ${command.synopsis}`;
  const parts = Object.entries(command.flags).map(([name, flag]) => {
    const label = flagLabel(name, flag) + ('multiple' in flag && flag.multiple ? ` [${flagLabel(name, flag)} ...]` : '');
    return 'required' in flag && flag.required ? label : `[${label}]`;
  });
  return [command.name, ...parts].join(' ');
}

/** `prefix` + the command's usage, wrapped at 100 columns between bracketed groups, never inside one. */
export function usageLine(prefix: string, command: Command<Flags>): string {
  const groups: string[] = [];
  let depth = 0;
  let current = '';
  for (const ch of synopsis(command)) {
    if (ch === ' ' && depth === 0) {
      if (current) groups.push(current);
      current = '';
      continue;
    }
    if (ch === '[' || ch === '(') depth++;
    if (ch === ']' || ch === ')') depth--;
    current += ch;
  }
  if (current) groups.push(current);
  const indent = ' '.repeat(prefix.length + PROGRAM.length + 1 + command.name.length + 1);
  const lines = [`${prefix}${PROGRAM} ${groups[0]}`];
  for (const g of groups.slice(1)) {
    const last = lines[lines.length - 1];
    if (last.length + 1 + g.length > 100 && last.trim().length > indent.length) lines.push(indent + g);
    else lines[lines.length - 1] = `${last} ${g}`;
  }
  return lines.join('\n');
}

function wrap(text: string, width: number, indent: string): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines.map((l, i) => (i === 0 ? l : indent + l));
}

function defaultOf(flag: Flag): string | undefined {
  if (flag.defaultText) return flag.defaultText;
  if ('default' in flag && flag.default !== undefined) return String(flag.default);
  return undefined;
}

/** `<command> --help`: usage, what it does, every flag with its meaning and default, examples. */
export function formatHelp(command: Command<Flags>): string {
  const flags: [string, Flag][] = [...Object.entries(command.flags), ['help', HELP_FLAG]];
  const labels = flags.map(([name, flag]) => (name === 'help' ? '-h, --help' : flagLabel(name, flag)));
  const column = Math.min(30, Math.max(...labels.map((l) => l.length))) + 4;
  const out = [usageLine('Usage: ', command), '', command.summary];
  if (command.description) out.push('', ...command.description.split('\n\n').flatMap((p, i) => [...(i ? [''] : []), ...wrap(p, 100, '')]));
  out.push('', 'Options:');
  flags.forEach(([, flag], i) => {
    const notes: string[] = [];
    if ('required' in flag && flag.required) notes.push('required');
    if ('choices' in flag && flag.choices) notes.push(`one of: ${flag.choices.join(', ')}`);
    if (flag.type === 'number' && (flag.min !== undefined || flag.max !== undefined))
      notes.push(`${flag.integer ? 'a whole number' : 'a number'}${flag.min !== undefined ? ` from ${flag.min}` : ''}${flag.max !== undefined ? ` to ${flag.max}` : ''}`);
    const def = defaultOf(flag);
    if (def !== undefined) notes.push(`default: ${def}`);
    const text = flag.description + (notes.length ? ` [${notes.join('; ')}]` : '');
    const label = labels[i];
    const pad = label.length + 2 < column ? label.padEnd(column - 2) : `${label}\n${' '.repeat(column)}`;
    out.push(`  ${pad}${wrap(text, 100 - column, ' '.repeat(column)).join('\n')}`);
  });
  if (command.examples?.length) out.push('', 'Examples:', ...command.examples.map((e) => `  ${PROGRAM} ${e}`));
  return out.join('\n') + '\n';
}

/** Edit distance counting a swap of two neighbours as one edit ("stauts"), for "did you mean". */
function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++) {
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  return d[a.length][b.length];
}

/** The closest of `candidates` to `word`, when it is close enough to be a typo. */
export function closest(word: string, candidates: string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = c.startsWith(word) && word.length >= 2 ? 0.5 : distance(word, c);
    if (d < bestD) [best, bestD] = [c, d];
  }
  return best !== undefined && bestD <= Math.max(1, Math.floor(word.length / 3)) ? best : undefined;
}

function parseNumber(name: string, flag: NumberFlag, text: string): number {
  const v = Number(text);
  const range = `${flag.min !== undefined ? ` from ${flag.min}` : ''}${flag.max !== undefined ? ` to ${flag.max}` : ''}${flag.integer ? ' (whole)' : ''}`;
  if (text.trim() === '' || !Number.isFinite(v) || (flag.integer && !Number.isInteger(v)) || (flag.min !== undefined && v < flag.min) || (flag.max !== undefined && v > flag.max))
    throw new UsageError(`--${name} ${JSON.stringify(text)}: expected a number${range}`);
  return v;
}

/** Parses argv against the command's flags; every mistake is a UsageError naming the flag. */
export function parseFlags<F extends Flags>(command: Command<F>, argv: string[]): Values<F> | 'help' {
  const names = Object.keys(command.flags);
  const list = names.map((n) => `--${n}`).join(', ');
  const { tokens } = parseArgs({
    args: argv,
    options: { ...Object.fromEntries(Object.entries(command.flags).map(([n, f]) => [n, { type: f.type === 'boolean' ? 'boolean' : 'string', multiple: 'multiple' in f && f.multiple }])), help: { type: 'boolean', short: 'h' } },
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  if (tokens.some((t) => t.kind === 'option' && t.name === 'help')) return 'help';
  const raw = new Map<string, string[]>();
  const seen = new Set<string>();
  for (const t of tokens) {
    if (t.kind === 'option-terminator') continue;
    if (t.kind === 'positional') {
      const guess = closest(t.value.replace(/^-+/, ''), names);
      throw new UsageError(`unexpected argument ${JSON.stringify(t.value)}: ${command.name} takes options only${guess ? ` (did you mean --${guess}?)` : ''}`);
    }
    const flag = command.flags[t.name];
    if (!flag) {
      const guess = closest(t.name, names);
      throw new UsageError(`unknown option ${t.rawName}${guess ? ` (did you mean --${guess}?)` : ''}; the options of ${command.name} are ${list}`);
    }
    if (flag.type === 'boolean') {
      if (t.value !== undefined) throw new UsageError(`${t.rawName} takes no value (got ${JSON.stringify(t.value)})`);
    } else if (t.value === undefined || (!t.inlineValue && t.value.startsWith('--')))
      throw new UsageError(`${t.rawName} needs a value: ${t.rawName} ${flag.value}${t.value !== undefined ? ` (${t.value} is an option; write ${t.rawName}=${t.value} if it is the value)` : ''}`);
    if (seen.has(t.name) && !('multiple' in flag && flag.multiple)) throw new UsageError(`${t.rawName} is given twice; pass it once`);
    seen.add(t.name);
    raw.set(t.name, [...(raw.get(t.name) ?? []), t.value ?? '']);
  }
  const values: Record<string, unknown> = {};
  for (const [name, flag] of Object.entries(command.flags)) {
    const given = raw.get(name);
    if ('required' in flag && flag.required && !given) throw new UsageError(`--${name} ${flag.value} is required: ${flag.description}`);
    if (flag.type === 'boolean') values[name] = given !== undefined;
    else if (flag.type === 'number') values[name] = given ? parseNumber(name, flag, given[0]) : flag.default;
    else if ('multiple' in flag && flag.multiple) values[name] = given ?? [];
    else {
      const f = flag as StringFlag;
      const v = given?.[0];
      if (v !== undefined && f.choices && !f.choices.includes(v)) throw new UsageError(`--${name} ${JSON.stringify(v)} is not accepted (accepted: ${f.choices.join(', ')})`);
      values[name] = v ?? f.default;
    }
  }
  return values as Values<F>;
}

/** Prints a usage error with its hint to stderr; exit code 2. */
export function fail(command: Command<Flags> | undefined, message: string, withUsage: boolean): number {
  const where = command ? `${PROGRAM} ${command.name}` : PROGRAM;
  const hint = command
    ? [...(withUsage ? [usageLine('Usage: ', command)] : []), `Run \`${PROGRAM} ${command.name} --help\` for what each option means.`]
    : [`Run \`${PROGRAM} --help\` for the commands.`];
  process.stderr.write(`${where}: ${message}\n${hint.join('\n')}\n`);
  return 2;
}

/** Runs one command on its arguments: parsing, --help, and the errors a user can cause. */
export async function runCommand<F extends Flags>(command: Command<F>, argv: string[]): Promise<number> {
  let options;
  try {
    options = parseFlags(command, argv);
  } catch (e) {
    if (e instanceof UsageError) return fail(command as Command<any>, e.message, true);
    throw e;
  }
  if (options === 'help') {
    process.stdout.write(formatHelp(command as Command<any>));
    return 0;
  }
  try {
    return await command.run(options);
  } catch (e) {
    if (e instanceof UsageError) return fail(command as Command<any>, e.message, false);
    if (e instanceof ConfigError) {
      process.stderr.write(`${PROGRAM} ${command.name}: ${e.message}\n`);
      return 2;
    }
    // An outage (AWS or GitLab unreachable, throttled for good) or a bug: exit 1, and the message
    // names the command like every other error (bin/ printed a bare "could not read controller state").
    process.stderr.write(`${PROGRAM} ${command.name}: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
}

/** `run(argv)` of a command module, for tests and callers that hold the module, not the CLI. */
export function runner<F extends Flags>(command: Command<F>): (argv: string[]) => Promise<number> {
  return (argv) => runCommand(command, argv);
}
