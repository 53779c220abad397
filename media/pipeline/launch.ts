/**
 * Typed GStreamer element specs and their two renderings:
 *
 * - `toLaunchString(graph)`: one string for `gst_parse_launch` (gstreamer-superficial's
 *   `new Pipeline(...)`), every string value double-quoted with `\` and `"` escaped;
 * - `toLaunchArgv(graph)`: an argv for `gst-launch-1.0` run without a shell, one
 *   token per element, property, caps and link (gst-launch escapes each token itself).
 *
 * Nothing is pasted: factory names, element names, property names and caps fields must
 * match strict patterns, numbers must be finite, strings may not hold control
 * characters. Anything else throws a `LaunchSpecError` before GStreamer sees it.
 */

export class LaunchSpecError extends Error {
  override name = 'LaunchSpecError';
}

/** A GStreamer fraction such as a frame rate. */
export interface Fraction {
  num: number;
  den: number;
}

/**
 * A property value. `{ enum }` is a bare word (an enum nick or flags such as
 * `zerolatency`); `{ fraction }` renders as `n/d`.
 */
export type PropValue = string | number | boolean | { enum: string } | { fraction: Fraction };

export interface ElementSpec {
  kind: 'element';
  factory: string;
  name?: string;
  props?: Record<string, PropValue | undefined>;
}

export interface CapsSpec {
  kind: 'caps';
  media: string;
  fields: Record<string, number | Fraction | { word: string } | undefined>;
}

/** A reference to a named element (optionally a pad), to start or end a chain: `t.` or `m.sink_1`. */
export interface RefSpec {
  kind: 'ref';
  name: string;
  pad?: string;
}

export type ChainNode = ElementSpec | CapsSpec | RefSpec;
/** Nodes linked in order with `!`. */
export type Chain = readonly ChainNode[];
/** Several chains; they connect through named references. */
export type LaunchGraph = readonly Chain[];

export const el = (factory: string, props?: ElementSpec['props'], name?: string): ElementSpec => ({
  kind: 'element',
  factory,
  ...(props === undefined ? {} : { props }),
  ...(name === undefined ? {} : { name }),
});
export const caps = (media: string, fields: CapsSpec['fields']): CapsSpec => ({
  kind: 'caps',
  media,
  fields,
});
export const ref = (name: string, pad?: string): RefSpec => ({
  kind: 'ref',
  name,
  ...(pad === undefined ? {} : { pad }),
});
export const word = (w: string): { enum: string } => ({ enum: w });

const FACTORY_RE = /^[a-z0-9][a-z0-9_-]{0,63}$/;
const NAME_RE = /^[a-z][a-z0-9_-]{0,63}$/i;
/** A property, or a child pad's property as in `sink_1::xpos`. */
const PROP_RE = /^(?:[a-z][a-z0-9_%]{0,31}::)?[a-z][a-z0-9-]{0,63}$/;
const PAD_RE = /^[a-z][a-z0-9_%]{0,31}$/;
const MEDIA_RE = /^[a-z]+\/[a-z0-9.+-]{1,64}$/;
const WORD_RE = /^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$/;
/** Control characters cannot pass through a launch line (and NUL ends a C string). */
// biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting them is the point
const CONTROL_RE = /[\u0000-\u001f\u007f]/;
const LONE_SURROGATE_RE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
export const MAX_STRING_VALUE = 4096;

function check(re: RegExp, what: string, value: string): string {
  if (typeof value !== 'string' || !re.test(value)) {
    throw new LaunchSpecError(`invalid ${what}: ${JSON.stringify(value)}`);
  }
  return value;
}

function number(what: string, n: number): string {
  if (typeof n !== 'number' || !Number.isFinite(n)) {
    throw new LaunchSpecError(`${what} must be a finite number, got ${String(n)}`);
  }
  // Integers print exactly (no exponent up to 2^53); fractions print in plain notation.
  if (Number.isInteger(n)) {
    if (!Number.isSafeInteger(n)) throw new LaunchSpecError(`${what} is not a safe integer: ${n}`);
    return n.toString();
  }
  const s = n.toString();
  if (/e/i.test(s)) throw new LaunchSpecError(`${what} needs an exponent to print: ${s}`);
  return s;
}

