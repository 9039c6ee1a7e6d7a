/**
 * Where a problem is in the config file: line, column and the lines around it (a code frame), for
 * YAML syntax errors and for the settings validation refuses. Pure; lib/config.ts uses it.
 *
 *   not valid YAML/JSON at line 5, column 3: Sequence item without - indicator
 *         4 |     IdleCount: 2
 *       > 5 |   IdleTime: 3
 *           |   ^
 */
import { isMap, isPair, isScalar, isSeq, type Document, type Node, type YAMLError } from 'yaml';

/** 1-based line and column of a character offset. */
export function lineColumn(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, Math.max(0, Math.min(offset, text.length)));
  const line = before.split('\n').length;
  return { line, column: before.length - before.lastIndexOf('\n') };
}

/** The offending line and the one before it, numbered, with carets under [start, end). */
export function codeFrame(text: string, start: number, end = start + 1, indent = '    '): string {
  const lines = text.split('\n');
  const { line, column } = lineColumn(text, start);
  const target = lines[line - 1] ?? '';
  const width = String(line).length;
  const row = (n: number, mark: string) => `${indent}${mark} ${String(n).padStart(width)} | ${lines[n - 1].replace(/\t/g, ' ')}`.trimEnd();
  // Carets stay on the offending line: a range that runs on is cut at its end.
  const carets = Math.max(1, Math.min(end - start, target.length - column + 1));
  return [
    ...(line > 1 && lines[line - 2].trim() ? [row(line - 1, ' ')] : []),
    row(line, '>'),
    `${indent}  ${' '.repeat(width)} | ${' '.repeat(column - 1)}${'^'.repeat(carets)}`,
  ].join('\n');
}

/** A YAML syntax error (the `yaml` package's) as one problem: position, reason, frame. */
export function describeYamlError(text: string, error: YAMLError): string {
  const [start, end] = error.pos;
  const { line, column } = lineColumn(text, start);
  // The package's own message repeats the position and may carry its own frame: keep the reason.
  const reason = error.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
  return `not valid YAML/JSON at line ${line}, column ${column}: ${reason}\n${codeFrame(text, start, end)}`;
}

/** A problem path as lib/config.ts writes it (`pools[0].worker.tags`) -> its segments. */
export function parsePath(path: string): (string | number)[] | undefined {
  if (path === '(root)') return [];
  const segments: (string | number)[] = [];
  const re = /(?:^|\.)([^.[\]\s]+)|\[(\d+)\]/gy;
  let m: RegExpExecArray | null;
  while ((m = re.exec(path))) {
    segments.push(m[2] !== undefined ? Number(m[2]) : m[1]);
    if (re.lastIndex === path.length) return segments;
  }
  return undefined;
}

/** The node a path leads to in the document, or as deep as it goes: the key's node, or the value's. */
function locate(doc: Document, path: (string | number)[], keyHint?: string): [number, number] | undefined {
  let node: unknown = doc.contents;
  let at: [number, number] | undefined;
  const range = (n: unknown): [number, number] | undefined => {
    const r = (n as Node | null)?.range;
    return r ? [r[0], r[1]] : undefined;
  };
  for (const segment of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(segment));
      if (!pair) return at;
      at = range(pair.key);
      node = pair.value;
    } else if (isSeq(node) && typeof segment === 'number' && node.items[segment] !== undefined) {
      node = node.items[segment];
      at = range(node);
    } else return at;
  }
  if (keyHint !== undefined && isMap(node)) {
    const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === keyHint);
    if (pair) return range(pair.key);
  }
  // A scalar value is what is wrong; for a list or a map, its key line says where it is.
  return isScalar(node) ? range(node) : at;
}

/**
 * A validation problem ("pools[0].IdleCount: must be >= 0") with the line and a frame of where
 * that setting is in the file; unchanged when the path is not in the document (a missing setting).
 */
export function locateProblem(text: string, doc: Document, problem: string): string {
  const m = /^(\(root\)|[^\s:]+): /.exec(problem);
  const path = m ? parsePath(m[1]) : undefined;
  if (!path) return problem;
  const unknownKey = /unknown settings? "([^"]+)"/.exec(problem)?.[1];
  const where = locate(doc, path, unknownKey);
  if (!where) return problem;
  const { line, column } = lineColumn(text, where[0]);
  return `${problem} (line ${line}, column ${column})\n${codeFrame(text, where[0], where[1])}`;
}
