/** The `wallaroo` command: dispatches to run, send and receive. */
import { readFileSync } from "node:fs";
import { runMain } from "./run.js";

const HELP = `Usage: wallaroo <command> [options]

Commands:
  run APP [flags] [app args]   run a Wallaroo application (TypeScript or JavaScript)
  send [options]               send framed messages (lines of a file or binary records) to a TCP source
  receive [options]            listen for a TCP sink's output; write it to a file or stdout, or count it
  init DIR                     create a project: package.json, tsconfig.json, an app and its test
  kafka topics|produce|consume create, list and delete topics; produce lines, print records

Run "wallaroo <command> --help" for the options of each; "wallaroo --version"
prints the version.
`;

/** The version in this package's package.json (dist/cli/main.js -> ../../package.json). */
function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version?: string };
  return pkg.version ?? "unknown";
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case "run":
      return runMain(rest);
    case "init": {
      const { initMain } = await import("./init.js");
      return initMain(rest);
    }
    case "send": {
      const { sendMain } = await import("./send.js");
      return sendMain(rest);
    }
    case "kafka": {
      const { kafkaMain } = await import("./kafka.js");
      return kafkaMain(rest);
    }
    case "receive": {
      const { receiveMain } = await import("./receive.js");
      return receiveMain(rest);
    }
    case "--version":
    case "-v":
    case "version":
      process.stdout.write(`wallaroo ${version()}\n`);
      return 0;
    case undefined:
    case "--help":
    case "-h":
    case "help":
      process.stdout.write(HELP);
      return command === undefined ? 2 : 0;
    default:
      process.stderr.write(`wallaroo: unknown command ${JSON.stringify(command)}\n\n${HELP}`);
      return 2;
  }
}
