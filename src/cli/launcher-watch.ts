/**
 * Stopping when the process that started this one exits (`--no-exit-with-parent`
 * turns it off), for `wallaroo run`, `send` and `receive`.
 *
 * "The process that started it" is not always the parent: `npx wallaroo run ...`
 * is npm → `sh -c wallaroo ...` → node, and a supervisor or script that kills npx
 * means the engine. A SIGTERM to npx kills the shell too (npm forwards it), so the
 * engine's own parent changes; a SIGKILL to npx leaves the shell waiting for the
 * engine, so only the shell's parent changes. So the watch covers the parent and,
 * while that is a launcher (a shell running `-c`, npm, npx, pnpm, yarn), its parent,
 * and so on: the chain up to the first process that is not a launcher (the user's
 * shell, the supervisor, the test). One of them has exited when a process of the
 * chain has a parent other than the one recorded at start (a process whose parent
 * exits is re-parented to init or a subreaper). Polling costs a few reads of /proc
 * per half second; without /proc (macOS) only the direct parent is watched.
 */
import { readFileSync } from "node:fs";

/** The parent pid of `pid` (Linux /proc), or undefined when it is gone or unreadable. */
export function parentOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // "PID (COMM) STATE PPID ...": COMM may hold spaces and parentheses, so parse after the last ")".
    const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    return Number.isInteger(ppid) ? ppid : undefined;
  } catch {
    return undefined;
  }
}

/** Whether `pid` only launched the process below it: a shell running -c, or a package manager. */
export function isLauncher(pid: number): boolean {
  let cmdline: string;
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8");
  } catch {
    return false;
  }
  // npm sets its process title ("npm exec wallaroo run ..."), which overwrites argv with spaces, not NULs.
  const args = cmdline.split(/[\0 ]+/).filter((a) => a !== "");
  const base = (a: string | undefined) => a?.slice(a.lastIndexOf("/") + 1) ?? "";
  if (/^(sh|dash|bash|zsh|ash|ksh)$/.test(base(args[0])) && args.includes("-c")) return true;
  // the package manager as its own executable, or as a script run by node
  return [args[0], args[1]].some((a) => /^(npm|npx|pnpm|pnpx|yarn|corepack)(-cli)?(\.c?js)?$/.test(base(a)));
}

/** The watched chain: the parent, then each launcher's parent (at most 8 deep). */
export function launcherChain(): number[] {
  const chain = [process.ppid];
  for (;;) {
    const last = chain[chain.length - 1]!;
    if (chain.length >= 8 || last <= 1 || !isLauncher(last)) return chain;
    const up = parentOf(last);
    if (up === undefined || up < 1) return chain;
    chain.push(up);
  }
}

/**
 * Calls `onGone` once, with a description, when the process that started this one
 * (through any launchers) exits. Returns a function that ends the watch.
 */
export function watchLauncher(onGone: (what: string) => void): () => void {
  const chain = launcherChain();
  const timer = setInterval(() => {
    let gone: number | undefined;
    if (process.ppid !== chain[0]) gone = chain[0];
    // chain[i]'s parent must still be chain[i + 1]; the last one's own parent is not watched.
    for (let i = 0; gone === undefined && i + 1 < chain.length; i++) {
      if (parentOf(chain[i]!) !== chain[i + 1]) gone = chain[i + 1];
    }
    if (gone === undefined) return;
    clearInterval(timer);
    const at = chain.indexOf(gone);
    onGone(
      at === 0
        ? `the parent process ${gone} exited`
        : `process ${gone}, which started this one through ${at === 1 ? "a launcher" : `${at} launchers`} (pid ${chain.slice(0, at).join(", ")}), exited`,
    );
  }, 500);
  // The watch never keeps the process alive on its own.
  timer.unref();
  return () => clearInterval(timer);
}
