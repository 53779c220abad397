declare module 'qrcode-terminal' {
  /** Renders `input` as a QR code of terminal characters and passes it to `callback` (or prints it). */
  export function generate(
    input: string,
    options: { small?: boolean },
    callback?: (qr: string) => void,
  ): void;
  /** The error-correction level used by generate (a QRErrorCorrectLevel value). */
  export let error: number;
}
