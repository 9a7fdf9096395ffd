import { describe, expect, it } from "vitest";
import { childTraceParent, parseTraceParent, parseTraceState, readTraceHeaders } from "../../server/lib/trace-context";
import { parseEnv } from "../../server/env";

const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN = "00f067aa0ba902b7";
const VALID = `00-${TRACE}-${SPAN}-01`;

describe("traceparent (W3C Trace Context)", () => {
  it("reads a valid header, with surrounding whitespace", () => {
    expect(parseTraceParent(VALID)).toEqual({ traceId: TRACE, spanId: SPAN, flags: "01" });
    expect(parseTraceParent(`  ${VALID} `)).toEqual({ traceId: TRACE, spanId: SPAN, flags: "01" });
    expect(parseTraceParent(`00-${TRACE}-${SPAN}-00`)?.flags).toBe("00");
  });

  it.each([
    ["absent", null],
    ["empty", ""],
    ["upper-case hex", VALID.toUpperCase()],
    ["version ff", `ff-${TRACE}-${SPAN}-01`],
    ["version 00 with a fifth field", `${VALID}-extra`],
    ["all-zero trace id", `00-${"0".repeat(32)}-${SPAN}-01`],
    ["all-zero parent id", `00-${TRACE}-${"0".repeat(16)}-01`],
    ["short trace id", `00-${TRACE.slice(1)}-${SPAN}-01`],
    ["long parent id", `00-${TRACE}-${SPAN}0-01`],
    ["non-hex flags", `00-${TRACE}-${SPAN}-0g`],
    ["two headers joined", `${VALID}, ${VALID}`],
    ["garbage", "hello"],
  ])("ignores a malformed one: %s", (_what, header) => {
    expect(parseTraceParent(header)).toBeNull();
  });

  it("reads a later version by its first four fields and keeps it as version 00", () => {
    expect(readTraceHeaders((n) => (n === "traceparent" ? `cc-${TRACE}-${SPAN}-01-whatever-comes` : null))).toEqual({
      parent: VALID,
      state: null,
    });
  });

  it("makes a child: same trace id and flags, a new parent id", () => {
    const child = childTraceParent(`00-${TRACE}-${SPAN}-03`);
    const p = parseTraceParent(child)!;
    expect(p.traceId).toBe(TRACE);
    expect(p.flags).toBe("03");
    expect(p.spanId).not.toBe(SPAN);
    expect(childTraceParent(VALID, "1111111111111111")).toBe(`00-${TRACE}-1111111111111111-01`);
  });
});

describe("tracestate", () => {
  it("keeps valid list members, without optional whitespace and empty members", () => {
    expect(parseTraceState("rojo=00f067aa0ba902b7, congo=t61rcWkgMzE")).toBe("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
    expect(parseTraceState(" ,a=1,, tenant@sys=x y ")).toBe("a=1,tenant@sys=x y");
  });

  it.each([
    ["a key with upper case", "Rojo=1"],
    ["no value", "rojo"],
    ["a value with '='", "rojo=a=b"],
    ["a duplicate key", "a=1,a=2"],
    ["a non-ASCII value", "a=é"],
    ["33 members", Array.from({ length: 33 }, (_, i) => `k${i}=v`).join(",")],
    ["nothing but commas", ",,"],
  ])("drops a malformed one: %s", (_what, header) => {
    expect(parseTraceState(header)).toBeNull();
  });

  it("truncates past 512 characters by dropping members from the end", () => {
    const members = Array.from({ length: 10 }, (_, i) => `k${i}=${"v".repeat(100)}`);
    const kept = parseTraceState(members.join(","))!;
    expect(kept.length).toBeLessThanOrEqual(512);
    expect(kept).toBe(members.slice(0, 4).join(","));
  });

  it("is ignored with a malformed traceparent, and kept without one that is valid", () => {
    const headers = (tp: string) => (n: string) => (n === "traceparent" ? tp : n === "tracestate" ? "a=1" : null);
    expect(readTraceHeaders(headers("bogus"))).toBeNull();
    expect(readTraceHeaders(headers(VALID))).toEqual({ parent: VALID, state: "a=1" });
  });
});

describe("tracing settings from the environment", () => {
  it("is off without an OTLP endpoint, or when disabled", () => {
    expect(parseEnv({}).TRACING).toBeNull();
    expect(parseEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318", OTEL_SDK_DISABLED: "true" }).TRACING).toBeNull();
    expect(parseEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318", OTEL_TRACES_EXPORTER: "none" }).TRACING).toBeNull();
  });

  it("appends /v1/traces to the base endpoint; takes the traces endpoint as given; protobuf by default", () => {
    expect(parseEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318/" }).TRACING).toEqual({
      url: "http://c:4318/v1/traces",
      protocol: "http/protobuf",
    });
    expect(
      parseEnv({
        OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318",
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://t:9999/custom",
        OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
      }).TRACING,
    ).toEqual({ url: "http://t:9999/custom", protocol: "http/json" });
  });

  it("names a bad variable", () => {
    expect(() => parseEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: "collector:4318" })).toThrow(
      /OTEL_EXPORTER_OTLP_ENDPOINT: must be a URL starting with http:\/\/ or https:\/\//,
    );
    expect(() => parseEnv({ OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" })).toThrow(
      /OTEL_EXPORTER_OTLP_PROTOCOL: must be http\/protobuf or http\/json \(OTLP over gRPC is not supported/,
    );
    expect(() => parseEnv({ OTEL_TRACES_SAMPLER: "sometimes" })).toThrow(
      /OTEL_TRACES_SAMPLER: must be one of always_on, always_off, traceidratio/,
    );
    expect(() => parseEnv({ OTEL_TRACES_SAMPLER_ARG: "2" })).toThrow(
      /OTEL_TRACES_SAMPLER_ARG: must be a number from 0 to 1/,
    );
  });
});
