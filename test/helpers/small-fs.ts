/**
 * A small real filesystem for full-disk tests: a tmpfs mounted on a fresh directory
 * (needs root: `mount -t tmpfs`). `fill(free)` leaves `free` bytes (whole 4 KiB pages,
 * tmpfs counts pages) by writing a filler file until ENOSPC and cutting it back;
 * `unfill()` removes the filler.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

export const PAGE = 4096;

/**
 * whether this process may mount a tmpfs (root); the tests that need one are skipped otherwise,
 * except under CI, where no test may skip: there they run and fail if the mount is refused
 */
export const canMount: boolean =
  process.env.CI === "true" ||
  (() => {
    if (process.platform !== "linux" || process.getuid?.() !== 0) return false;
    const probe = fs.mkdtempSync(path.join(os.tmpdir(), "wallaroo-fsprobe-"));
    try {
      execFileSync("mount", ["-t", "tmpfs", "-o", "size=16k", "tmpfs", probe], { stdio: "ignore" });
      execFileSync("umount", [probe], { stdio: "ignore" });
      return true;
    } catch {
      return false;
    } finally {
      fs.rmSync(probe, { recursive: true, force: true });
    }
  })();

export interface SmallFs {
  /** the mount point */
  dir: string;
  /** fills the filesystem up to `free` bytes left (a multiple of PAGE) */
  fill(free?: number): void;
  unfill(): void;
  /** bytes free now */
  free(): number;
  unmount(): void;
}

export function mountSmallFs(kib: number): SmallFs {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "wallaroo-smallfs-"));
  execFileSync("mount", ["-t", "tmpfs", "-o", `size=${kib}k`, "tmpfs", dir]);
  const filler = path.join(dir, "filler");
  const free = () => {
    const s = fs.statfsSync(dir);
    return s.bavail * s.bsize;
  };
  return {
    dir,
    free,
    fill(left = 0) {
      const fd = fs.openSync(filler, "a");
      try {
        const page = Buffer.alloc(PAGE, 0x55);
        for (;;) {
          try {
            if (fs.writeSync(fd, page) < PAGE) break;
          } catch (err) {
            if ((err as NodeJS.ErrnoException).code === "ENOSPC") break;
            throw err;
          }
        }
        const size = fs.fstatSync(fd).size;
        fs.ftruncateSync(fd, Math.max(0, Math.floor(size / PAGE) * PAGE - left));
      } finally {
        fs.closeSync(fd);
      }
      if (free() !== left) throw new Error(`small fs: wanted ${left} bytes free, ${free()} are`);
    },
    unfill() {
      fs.rmSync(filler, { force: true });
    },
    unmount() {
      execFileSync("umount", ["-l", dir]);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
