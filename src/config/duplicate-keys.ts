/**
 * Keys given twice in one mapping. YAML forbids them and JSON leaves them undefined, but
 * Bun's parsers (as most) keep the last silently: a second `listen:` section pasted at the
 * end of a file would replace the first, its socket mode with it, unnoticed.
 *
 * JSON is scanned exactly. YAML is scanned line by line for block mappings, the style the
 * examples use for sections. What the scan cannot follow for sure is left alone rather
 * than guessed at, so that a valid file is never refused: the text of scalars, mappings
 * inside sequence items and flow mappings written on one line are skipped, and at a tag,
 * an anchor, an alias, an explicit key, or quoted or flow text that goes on past its line,
 * the scan stops (what it found before still counts).
 */

export interface DuplicateKey {
  /** Where the mapping is, as the schema's messages write it ("" for the top). */
  parent: string;
  key: string;
  firstLine: number;
  line: number;
}

/** `json` when the file is read as JSON; a YAML file that is JSON is scanned as JSON too. */
export function duplicateKeys(text: string, json: boolean): DuplicateKey[] {
  return json || isJson(text) ? jsonDuplicates(text) : yamlDuplicates(text);
}

function isJson(text: string): boolean {
  if (!/^\s*[{[]/.test(text)) return false;
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

interface Mapping {
  /** The column its keys start at. */
  column: number;
  path: string;
  /** Each key and the line it was first given on. */
  keys: Map<string, number>;
  lastKey?: string;
}

/** A key at the start of a line (after any "- "): plain, or in single or double quotes. */
const blockKey =
  /^("(?:[^"\\]|\\.)*"|'(?:[^']|'')*'|[^\s#'"{[\]},&*!|>%@`-][^#]*?)\s*:(?:\s+(.*))?$/;

function yamlDuplicates(text: string): DuplicateKey[] {
  const found: DuplicateKey[] = [];
  const open: Mapping[] = [];
  // Lines indented deeper than this are text: a block scalar's, a multi-line plain
  // scalar's, or a sequence item's, which the scan does not look into.
  let textBelow: number | undefined;

  const lines = text.replace(/^\uFEFF/, "").split("\n");
  for (const [index, raw] of lines.entries()) {
    const line = raw.replace(/\r$/, "");
    const content = line.trimStart();
    const column = line.length - content.length;

    if (textBelow !== undefined) {
      if (content === "" || column > textBelow) continue;
      textBelow = undefined;
    }
    if (content === "" || content.startsWith("#")) continue;
    if (/^(?:---|\.\.\.)(?:\s|$)/.test(content)) {
      open.length = 0;
      continue;
    }

    // A sequence item closes what was open inside the item before.
    if (/^-(?:\s|$)/.test(content)) {
      closeFrom(open, column + 1);
      const item = valueOf(content.slice(1));
      if (unfollowable(item)) break;
      if (item !== "") textBelow = column;
      continue;
    }

    const match = blockKey.exec(content);
    if (!match) {
      if (/^[{["'?!&*%@`|>]/.test(content)) break;
      continue;
    }

    closeFrom(open, column + 1);
    let mapping = open.at(-1);
    if (!mapping || mapping.column < column) {
      const parent = mapping?.lastKey === undefined ? "" : `${mapping.path}/${mapping.lastKey}`;
      mapping = { column, path: mapping ? parent : "", keys: new Map() };
      open.push(mapping);
    }

    const key = unquote(match[1]!.trim());
    const firstLine = mapping.keys.get(key);
    if (firstLine === undefined) mapping.keys.set(key, index + 1);
    else found.push({ parent: mapping.path, key, firstLine, line: index + 1 });
    mapping.lastKey = key;

    const value = valueOf(match[2] ?? "");
    if (unfollowable(value)) break;
    if (value !== "") textBelow = column;
  }

  return found;
}

/** What follows a key's colon or an item's dash, without a comment: a `#` in quotes stays. */
function valueOf(text: string): string {
  const value = text.trim();
  const quoted = /^(?:"(?:[^"\\]|\\.)*"|'(?:[^']|'')*')/.exec(value)?.[0];
  if (quoted && /^(?:\s+#.*)?$/.test(value.slice(quoted.length))) return quoted;

  return value.replace(/(?:^|\s+)#.*$/, "");
}

/**
 * Values after which the scan cannot tell keys from text for sure, so it stops there
 * (and finds nothing beyond): tags, anchors, aliases, explicit keys, and quoted or flow
 * text left open on its line.
 */
function unfollowable(value: string): boolean {
  if (/^[!&*?%@`]/.test(value)) return true;
  if (value.startsWith('"')) return !/^"(?:[^"\\]|\\.)*"$/.test(value);
  if (value.startsWith("'")) return !/^'(?:[^']|'')*'$/.test(value);
  if (/^[{[]/.test(value)) return !closesOnItsLine(value);
  return false;
}

/** Whether a flow collection's brackets, outside its quoted strings, all close. */
function closesOnItsLine(value: string): boolean {
  const unquoted = value.replace(/"(?:[^"\\]|\\.)*"|'(?:[^']|'')*'/g, "");
  if (/["']/.test(unquoted)) return false;

  let depth = 0;
  for (const char of unquoted) {
    if (char === "{" || char === "[") depth++;
    if (char === "}" || char === "]") depth--;
  }
  return depth === 0;
}

/** Closes the mappings that start at `column` or deeper. */
function closeFrom(open: Mapping[], column: number): void {
  while (open.length > 0 && open.at(-1)!.column >= column) open.pop();
}

function unquote(key: string): string {
  if (key.startsWith('"')) {
    try {
      return JSON.parse(key) as string;
    } catch {
      return key;
    }
  }
  if (key.startsWith("'")) return key.slice(1, -1).replaceAll("''", "'");
  return key;
}

/** JSON that JSON.parse accepted, token by token: strings, and the brackets around them. */
function jsonDuplicates(text: string): DuplicateKey[] {
  const found: DuplicateKey[] = [];
  // One entry per open object ({ keys }) or array (undefined), with its path.
  const open: { path: string; keys?: Map<string, number>; lastKey?: string }[] = [];
  let line = 1;

  for (let i = 0; i < text.length; i++) {
    const char = text[i]!;
    if (char === "\n") line++;

    if (char === "{" || char === "[") {
      const parent = open.at(-1);
      const path = parent ? `${parent.path}/${parent.lastKey ?? "*"}` : "";
      open.push({
        path: open.length === 0 ? "" : path,
        keys: char === "{" ? new Map() : undefined,
      });
    } else if (char === "}" || char === "]") {
      open.pop();
    } else if (char === '"') {
      const end = endOfString(text, i);
      const object = open.at(-1);
      if (object?.keys && text[skipSpace(text, end + 1)] === ":") {
        const key = JSON.parse(text.slice(i, end + 1)) as string;
        const firstLine = object.keys.get(key);
        if (firstLine === undefined) object.keys.set(key, line);
        else found.push({ parent: object.path, key, firstLine, line });
        object.lastKey = key;
      }
      i = end;
    }
  }

  return found;
}

/** The index of the first character at or after `start` that is not white space. */
function skipSpace(text: string, start: number): number {
  let i = start;
  while (i < text.length && /\s/.test(text[i]!)) i++;
  return i;
}

/** The index of the quote that closes the string opening at `start`. */
function endOfString(text: string, start: number): number {
  let i = start + 1;
  while (text[i] !== '"') i += text[i] === "\\" ? 2 : 1;
  return i;
}
