/**
 * Keys given twice in one mapping. YAML forbids them and JSON leaves them undefined, but
 * Bun's parsers (as most) keep the last silently: a second `listen:` section pasted at the
 * end of a file would replace the first, its socket mode with it, unnoticed.
 *
 * JSON is scanned exactly. YAML is scanned line by line for block mappings, the style the
 * examples use for sections; what the scan cannot follow for sure (keys inside flow
 * mappings written on one line, mappings inside sequences) is left alone rather than
 * guessed at, so a valid file is never refused.
 */

export interface DuplicateKey {
  /** Where the mapping is, as the schema's messages write it ("" for the top). */
  parent: string;
  key: string;
  firstLine: number;
  line: number;
}

export function duplicateKeys(text: string, json: boolean): DuplicateKey[] {
  return json ? jsonDuplicates(text) : yamlDuplicates(text);
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
/** A block scalar's header (`|`, `>-`, `|2`): the lines indented below it are its text. */
const blockScalarHeader = /^[|>][+-]?\d*[+-]?\s*(?:#.*)?$/;

function yamlDuplicates(text: string): DuplicateKey[] {
  const found: DuplicateKey[] = [];
  const open: Mapping[] = [];
  let textBelow: number | undefined;

  text.split("\n").forEach((raw, index) => {
    const line = raw.replace(/\r$/, "");
    const content = line.trimStart();
    const column = line.length - content.length;

    // The lines of a block scalar are text, whatever they look like.
    if (textBelow !== undefined) {
      if (content === "" || column > textBelow) return;
      textBelow = undefined;
    }
    if (content === "" || content.startsWith("#")) return;
    if (/^(?:---|\.\.\.)(?:\s|$)/.test(content)) return void (open.length = 0);

    // A sequence item closes what was open inside the item before; mappings inside items
    // are not followed.
    if (/^-(?:\s|$)/.test(content)) {
      closeFrom(open, column + 1);
      if (blockScalarHeader.test(content.slice(1).trim())) textBelow = column;
      return;
    }

    const match = blockKey.exec(content);
    if (!match) return;

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

    if (blockScalarHeader.test(match[2] ?? "")) textBelow = column;
  });

  return found;
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
      if (object?.keys && /^\s*:/.test(text.slice(end + 1, end + 64))) {
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

/** The index of the quote that closes the string opening at `start`. */
function endOfString(text: string, start: number): number {
  let i = start + 1;
  while (text[i] !== '"') i += text[i] === "\\" ? 2 : 1;
  return i;
}
