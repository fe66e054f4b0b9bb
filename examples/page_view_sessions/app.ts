/**
 * Sessions per user: page views "USER TS PAGE" (event time TS in ms) into session windows
 * per user: views less than 30 minutes apart are one session. Each session goes out as
 * "USER START END VIEWS PAGE,PAGE,...\n" (END: the last view + 30 min; its pages in order).
 */
import * as wallaroo from "wallaroo";

export class PageView {
  constructor(
    readonly user: string,
    readonly ts: number,
    readonly page: string,
  ) {}
}

export function applicationSetup(args: string[]) {
  const [inHost, inPort] = wallaroo.tcpParseInputAddrs(args)[0];
  const [outHost, outPort] = wallaroo.tcpParseOutputAddrs(args)[0];
  const ab = new wallaroo.ApplicationBuilder("Page View Sessions");
  ab.newPipeline(
    "page views",
    new wallaroo.TCPSourceConfig(inHost, inPort, decoder, { eventTime: (v: PageView) => v.ts }),
  )
    .toWindows(wallaroo.sessionWindows(wallaroo.minutes(30)).over(Session), byUser)
    .toSink(new wallaroo.TCPSinkConfig(outHost, outPort, encoder));
  return ab.build();
}

export const decoder = wallaroo.decoder({ headerLength: 4, lengthFmt: ">I" }, (b: Buffer) => {
  const [user, ts, page] = b.toString("utf8").split(" ");
  return new PageView(user!, Number(ts), page!);
});

export const byUser = wallaroo.partition((v: PageView) => v.user);

/** An aggregation as a class, as Wallaroo's over(AggregationClass) took it. */
export class Session {
  initialAccumulator(): { pages: string[] } {
    return { pages: [] };
  }
  update(v: PageView, acc: { pages: string[] }): void {
    acc.pages.push(v.page);
  }
  /** a is the older session when two merge: its pages first */
  combine(a: { pages: string[] }, b: { pages: string[] }): { pages: string[] } {
    return { pages: [...a.pages, ...b.pages] };
  }
  output(user: unknown, w: { start: number; end: number }, acc: { pages: string[] }): string {
    return `${String(user)} ${w.start} ${w.end} ${acc.pages.length} ${acc.pages.join(",")}\n`;
  }
}

export const encoder = wallaroo.encoder((line: string) => line);
