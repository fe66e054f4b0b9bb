/**
 * Quiet tests: the logs of engines a test runs in-process (runApplication, whose
 * threads log to the process's stderr) go to a file per test instead of between
 * vitest's lines, and are printed only when that test fails. Engines spawned as
 * child processes still log to their stderr, which the helpers read (see
 * WALLAROO_LOG_FILE_PID in src/core/log.ts). Files of passing tests are removed.
 *
 * Set WALLAROO_TEST_LOGS=stderr to see every log as it happens instead.
 */
import { existsSync, mkdirSync, readFileSync, rmdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { afterAll, beforeAll, beforeEach } from "vitest";

const ON = process.env.WALLAROO_TEST_LOGS !== "stderr";
const DIR = join(tmpdir(), `wallaroo-test-logs-${process.pid}`);
const safe = (s: string) => s.replace(/[^A-Za-z0-9._-]+/g, "_").slice(0, 120);
/** the file of engines started outside a test (in beforeAll), shown with any failure of the file */
let fileLog = "";

function use(path: string): void {
  process.env.WALLAROO_LOG_FILE = path;
  process.env.WALLAROO_LOG_FILE_PID = String(process.pid);
}

function show(path: string, what: string): void {
  if (!existsSync(path)) return;
  const text = readFileSync(path, "utf8");
  if (text !== "") process.stderr.write(`--- engine logs ${what} (${path}) ---\n${text}--- end of engine logs ---\n`);
}

if (ON) {
  // vitest passes the suite second; the first parameter must be a destructuring pattern
  // biome-ignore lint/correctness/noEmptyPattern: vitest requires one
  beforeAll(({}, suite) => {
    mkdirSync(DIR, { recursive: true });
    fileLog = join(DIR, `${safe(basename(suite.file?.filepath ?? suite.name))}.log`);
    use(fileLog);
  });

  beforeEach((ctx) => {
    const testLog = join(DIR, `${safe(basename(ctx.task.file.filepath))}--${safe(ctx.task.name)}.log`);
    rmSync(testLog, { force: true });
    use(testLog);
    // After the test's own afterEach hooks (which may stop its engines): its result is final.
    ctx.onTestFinished(({ task }) => {
      use(fileLog);
      if (task.result?.state === "fail") {
        show(fileLog, "of this file's setup");
        show(testLog, `of "${task.name}"`);
      } else rmSync(testLog, { force: true });
    });
  });

  // biome-ignore lint/correctness/noEmptyPattern: vitest requires one
  afterAll(({}, suite) => {
    const failed = suite.tasks.some((t) => t.result?.state === "fail");
    if (!failed) rmSync(fileLog, { force: true });
    try {
      rmdirSync(DIR); // only once empty: a failed test's log stays
    } catch {
      /* not empty */
    }
  });
}
