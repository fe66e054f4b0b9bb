/**
 * The single-threaded reference interpreter of combo-app.ts: the outputs the
 * engine must produce for one connection, whatever the number of workers.
 */
import { Counter, Msg, keyOf, type StepKind } from "../fixtures/combo-app.js";

export function referenceOutputs(kinds: StepKind[], inputs: number[]): string[] {
  return referenceRun(kinds, inputs).outputs;
}

/**
 * The outputs, and how many messages each state instance saw (by its trace name:
 * "stf1", "prt2k3"), which later filters may hide from the outputs.
 */
export function referenceRun(kinds: StepKind[], inputs: number[]): { outputs: string[]; seen: Map<string, number> } {
  const single = kinds.map(() => new Counter());
  const keyed = kinds.map(() => new Map<number, Counter>());
  const out: string[] = [];
  const seen = new Map<string, number>();
  const run = (i: number, m: Msg): void => {
    if (i === kinds.length) {
      out.push(`${m.t}=${m.v}`);
      return;
    }
    switch (kinds[i]) {
      case "to":
        if (m.v % 7 !== 3) run(i + 1, m.step(`to${i}`, 3));
        return;
      case "parallel":
        run(i + 1, m.step(`par${i}a`, 5));
        if (m.v % 2 !== 0) run(i + 1, m.step(`par${i}b`, 7));
        return;
      case "stateful": {
        const c = single[i];
        c.n++;
        seen.set(`stf${i}`, c.n);
        run(i + 1, m.step(`stf${i}#${c.n}`, 11));
        return;
      }
      case "partition": {
        const k = keyOf(m);
        let c = keyed[i].get(k);
        if (!c) keyed[i].set(k, (c = new Counter()));
        c.n++;
        seen.set(`prt${i}k${k}`, c.n);
        run(i + 1, m.step(`prt${i}k${k}#${c.n}`, 13));
      }
    }
  };
  for (const v of inputs) run(0, new Msg(v, `m${v}`));
  return { outputs: out, seen };
}

export function allTopologies(maxDepth: number): StepKind[][] {
  const kinds: StepKind[] = ["to", "parallel", "stateful", "partition"];
  const out: StepKind[][] = [];
  let level: StepKind[][] = [[]];
  for (let d = 1; d <= maxDepth; d++) {
    level = level.flatMap((prefix) => kinds.map((k) => [...prefix, k]));
    out.push(...level);
  }
  return out;
}
