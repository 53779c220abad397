/**
 * Declarations for the parts of gstreamer-superficial 1.7.4 that media/ uses
 * (checked against its C++ sources). Facts that shape the API:
 * - `new Pipeline(desc)` runs gst_parse_launch; a parse error throws, but the
 *   pipeline object is never freed (no finaliser): build one and keep it.
 * - `findChild` wraps a new reference every call and never releases it: look each
 *   element up once and keep the wrapper.
 * - Setting a numeric property always goes through a 32-bit float GValue: large
 *   integers lose precision and enum-typed properties may not take it; put those in
 *   the launch description instead. Getters of 64-bit integers return strings.
 * - `pull()` and `pollBus()` each park a libuv thread-pool thread in a blocking
 *   GStreamer call until a sample/message arrives (raise UV_THREADPOOL_SIZE).
 *   `pull()` before the pipeline is PLAYING (or after EOS) answers `null` at once.
 * - A pulled buffer carries no timestamp, only bytes and the caps structure.
 * - `pollBus` re-arms itself until the pipeline is in the NULL state; the last
 *   poll thread stays blocked until the process exits.
 */
declare module 'gstreamer-superficial' {
  /** A GstStructure as a plain object: `name` plus its fields (64-bit integers as strings). */
  export interface GstStructure {
    name?: string;
    [field: string]: unknown;
  }

  export interface BusMessage extends GstStructure {
    /** The message type name: 'error', 'eos', 'element', 'state-changed', 'warning', ... */
    type: string;
    /** Name of the element that posted it. */
    _src_element_name: string;
    /** For 'error' messages: the GError text and the element path. */
    message?: string;
  }

  export type PropertyValue = string | number | boolean | null | undefined | unknown[];

  /** A wrapped GObject: every GObject property is an accessor. */
  export interface GObjectWrap {
    [property: string]: PropertyValue | ((...args: never[]) => unknown);
  }

  export interface AppSink extends GObjectWrap {
    /** One sample per call; `buf` is null at EOS, on flush or when not playing. */
    pull(callback: (buf: Buffer | null, caps: GstStructure) => void): void;
  }

  export class Pipeline {
    constructor(launch: string);
    play(): void;
    pause(): void;
    stop(): void;
    sendEOS(): void;
    findChild(name: string): GObjectWrap | undefined;
    pollBus(callback: (message: BusMessage) => void): void;
    queryPosition(): number;
    queryDuration(): number;
    seek(positionS: number, flags: number): boolean;
    'auto-flush-bus': boolean;
    delay: number;
    latency: number;
  }
}
