// Tiny hand-written SVG charts (no dependency): grouped horizontal bars.
const esc = (s) => String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;");
const COLORS = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#b07aa1"];

/**
 * rows: [{ label, values: [number|null per series] }], series: names; log: log10 axis.
 * Returns an SVG document.
 */
export function barChart({ title, unit, rows, series, log = false, fmt = (v) => v.toPrecision(3) }) {
  const barH = 14,
    gap = 10,
    left = 150,
    width = 460,
    right = 90;
  const top = 40 + 16 * Math.ceil(series.length / 3);
  const vals = rows.flatMap((r) => r.values).filter((v) => v != null && v > 0);
  const max = Math.max(...vals, 1e-9);
  const min = log ? Math.min(...vals) : 0;
  const lo = log ? Math.floor(Math.log10(min)) : 0;
  const hi = log ? Math.ceil(Math.log10(max)) : max;
  const x = (v) => (log ? ((Math.log10(v) - lo) / Math.max(hi - lo, 1)) * width : (v / hi) * width);
  const groupH = series.length * barH + gap;
  const h = top + rows.length * groupH + 30;
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${left + width + right}" height="${h}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="10" y="18" font-size="14" font-weight="bold">${esc(title)}</text>`,
  ];
  series.forEach((s, i) => {
    const lx = 10 + (i % 3) * 200,
      ly = 34 + 16 * Math.floor(i / 3);
    out.push(
      `<rect x="${lx}" y="${ly - 9}" width="10" height="10" fill="${COLORS[i % COLORS.length]}"/><text x="${lx + 14}" y="${ly}">${esc(s)}</text>`,
    );
  });
  rows.forEach((r, gi) => {
    const y0 = top + gi * groupH;
    out.push(
      `<text x="${left - 6}" y="${y0 + (series.length * barH) / 2 + 4}" text-anchor="end">${esc(r.label)}</text>`,
    );
    r.values.forEach((v, si) => {
      const y = y0 + si * barH;
      if (v == null || !(v > 0)) {
        out.push(`<text x="${left + 4}" y="${y + barH - 3}" fill="#999">n/a</text>`);
        return;
      }
      const w = Math.max(1, x(v));
      out.push(
        `<rect x="${left}" y="${y}" width="${w.toFixed(1)}" height="${barH - 2}" fill="${COLORS[si % COLORS.length]}"/>`,
        `<text x="${(left + w + 4).toFixed(1)}" y="${y + barH - 3}">${esc(fmt(v))}</text>`,
      );
    });
  });
  const axisY = h - 22;
  out.push(`<line x1="${left}" y1="${axisY}" x2="${left + width}" y2="${axisY}" stroke="#333"/>`);
  const ticks = log ? Array.from({ length: hi - lo + 1 }, (_, i) => 10 ** (lo + i)) : [0, hi / 2, hi];
  for (const t of ticks) {
    const tx = left + (log ? x(t) : (t / hi) * width);
    out.push(
      `<line x1="${tx}" y1="${axisY}" x2="${tx}" y2="${axisY + 4}" stroke="#333"/><text x="${tx}" y="${axisY + 15}" text-anchor="middle">${esc(fmt(t))}</text>`,
    );
  }
  out.push(
    `<text x="${left + width}" y="${h - 2}" text-anchor="end" fill="#555">${esc(unit)}${log ? " (log scale)" : ""}</text>`,
    "</svg>",
  );
  return out.join("\n") + "\n";
}
