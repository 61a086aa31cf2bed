// Renders benchmark rows as an SVG bar chart: one panel per workload, groups
// by queue depth, one bar per implementation, each panel on its own scale.
const COLORS = {
  'posix-aio': '#1b7f3b',
  'posix-aio-batch': '#35b35f',
  'posix-aio-aiocb': '#7fd39a',
  'posix-aio-aio': '#0b4d22',
  'posix-aio-nowait-preview': '#9be3b0',
  'fs.promises': '#1f5fa8',
  'fs.read': '#5b93d6',
  'fs.readSync': '#a9c6ec',
  'fs.write': '#5b93d6',
  'fs.createReadStream': '#5b93d6',
  'fs.readFile': '#a9c6ec',
  'fs.promises+io_uring': '#b8452f',
  'fs.read+io_uring': '#e07b53',
  'fs.createReadStream+io_uring': '#e07b53',
};

const esc = (s) => String(s).replace(/[<>&"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c]);
const fmt = (n) =>
  n >= 1e6 ? `${(n / 1e6).toFixed(1)}M` : n >= 1e3 ? `${Math.round(n / 1e3)}k` : String(Math.round(n));

export function renderSvg(rows, info) {
  const workloads = [...new Set(rows.map((r) => r.workload))];
  const impls = [...new Set(rows.map((r) => r.impl))];
  const panelW = 470;
  const panelH = 260;
  const cols = 2;
  const width = cols * panelW + 20;
  // The legend wraps: about 7 px per character plus the swatch.
  const legendRows = Math.max(1, Math.ceil(impls.reduce((w, i) => w + 22 + i.length * 6.5, 0) / (width - 20)));
  const height = Math.ceil(workloads.length / cols) * (panelH + 30) + 90 + legendRows * 18;
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="10" y="20" font-size="15" font-weight="bold">posix-aio vs Node fs: higher is better</text>`,
    `<text x="10" y="38" fill="#555">${esc(`${info.cpus} CPUs, Node ${info.node}, libuv ${info.libuv}, ${info.glibc}`)}</text>`,
  ];
  workloads.forEach((w, wi) => {
    const x0 = 10 + (wi % cols) * panelW;
    const y0 = 60 + Math.floor(wi / cols) * (panelH + 30);
    const wr = rows.filter((r) => r.workload === w);
    const seq = w === 'seqread';
    const val = (r) => (seq ? r.mbPerSec : r.opsPerSec);
    const max = Math.max(...wr.map(val)) * 1.12;
    const depths = [...new Set(wr.map((r) => r.qd))].sort((a, b) => a - b);
    const plotX = x0 + 45;
    const plotW = panelW - 60;
    const plotY = y0 + 20;
    const plotH = panelH - 60;
    out.push(`<text x="${x0}" y="${y0 + 10}" font-weight="bold">${esc(w)} (${seq ? 'MB/s' : 'ops/s'})</text>`);
    out.push(`<line x1="${plotX}" y1="${plotY + plotH}" x2="${plotX + plotW}" y2="${plotY + plotH}" stroke="#999"/>`);
    for (let t = 0; t <= 4; t++) {
      const v = (max / 1.12) * (t / 4);
      const y = plotY + plotH - (v / max) * plotH;
      out.push(`<text x="${plotX - 4}" y="${y + 3}" text-anchor="end" fill="#777">${fmt(v)}</text>`);
      out.push(`<line x1="${plotX}" y1="${y}" x2="${plotX + plotW}" y2="${y}" stroke="#eee"/>`);
    }
    const groupW = plotW / depths.length;
    depths.forEach((qd, di) => {
      const gr = wr.filter((r) => r.qd === qd || seq);
      const list = seq ? wr : gr;
      if (seq && di > 0) return;
      const bw = Math.min(28, (groupW - 10) / list.length);
      const gx = plotX + di * groupW + (groupW - bw * list.length) / 2;
      list.forEach((r, i) => {
        const h = (val(r) / max) * plotH;
        const x = gx + i * bw;
        out.push(
          `<rect x="${x}" y="${plotY + plotH - h}" width="${bw - 2}" height="${h}" fill="${COLORS[r.impl] ?? '#888'}"><title>${esc(`${r.impl} qd=${r.qd}: ${r.opsPerSec} ops/s, ${r.mbPerSec} MB/s`)}</title></rect>`,
        );
        out.push(
          `<text x="${x + (bw - 2) / 2}" y="${plotY + plotH - h - 3}" text-anchor="middle" font-size="9">${fmt(val(r))}</text>`,
        );
      });
      if (!seq)
        out.push(
          `<text x="${plotX + di * groupW + groupW / 2}" y="${plotY + plotH + 14}" text-anchor="middle">qd ${qd}</text>`,
        );
    });
  });
  let lx = 10;
  let ly = height - 4 - legendRows * 18 + 14;
  for (const impl of impls) {
    if (lx + 22 + impl.length * 6.5 > width - 10) {
      lx = 10;
      ly += 18;
    }
    out.push(`<rect x="${lx}" y="${ly - 9}" width="10" height="10" fill="${COLORS[impl] ?? '#888'}"/>`);
    out.push(`<text x="${lx + 14}" y="${ly}">${esc(impl)}</text>`);
    lx += 22 + impl.length * 6.5;
  }
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
