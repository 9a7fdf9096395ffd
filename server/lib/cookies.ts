// Reading a cookie from a Cookie header: the API's context and the sign-out handler both need it.
export function readCookie(header: string | null, name: string): string | null {
  if (!header) return null;
  for (const part of header.split(";")) {
    const i = part.indexOf("=");
    if (i > 0 && part.slice(0, i).trim() === name) {
      const value = part.slice(i + 1).trim();
      try {
        return decodeURIComponent(value);
      } catch {
        return value; // malformed %-escapes: taken as is (no session has such a token)
      }
    }
  }
  return null;
}
