// A real OpenID provider on loopback (the `oidc-provider` package), for
// single sign-on tests: one confidential client that must use PKCE, its
// development sign-in page (any login; the login is the account's `sub`) and
// no consent step (the grant of this first-party client is made as it signs
// in). The claims of each account are read at every sign-in from `accounts`,
// so a test changes them between two sign-ins.
import { generateKeyPairSync, randomBytes } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import Provider from "oidc-provider";

export type AccountClaims = { email?: string; name?: string; [claim: string]: unknown };

export type TestProvider = {
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** login (= sub) → claims besides sub. */
  accounts: Map<string, AccountClaims>;
  close: () => Promise<void>;
};

export async function startOidcProvider(o: { redirectUris: string[]; roleClaim?: string }): Promise<TestProvider> {
  const accounts = new Map<string, AccountClaims>();
  const clientId = "conveyor-test";
  const clientSecret = randomBytes(24).toString("base64url");
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const jwk = { ...privateKey.export({ format: "jwk" }), kid: "test", alg: "RS256", use: "sig" };
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        redirect_uris: o.redirectUris,
        grant_types: ["authorization_code"],
        response_types: ["code"],
        token_endpoint_auth_method: "client_secret_basic",
      },
    ],
    jwks: { keys: [jwk as never] },
    cookies: { keys: [randomBytes(16).toString("hex")] },
    pkce: { required: () => true },
    // The role claim goes with the openid scope; email and profile as usual.
    claims: { openid: ["sub", o.roleClaim ?? "conveyor_role"], email: ["email"], profile: ["name"] },
    findAccount: async (_ctx, sub) => {
      if (!accounts.has(sub)) return undefined;
      return { accountId: sub, claims: async () => ({ sub, ...accounts.get(sub) }) };
    },
    // A first-party client: no consent page, the grant is made at sign-in.
    loadExistingGrant: async (ctx) => {
      const grant = new ctx.oidc.provider.Grant({
        clientId: ctx.oidc.client!.clientId,
        accountId: ctx.oidc.session!.accountId!,
      });
      grant.addOIDCScope("openid email profile");
      await grant.save();
      return grant;
    },
    ttl: { Interaction: 600, Session: 600, Grant: 600, AccessToken: 600, AuthorizationCode: 60, IdToken: 600 },
  });
  server.on("request", provider.callback());
  return {
    issuer,
    clientId,
    clientSecret,
    accounts,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
