// A real OTLP/HTTP trace receiver on loopback, as a collector's HTTP port
// (4318) would be: POST /v1/traces in JSON (application/json) or protobuf
// (application/x-protobuf), answered 200. It decodes both (the protobuf with a
// small wire-format reader of the few OTLP messages involved) into one flat
// list of spans.
import http from "node:http";
import type { AddressInfo } from "node:net";

export type ReceivedSpan = {
  service: string;
  name: string;
  kind: number;
  traceId: string;
  spanId: string;
  parentSpanId: string;
  traceState: string;
  attributes: Record<string, string | number | boolean>;
  status: { code: number; message: string };
};

export type OtlpReceiver = {
  /** The base endpoint (OTEL_EXPORTER_OTLP_ENDPOINT); traces go to `${url}/v1/traces`. */
  url: string;
  /** Every export request: path and content type. */
  requests: { path: string; contentType: string }[];
  spans: ReceivedSpan[];
  /** With `defer`: decodes what was received so far into `spans` (benchmarks, not to take CPU from what they measure). */
  decodePending: () => void;
  /** Resolves once a span matching `pred` has arrived. */
  waitForSpan: (pred: (s: ReceivedSpan) => boolean, timeoutMs?: number) => Promise<ReceivedSpan>;
  close: () => Promise<void>;
};

/** On `port` of 127.0.0.1 (default: any free one); rejects when it is taken. `defer`: keep bodies, decode on decodePending(). */
export async function startOtlpReceiver(port = 0, opts: { defer?: boolean } = {}): Promise<OtlpReceiver> {
  const requests: OtlpReceiver["requests"] = [];
  const spans: ReceivedSpan[] = [];
  const pending: { body: Buffer; json: boolean }[] = [];
  const decode = (body: Buffer, json: boolean) =>
    json ? fromJson(JSON.parse(body.toString("utf8"))) : fromProtobuf(body);
  const waiters = new Set<() => void>();
  const server = http.createServer(async (req, res) => {
    const parts: Buffer[] = [];
    for await (const c of req) parts.push(c as Buffer);
    const body = Buffer.concat(parts);
    const contentType = String(req.headers["content-type"] ?? "");
    requests.push({ path: req.url ?? "", contentType });
    if (req.method !== "POST" || req.url !== "/v1/traces") return void res.writeHead(404).end();
    try {
      if (opts.defer) pending.push({ body, json: contentType.includes("json") });
      else spans.push(...decode(body, contentType.includes("json")));
    } catch (err) {
      res.writeHead(400).end(String(err));
      return;
    }
    for (const w of waiters) w();
    res.writeHead(200, { "content-type": contentType.includes("json") ? "application/json" : contentType });
    res.end(contentType.includes("json") ? "{}" : "");
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => (server.off("error", reject), resolve()));
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    spans,
    decodePending: () => {
      for (const p of pending.splice(0)) for (const s of decode(p.body, p.json)) spans.push(s);
    },
    waitForSpan: (pred, timeoutMs = 20_000) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const s = spans.find(pred);
          if (!s) return;
          cleanup();
          resolve(s);
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`no such span within ${timeoutMs} ms; received: ${spans.map((s) => s.name).join(", ")}`));
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      }),
    close: () => new Promise((r) => (server.closeAllConnections(), server.close(() => r()))),
  };
}

// --- OTLP/JSON (trace and span ids as hex, as the OTLP/JSON spec and the JS exporter write them) ---

type JsonValue = { stringValue?: string; boolValue?: boolean; intValue?: string | number; doubleValue?: number };
type JsonKv = { key: string; value: JsonValue };
const jsonValue = (v: JsonValue) =>
  v.stringValue ?? v.boolValue ?? (v.intValue !== undefined ? Number(v.intValue) : (v.doubleValue ?? ""));
const jsonAttrs = (kvs: JsonKv[] = []) => Object.fromEntries(kvs.map((kv) => [kv.key, jsonValue(kv.value)]));

