import protobuf from 'protobufjs/minimal.js';
import { doorbell } from './gen/doorbell.js';

/**
 * How many distinct members of a message's `kind` oneof its encoded bytes
 * carry. The generated decoder keeps only the last one it reads (proto3's
 * rule), so a body with two kinds would silently run as the second: the
 * verifier refuses it instead (`undecodable`). The field numbers come from
 * the generated code itself (each member encoded once, its tag read back),
 * so a new kind is covered without a list to keep in step.
 */
export function kindsIn(bytes: Uint8Array, members: ReadonlySet<number>): number {
  const reader = protobuf.Reader.create(bytes);
  const seen = new Set<number>();
  while (reader.pos < reader.len) {
    const tag = reader.uint32();
    const field = tag >>> 3;
    if (members.has(field)) seen.add(field);
    reader.skipType(tag & 7);
  }
  return seen.size;
}

interface Codec {
  encode(message: Record<string, unknown>): { finish(): Uint8Array };
  create(properties: Record<string, unknown>): { kind?: string };
  prototype: object;
}

/** The field numbers of the oneof members named by `names`, read from `codec`'s own encoding. */
function fieldNumbers(codec: Codec, names: readonly string[]): ReadonlySet<number> {
  const numbers = new Set<number>();
  for (const name of names) {
    const bytes = codec.encode({ [name]: {} }).finish();
    const tag = protobuf.Reader.create(bytes).uint32();
    numbers.add(tag >>> 3);
  }
  return numbers;
}

/** The message fields that, when set, become the message's `kind` (the generated oneof getter says so). */
function kindFields(codec: Codec): ReadonlySet<number> {
  const names = Object.keys(codec.prototype).filter((name) => codec.create({ [name]: {} }).kind === name);
  return fieldNumbers(codec, names);
}

export const COMMAND_KIND_FIELDS = kindFields(doorbell.v1.Command as unknown as Codec);
export const EVENT_KIND_FIELDS = kindFields(doorbell.v1.Event as unknown as Codec);
