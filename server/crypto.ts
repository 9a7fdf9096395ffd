// Token hashing and encryption of the secrets Conveyor must be able to read
// back (callback signing secrets). API tokens are long random values, so a
// plain SHA-256 is a sound hash for them (argon2 is for low-entropy passwords).
import { createCipheriv, createDecipheriv, createHash, createHmac, randomBytes } from "node:crypto";

export const sha256Hex = (s: string) => createHash("sha256").update(s).digest("hex");

export const randomSecret = (prefix: string, bytes = 32) => `${prefix}${randomBytes(bytes).toString("base64url")}`;

/** AES-256-GCM; output is base64url(iv | tag | ciphertext). */
export function encrypt(key: Buffer, plaintext: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", key, iv);
  const ct = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), ct]).toString("base64url");
}

export function decrypt(key: Buffer, sealed: string): string {
  const buf = Buffer.from(sealed, "base64url");
  const decipher = createDecipheriv("aes-256-gcm", key, buf.subarray(0, 12));
  decipher.setAuthTag(buf.subarray(12, 28));
  return Buffer.concat([decipher.update(buf.subarray(28)), decipher.final()]).toString("utf8");
}

/** The X-Conveyor-Signature header value for a callback body. */
export const signBody = (secret: string, body: string) =>
  `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;
