/**
 * The page_view_sessions output computed single-threaded, written apart from the app: per
 * user, views in time order, a new session when a view comes 30 min or more after the
 * previous one; one line "USER START END VIEWS PAGES\n" per session (END: last view +
 * 30 min), ordered by END, then user. `closedBy` keeps the sessions the input itself closes
 * (END at or before the largest event time); the rest close once the input is idle.
 */
const GAP = 30 * 60_000;

interface Sess {
  user: string;
  start: number;
  last: number;
  pages: string[];
}

function sessions(input: Buffer[]): Sess[] {
  const views = input.map((b) => b.toString("utf8").split(" ")).map(([u, t, p]) => ({ u: u!, t: Number(t), p: p! }));
  const byUser = new Map<string, { t: number; p: string }[]>();
  for (const v of views) byUser.set(v.u, [...(byUser.get(v.u) ?? []), v]);
  const out: Sess[] = [];
  for (const [user, vs] of byUser) {
    vs.sort((a, b) => a.t - b.t);
    let cur: Sess | null = null;
    for (const v of vs) {
      if (cur === null || v.t - cur.last >= GAP) {
        if (cur !== null) out.push(cur);
        cur = { user, start: v.t, last: v.t, pages: [] };
      }
      cur.last = v.t;
      cur.pages.push(v.p);
    }
    if (cur !== null) out.push(cur);
  }
  return out.sort((a, b) => a.last - b.last || (a.user < b.user ? -1 : 1));
}

const line = (s: Sess) => `${s.user} ${s.start} ${s.last + GAP} ${s.pages.length} ${s.pages.join(",")}\n`;

export function expected(input: Buffer[]): string[] {
  return sessions(input).map(line);
}

export function closedBy(input: Buffer[]): string[] {
  const max = Math.max(...input.map((b) => Number(b.toString("utf8").split(" ")[1])));
  return sessions(input)
    .filter((s) => s.last + GAP <= max)
    .map(line);
}
