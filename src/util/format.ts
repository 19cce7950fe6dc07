// Human-readable output: sizes in binary units, counted nouns, and columns aligned under a header.

const UNITS = ['KiB', 'MiB', 'GiB', 'TiB'];

/** 512 B, 4.0 KiB, 1.2 MiB, ... */
export function humanBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  let v = n / 1024;
  let unit = 0;
  while (v >= 1024 && unit < UNITS.length - 1) {
    v /= 1024;
    unit++;
  }
  return `${v.toFixed(1)} ${UNITS[unit]}`;
}

/** "1 epoch", "2 epochs", "0 problems". */
export function counted(n: number, singular: string, plural = `${singular}s`): string {
  return `${n} ${n === 1 ? singular : plural}`;
}

export interface Column {
  header: string;
  /** numbers read best right-aligned */
  align?: 'left' | 'right';
}

/** Rows under a header, each column as wide as its widest cell, two spaces apart; no trailing blanks. */
export function formatTable(columns: Column[], rows: string[][]): string {
  const widths = columns.map((c, i) => Math.max(c.header.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells.map((cell, i) => (columns[i].align === 'right' ? cell.padStart(widths[i]) : cell.padEnd(widths[i]))).join('  ').trimEnd();
  return [line(columns.map((c) => c.header)), ...rows.map(line)].join('\n');
}
