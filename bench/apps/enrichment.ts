/**
 * Enrichment benchmark application (bench/enrichment.mjs): lines "ID" -> an async lookup of
 * the ID against a local HTTP service (--lookup host:port, which answers after ~1 ms) ->
 * "ID VALUE\n". --concurrency N is the lookup step's limit of calls in flight per worker.
 */
import http from "node:http";
import * as wallaroo from "wallaroo";

function option(args: string[], name: string, fallback: string): string {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1] : fallback;
}

export function applicationSetup(args: string[]) {
  const [[inHost, inPort]] = wallaroo.tcpParseInputAddrs(args);
  const [[outHost, outPort]] = wallaroo.tcpParseOutputAddrs(args);
  const [lookupHost, lookupPort] = option(args, "--lookup", "127.0.0.1:8099").split(":");
  const concurrency = Number(option(args, "--concurrency", "64"));
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  const get = (id: string) =>
    new Promise<string>((resolve, reject) => {
      http
        .get({ host: lookupHost, port: Number(lookupPort), path: `/${id}`, agent }, (res) => {
          let body = "";
          res.setEncoding("utf8");
          res.on("data", (d: string) => {
            body += d;
          });
          res.on("end", () => resolve(body));
          res.on("error", reject);
        })
        .on("error", reject);
    });
  const ab = new wallaroo.ApplicationBuilder("enrichment");
  ab.newPipeline(
    "enrich",
    new wallaroo.TCPSourceConfig(
      inHost,
      inPort,
      wallaroo.decoder((b: Buffer) => b.toString()),
    ),
  )
    .to(wallaroo.computation("lookup", async (id: string) => `${id} ${await get(id)}\n`, { concurrency }))
    .toSink(
      new wallaroo.TCPSinkConfig(
        outHost,
        outPort,
        wallaroo.encoder((s: string) => s),
      ),
    );
  return ab.build();
}
