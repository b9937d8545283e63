// Which parts of a message are web links. No DOM: render.js turns the tokens into text nodes
// and <a> elements, so user text never passes through HTML parsing.

// Only http(s) URLs become links; javascript:, data: and everything else stays text.
const URL_PATTERN = /\bhttps?:\/\/[^\s<>"'`]+/gi;
const TRAILING_PUNCTUATION = /[.,;:!?)\]}'"]+$/;

// [{text}, {text, href}, ...]: the texts joined give back `text` exactly.
export function linkTokens(text) {
  const tokens = [];
  let index = 0;
  for (const match of text.matchAll(URL_PATTERN)) {
    let candidate = match[0];
    const trailing = candidate.match(TRAILING_PUNCTUATION);
    if (trailing) candidate = candidate.slice(0, -trailing[0].length);
    const start = match.index;
    let url = null;
    try {
      url = new URL(candidate);
    } catch (error) {
      url = null;
    }
    if (!url || (url.protocol !== "http:" && url.protocol !== "https:")) continue;
    if (start > index) tokens.push({ text: text.slice(index, start) });
    tokens.push({ text: candidate, href: url.href });
    index = start + candidate.length;
  }
  if (index < text.length) tokens.push({ text: text.slice(index) });
  return tokens;
}

// A path on this site, or null: attachment links from the server never lead elsewhere.
export function sameOriginPath(value, origin) {
  if (typeof value !== "string" || !value) return null;
  try {
    const url = new URL(value, origin);
    if (url.origin !== origin) return null;
    return url.pathname + url.search;
  } catch (error) {
    return null;
  }
}
