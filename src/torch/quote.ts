// Quoting values read from files in error messages: a hostile file can hold a 100 MB
// string, and an error message must stay readable (and small) whatever the file holds.

/** Longest piece of a file's content an error message repeats. */
export const QUOTE_LIMIT = 80;

/** `text` cut to `max` characters, with an ellipsis where it was cut. */
export function cut(text: string, max = QUOTE_LIMIT): string {
  return text.length <= max ? text : ellipsis(text, max - 1);
}

/** The first `keep` characters (without splitting a surrogate pair) and an ellipsis. */
function ellipsis(text: string, keep: number): string {
  const code = text.charCodeAt(keep - 1);
  return `${text.slice(0, code >= 0xd800 && code <= 0xdbff ? keep - 1 : keep)}…`;
}

/** A value from a file as JSON text (strings in double quotes), cut to `max` characters. */
export function quote(value: unknown, max = QUOTE_LIMIT): string {
  if (typeof value === 'string') {
    // Cut before escaping, so quoting a huge string costs no more than the limit, and
    // keep the closing quote, so the reader sees where the value was cut.
    const inner = JSON.stringify(value.slice(0, max)).slice(1, -1);
    return inner.length <= max - 2 && value.length <= max - 2 ? `"${inner}"` : `"${ellipsis(inner, max - 3)}"`;
  }
  // JSON would show Infinity and NaN as null.
  if (typeof value === 'number') return cut(String(value), max);
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = Object.prototype.toString.call(value);
  }
  return cut(text, max);
}
