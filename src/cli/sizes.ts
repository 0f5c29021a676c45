/** Sizes as operators write them (512, 4K, 1M, 10G, 1T; powers of 1024) and as the CLI prints them. */
import { VdmapError } from '../errors/error.js';

const units: Record<string, number> = { '': 1, b: 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40, p: 2 ** 50 };

export function parseSize(text: string, what = 'size'): number {
  const match = /^(\d+(?:\.\d+)?)\s*([kmgtpb]?)(?:i?b)?$/i.exec(text.trim());
  const value = match ? Number(match[1]) * units[match[2].toLowerCase()] : NaN;
  if (/^\s*-/.test(text)) throw new VdmapError('VDM_CLI_USAGE', `${what} '${text}' is negative: a size is bytes or a number with K, M, G or T (powers of 1024)`);
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new VdmapError('VDM_CLI_USAGE', `${what} '${text}' is not a size: write bytes or a number with K, M, G or T (powers of 1024)`);
  }
  return value;
}

export function formatSize(bytes: number): string {
  for (const [unit, scale] of [['T', 2 ** 40], ['G', 2 ** 30], ['M', 2 ** 20], ['K', 2 ** 10]] as const) {
    if (bytes >= scale) return `${Number((bytes / scale).toFixed(2))}${unit}`;
  }
  return `${bytes}B`;
}
