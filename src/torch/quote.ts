// Quoting values read from files in error messages: a hostile file can hold a 100 MB
// string, and an error message must stay readable (and small) whatever the file holds.

/** Longest piece of a file's content an error message repeats. */
export const QUOTE_LIMIT = 80;

/** `text` cut to `max` characters, with an ellipsis where it was cut. */
export function cut(text: string, max = QUOTE_LIMIT): string {
  if (text.length <= max) return text;
  let end = max - 1;
  // Do not split a surrogate pair.
  const code = text.charCodeAt(end - 1);
  if (code >= 0xd800 && code <= 0xdbff) end--;
  return `${text.slice(0, end)}…`;
}

/** A value from a file as JSON text (strings in double quotes), cut to `max` characters. */
export function quote(value: unknown, max = QUOTE_LIMIT): string {
  // A long string is cut before stringifying, so quoting costs no more than the limit.
  if (typeof value === 'string') return cut(JSON.stringify(value.length > max ? value.slice(0, max) : value), max);
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = Object.prototype.toString.call(value);
  }
  return cut(text, max);
}
