import { ArgumentError, TeError } from "@te/core";
import { type Command, type CommandIO, UsageError } from "./command.js";
import { benchCommand } from "./commands/bench.js";
import { conformanceCommand } from "./commands/conformance.js";
import { infoCommand } from "./commands/info.js";
import { runCommand } from "./commands/run.js";

/**
 * `te`: the command line of @te. Each subcommand lives in src/commands/ and implements Command.
 * Exit codes: 0 success, 1 a check failed (mismatch, failing case) or the command failed, 2 usage.
 */
const COMMANDS: readonly Command[] = [infoCommand, runCommand, conformanceCommand, benchCommand];

function help(): string {
  const lines = ["usage: te <command> [options]", "", "commands:"];
  for (const c of COMMANDS) lines.push(`  ${c.name.padEnd(12)} ${c.summary}`);
  lines.push("", "te <command> --help shows a command's options.");
  return lines.join("\n");
}

async function main(argv: readonly string[]): Promise<number> {
  const io: CommandIO = { out: (line) => console.log(line), err: (line) => console.error(line) };
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    io.out(help());
    return name === undefined ? 2 : 0;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) {
    io.err(`te: unknown command "${name}"\n\n${help()}`);
    return 2;
  }
  if (rest.includes("--help") || rest.includes("-h")) {
    io.out(command.usage);
    return 0;
  }
  try {
    return await command.run(rest, io);
  } catch (e) {
    if (e instanceof UsageError || ArgumentError.isInstance(e)) {
      io.err(`te ${name}: ${(e as Error).message}\n\n${command.usage}`);
      return 2;
    }
    io.err(
      `te ${name}: ${TeError.isInstance(e) ? e.message : e instanceof Error ? (e.stack ?? e.message) : String(e)}`,
    );
    return 1;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    console.error(e);
    process.exitCode = 1;
  },
);