function fromJson(doc: {
  resourceSpans?: {
    resource?: { attributes?: JsonKv[] };
    scopeSpans?: {
      spans?: {
        traceId: string;
        spanId: string;
        parentSpanId?: string;
        traceState?: string;
        name: string;
        kind: number;
        attributes?: JsonKv[];
        status?: { code?: number; message?: string };
      }[];
    }[];
  }[];
}): ReceivedSpan[] {
  return (doc.resourceSpans ?? []).flatMap((rs) => {
    const service = String(jsonAttrs(rs.resource?.attributes)["service.name"] ?? "");
    return (rs.scopeSpans ?? []).flatMap((ss) =>
      (ss.spans ?? []).map((s) => ({
        service,
        name: s.name,
        kind: s.kind,
        traceId: s.traceId,
        spanId: s.spanId,
        parentSpanId: s.parentSpanId ?? "",
        traceState: s.traceState ?? "",
        attributes: jsonAttrs(s.attributes),
        status: { code: s.status?.code ?? 0, message: s.status?.message ?? "" },
      })),
    );
  });
}

// --- OTLP/protobuf: TracesData → ResourceSpans → ScopeSpans → Span (opentelemetry-proto trace/v1) ---

type Field = { no: number; wire: number; int?: bigint; bytes?: Buffer };

function fields(buf: Buffer): Field[] {
  const out: Field[] = [];
  let i = 0;
  const varint = () => {
    let v = 0n;
    let shift = 0n;
    for (;;) {
      const b = buf[i++]!;
      v |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) return v;
      shift += 7n;
    }
  };
  while (i < buf.length) {
    const tag = Number(varint());
    const no = tag >> 3;
    const wire = tag & 7;
    if (wire === 0) out.push({ no, wire, int: varint() });
    else if (wire === 1) {
      out.push({ no, wire, bytes: buf.subarray(i, i + 8) });
      i += 8;
    } else if (wire === 2) {
      const len = Number(varint());
      out.push({ no, wire, bytes: buf.subarray(i, i + len) });
      i += len;
    } else if (wire === 5) {
      out.push({ no, wire, bytes: buf.subarray(i, i + 4) });
      i += 4;
    } else throw new Error(`unsupported protobuf wire type ${wire}`);
  }
  return out;
}

const all = (f: Field[], no: number) => f.filter((x) => x.no === no);
const one = (f: Field[], no: number) => f.find((x) => x.no === no);
const str = (x: Field | undefined) => x?.bytes?.toString("utf8") ?? "";
const hex = (x: Field | undefined) => x?.bytes?.toString("hex") ?? "";

function anyValue(buf: Buffer): string | number | boolean {
  const f = fields(buf)[0];
  if (!f) return "";
  if (f.no === 1) return str(f);
  if (f.no === 2) return f.int === 1n;
  if (f.no === 3) return Number(BigInt.asIntN(64, f.int!));
  if (f.no === 4) return f.bytes!.readDoubleLE(0);
  return "";
}

const pbAttrs = (kvs: Field[]) =>
  Object.fromEntries(
    kvs.map((kv) => {
      const f = fields(kv.bytes!);
      return [str(one(f, 1)), anyValue(one(f, 2)?.bytes ?? Buffer.alloc(0))];
    }),
  );

function fromProtobuf(body: Buffer): ReceivedSpan[] {
  return all(fields(body), 1).flatMap((rs) => {
    const r = fields(rs.bytes!);
    const resource = one(r, 1);
    const service = String(pbAttrs(resource ? all(fields(resource.bytes!), 1) : [])["service.name"] ?? "");
    return all(r, 2).flatMap((ss) =>
      all(fields(ss.bytes!), 2).map((sp) => {
        const s = fields(sp.bytes!);
        const status = one(s, 15) ? fields(one(s, 15)!.bytes!) : [];
        return {
          service,
          name: str(one(s, 5)),
          kind: Number(one(s, 6)?.int ?? 0n),
          traceId: hex(one(s, 1)),
          spanId: hex(one(s, 2)),
          parentSpanId: hex(one(s, 4)),
          traceState: str(one(s, 3)),
          attributes: pbAttrs(all(s, 9)),
          status: { code: Number(one(status, 3)?.int ?? 0n), message: str(one(status, 2)) },
        };
      }),
    );
  });
}
