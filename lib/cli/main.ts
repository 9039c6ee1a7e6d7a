/**
 * `gitlab-spot-autoscaler` — the command line. Each subcommand lives in commands/<name>.ts and
 * exports `run(argv): Promise<number>`; this file only dispatches and prints help.
 */
import { run as explain } from './commands/explain';
import { run as validate } from './commands/validate';
import { run as userData, USAGE as userDataUsage } from './commands/user-data';
import { run as simulate, USAGE as SIMULATE_USAGE } from './commands/simulate';
import { run as migrate, USAGE as MIGRATE_USAGE, FLAGS as MIGRATE_FLAGS } from './commands/migrate';
import { run as status, USAGE as STATUS_USAGE } from './commands/status';
import { run as workerConfig, USAGE as WORKER_CONFIG_USAGE, FLAGS as WORKER_CONFIG_FLAGS } from './commands/worker-config';

type Command = { summary: string; usage: string; flags?: readonly (readonly [string, string])[]; run: (argv: string[]) => Promise<number> };

export const COMMANDS: Record<string, Command> = {
  simulate: {
    summary: 'replay a job trace through the controller on simulated spot capacity, beside docker+machine; no arguments = the shipped sample week',
    usage: SIMULATE_USAGE,
    run: simulate,
  },
  migrate: {
    summary: "turn a docker+machine config.toml into this project's config (secrets become SSM commands)",
    usage: MIGRATE_USAGE,
    flags: MIGRATE_FLAGS,
    run: migrate,
  },
  explain: {
    summary: 'print the idle settings in force for each pool at given instants (one JSON line per --at)',
    usage: 'explain --config FILE --at ISO8601 [--at ISO8601 ...]',
    run: explain,
  },
  validate: {
    summary: 'check a config file and list every problem with its path',
    usage: 'validate --config FILE',
    run: validate,
  },
  status: {
    summary: 'show a live deployment: workers by state, jobs, idle target, cooldowns, the last pass (SSM + EC2)',
    usage: STATUS_USAGE,
    run: status,
  },
  'user-data': {
    summary: 'print the exact user data (bash script) a worker of a pool boots with',
    usage: userDataUsage,
    run: userData,
  },
  'worker-config': {
    summary: "print the gitlab-runner config.toml a worker of a pool writes (secrets as {{ssm:NAME}} references)",
    usage: WORKER_CONFIG_USAGE,
    flags: WORKER_CONFIG_FLAGS,
    run: workerConfig,
  },
};

export function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((k) => k.length));
  return [
    'gitlab-spot-autoscaler — EC2 spot workers for GitLab CI, the serverless successor to docker+machine',
    '',
    'Usage: gitlab-spot-autoscaler <command> [options]',
    '',
    'Commands:',
    ...Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`),
    '',
    ...Object.values(COMMANDS).map((c) => `  gitlab-spot-autoscaler ${c.usage}`),
    '',
    'Run `gitlab-spot-autoscaler <command> --help` for a command\'s options.',
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage() + '\n');
    return name ? 0 : 2;
  }
  if (name === '--version' || name === '-v') {
    process.stdout.write(`${VERSION}\n`);
    return 0;
  }
  const command = COMMANDS[name];
  if (!command) {
    process.stderr.write(`gitlab-spot-autoscaler: unknown command "${name}" (commands: ${Object.keys(COMMANDS).join(', ')})\n`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    const flags = command.flags ? `\nOptions:\n${command.flags.map(([flag, meaning]) => `  ${flag.padEnd(24)} ${meaning}`).join('\n')}\n` : '';
    process.stdout.write(`Usage: gitlab-spot-autoscaler ${command.usage}\n\n${command.summary}\n${flags}`);
    return 0;
  }
  return command.run(rest);
}

declare const __VERSION__: string | undefined;
const VERSION = typeof __VERSION__ === 'string' ? __VERSION__ : '0.0.0-dev';
