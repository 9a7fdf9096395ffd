import { describe, expect, it } from "vitest";
import { createUrlGuard, isPublicAddress, TargetRefused } from "../../server/outbound/url-guard";

describe("HTTP_ALLOWED_HOSTS", () => {
  it("classifies loopback, private, link-local and other reserved addresses as not public", () => {
    for (const ip of [
      "127.0.0.1",
      "10.1.2.3",
      "172.16.0.1",
      "172.31.255.255",
      "192.168.1.1",
      "169.254.169.254",
      "100.64.0.1",
      "0.0.0.0",
      "::1",
      "fe80::1",
      "fd00::1",
      "::ffff:127.0.0.1",
      "::ffff:10.0.0.1",
      "::ffff:7f00:1",
    ])
      expect(isPublicAddress(ip), ip).toBe(false);
    for (const ip of ["8.8.8.8", "1.1.1.1", "172.32.0.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
      expect(isPublicAddress(ip), ip).toBe(true);
  });

  it("unset: refuses loopback, private and link-local targets (incl. cloud metadata), allows public ones", async () => {
    const guard = createUrlGuard(undefined);
    for (const url of [
      "http://127.0.0.1/x",
      "http://localhost:8080/",
      "http://10.0.0.5/",
      "http://192.168.0.10/",
      "http://169.254.169.254/latest/meta-data",
      "http://[::1]/",
      "http://[fe80::1]/",
      "http://[::ffff:127.0.0.1]/",
      "http://[::ffff:a9fe:a9fe]/",
      "http://0x7f000001/",
      "http://2130706433/",
    ])
      await expect(guard(url), url).rejects.toBeInstanceOf(TargetRefused);
    await expect(guard("http://8.8.8.8/")).resolves.toBeUndefined();
  });

  it("a list allows exactly its hosts and patterns (private ones too), nothing else", async () => {
    const guard = createUrlGuard("127.0.0.1, *.internal.example ,api.example.com");
    await expect(guard("http://127.0.0.1:9000/")).resolves.toBeUndefined();
    await expect(guard("https://pay.internal.example/")).resolves.toBeUndefined();
    await expect(guard("https://api.example.com/")).resolves.toBeUndefined();
    await expect(guard("https://internal.example/")).rejects.toThrow(/not in HTTP_ALLOWED_HOSTS/);
    await expect(guard("https://evil.example/")).rejects.toThrow(/not in HTTP_ALLOWED_HOSTS/);
    await expect(guard("http://8.8.8.8/")).rejects.toThrow(/not in HTTP_ALLOWED_HOSTS/);
  });

  it("* allows anything", async () => {
    await expect(createUrlGuard("*")("http://10.0.0.1/")).resolves.toBeUndefined();
  });
});
