// Class names joined by spaces, the false ones left out: long Tailwind lists
// stay readable in parts, and conditions read as arguments.
export const cx = (...parts: (string | false | null | undefined)[]) => parts.filter(Boolean).join(" ");
