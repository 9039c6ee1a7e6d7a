/**
 * `gitlab-spot-autoscaler` — the command line. This file dispatches, prints the overall help and
 * the version, and turns the errors a user can cause into a message, a hint and exit code 2 (an
 * outage or a bug: the message and exit code 1, lib/cli/command.ts runCommand).
 *
 * Adding a command (e.g. `pause`; commands/worker-config.ts is a small example):
 *   1. Create commands/<name>.ts that exports
 *        export const command = defineCommand({
 *          name: '<name>',
 *          summary: 'one line for the command list',
 *          synopsis: '--stage NAME (--deployment NAME | --config FILE)',  // optional; else derived from the flags
 *          description: 'paragraphs for <name> --help',                   // optional
 *          flags: {
 *            stage: { type: 'string', value: 'NAME', required: true, description: 'the stage you deployed' },
 *            config: CONFIG_FLAG,                                          // from ./commands/common
 *            pool: { type: 'string', value: 'NAME', description: 'only this pool', defaultText: 'every pool' },
 *            limit: { type: 'number', value: 'N', integer: true, min: 0, default: 10, description: '...' },
 *            json: { type: 'boolean', description: 'print one JSON document' },
 *          },
 *          examples: ['<name> --stage prod --deployment acme-ci'],
 *          async run(opts) { ... return 0; },   // opts is typed from `flags`
 *        });
 *        export const run = runner(command);     // `run(argv)` (./command), for tests that call it directly
 *      Every flag needs a description; a default goes in `default` (applied by the parser) or, when
 *      it is computed elsewhere (the config's region), in `defaultText`. The parser rejects unknown
 *      flags (with "did you mean"), missing values, repeated flags, values out of range or not in
 *      `choices`, and positional arguments; --help and -h are added to every command.
 *   2. In run, throw `UsageError` (./command) for anything the user can fix by calling differently
 *      and let `ConfigError` (lib/config.ts) through: both print to stderr and exit 2. Write the
 *      result to stdout and progress to stderr. Anything else thrown is a bug or an outage: exit 1.
 *   3. Add it to COMMANDS below and to the Commands table of README.md. test/cli/help.test.ts then
 *      checks its --help and usage errors like every other command's.
 */
import { version } from '../../package.json';
import { closest, fail, PROGRAM, runCommand, usageLine, type Command, type Flags } from './command';
import { command as explain } from './commands/explain';
import { drain, pause, resume } from './commands/hold';
import { command as migrate } from './commands/migrate';
import { command as simulate } from './commands/simulate';
import { command as status } from './commands/status';
import { command as userData } from './commands/user-data';
import { command as validate } from './commands/validate';
import { command as workerConfig } from './commands/worker-config';

export const COMMANDS: Command<Flags>[] = [simulate, migrate, explain, validate, status, pause, resume, drain, userData, workerConfig] as Command<any>[];

export const VERSION: string = version;

export function usage(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    `${PROGRAM} ${VERSION} — EC2 spot workers for GitLab CI, the serverless successor to docker+machine`,
    '',
    `Usage: ${PROGRAM} <command> [options]`,
    `       ${PROGRAM} <command> --help     what each option of a command means, and its default`,
    `       ${PROGRAM} --version`,
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    ...COMMANDS.map((c) => usageLine('  ', c)),
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  // The AWS SDK prints a multi-line notice on Node 20 that its releases after January 2027 need
  // Node 22. The SDK this CLI runs is pinned by package-lock.json, whose `engines` npm checks when
  // the lockfile moves, so for this process the notice is noise in every AWS command. Set here,
  // before any client exists; an explicit AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=false
  // still shows it.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const [name, ...rest] = argv;
  if (name === '--help' || name === '-h' || (name === 'help' && rest.length === 0)) {
    process.stdout.write(usage() + '\n');
    return 0;
  }
  if (name === '--version' || name === '-v' || name === '-V') {
    process.stdout.write(`${VERSION}\n`);
    return 0;
  }
  if (!name) return fail(undefined, 'no command given', false);
  if (name === 'help') return main([rest[0], '--help']);
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) {
    const guess = closest(name, COMMANDS.map((c) => c.name));
    return fail(undefined, `unknown command "${name}"${guess ? ` (did you mean ${guess}?)` : ''}; commands: ${COMMANDS.map((c) => c.name).join(', ')}`, false);
  }
  return runCommand(command, rest);
}