function fraction(what: string, f: Fraction): string {
  if (!Number.isSafeInteger(f.num) || !Number.isSafeInteger(f.den) || f.den <= 0) {
    throw new LaunchSpecError(`${what} must be an integer fraction with a positive denominator`);
  }
  return `${f.num}/${f.den}`;
}

/** Checks a string property value; returns it unchanged. */
export function checkString(what: string, s: string): string {
  if (s.length > MAX_STRING_VALUE) throw new LaunchSpecError(`${what} is longer than ${MAX_STRING_VALUE}`);
  if (CONTROL_RE.test(s)) throw new LaunchSpecError(`${what} holds a control character`);
  if (LONE_SURROGATE_RE.test(s)) throw new LaunchSpecError(`${what} is not well-formed Unicode`);
  return s;
}

/** Quotes a checked string for gst_parse_launch: `"` and `\` get a backslash. */
export function quote(s: string): string {
  return `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/**
 * A string property's text as GStreamer deserialises it: a text that starts
 * and ends with `"` is unwrapped as a quoted string (`"a"` becomes `a`, a
 * lone `"` fails), and `NULL` means no string. Those come wrapped once more,
 * with the same escapes, so that every string arrives unchanged. (Only for
 * the launch string: the argv style's values are the clip assembly's own
 * scratch paths.)
 */
function gstString(s: string): string {
  return s === 'NULL' || (s.startsWith('"') && s.endsWith('"')) ? quote(s) : s;
}

type Style = 'string' | 'argv';

function propValue(what: string, v: PropValue, style: Style): string {
  if (typeof v === 'string') {
    const s = checkString(what, v);
    return style === 'string' ? quote(gstString(s)) : s;
  }
  if (typeof v === 'number') return number(what, v);
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if ('enum' in v) return check(WORD_RE, `${what} (enum)`, v.enum);
  if ('fraction' in v) return fraction(what, v.fraction);
  throw new LaunchSpecError(`${what}: unsupported value`);
}

function capsText(c: CapsSpec): string {
  const parts = [check(MEDIA_RE, 'caps media type', c.media)];
  for (const [k, v] of Object.entries(c.fields)) {
    if (v === undefined) continue;
    check(NAME_RE, 'caps field', k);
    let text: string;
    if (typeof v === 'number') text = number(`caps ${k}`, v);
    else if ('word' in v) text = check(WORD_RE, `caps ${k}`, v.word);
    else text = fraction(`caps ${k}`, v);
    parts.push(`${k}=${text}`);
  }
  return parts.join(',');
}

function nodeTokens(node: ChainNode, style: Style): string[] {
  switch (node.kind) {
    case 'element': {
      const out = [check(FACTORY_RE, 'element factory', node.factory)];
      if (node.name !== undefined) out.push(`name=${check(NAME_RE, 'element name', node.name)}`);
      for (const [k, v] of Object.entries(node.props ?? {})) {
        if (v === undefined) continue;
        check(PROP_RE, `property of ${node.factory}`, k);
        out.push(`${k}=${propValue(`${node.factory}.${k}`, v, style)}`);
      }
      return out;
    }
    case 'caps':
      return [capsText(node)];
    case 'ref':
      return [
        `${check(NAME_RE, 'element name', node.name)}.${node.pad === undefined ? '' : check(PAD_RE, 'pad name', node.pad)}`,
      ];
  }
}

function tokens(graph: LaunchGraph, style: Style): string[] {
  if (graph.length === 0) throw new LaunchSpecError('empty pipeline');
  const out: string[] = [];
  for (const chain of graph) {
    if (chain.length === 0) throw new LaunchSpecError('empty chain');
    chain.forEach((node, i) => {
      if (i > 0) out.push('!');
      out.push(...nodeTokens(node, style));
    });
  }
  return out;
}

/** The description for gst_parse_launch (gstreamer-superficial). */
export function toLaunchString(graph: LaunchGraph): string {
  return tokens(graph, 'string').join(' ');
}

/** Arguments for `gst-launch-1.0` started without a shell. */
export function toLaunchArgv(graph: LaunchGraph): string[] {
  return tokens(graph, 'argv');
}

/** Every element factory a graph uses, for a start-up check. */
export function factoriesOf(graph: LaunchGraph): string[] {
  const set = new Set<string>();
  for (const chain of graph) for (const n of chain) if (n.kind === 'element') set.add(n.factory);
  return [...set].sort();
}
