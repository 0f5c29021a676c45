/**
 * Whether the CLI's help and usage errors (clipanion's output) may carry ANSI colours: only on a terminal, and
 * never when NO_COLOR is set to anything but the empty string (https://no-color.org). clipanion's own default
 * asks the tty module for a colour depth without looking at the stream, so `vdmap ... --help | less` got escapes.
 */
export function colorsWanted(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean {
  return stream.isTTY === true && (env.NO_COLOR === undefined || env.NO_COLOR === '');
}
