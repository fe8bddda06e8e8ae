// The points editor's script: see pipeline/reports/editor.py
const P = JSON.parse(document.getElementById('payload').textContent);
const H = P.holdout, R = P.rules;
const points = P.factors.map(f => f.points.slice());
const locked = P.factors.map(f => f.points.map(() => false));
let threshold = R.sdr_threshold;
let parent = null;  // the figures of the table as it came, shown beside the edited ones

function totals() {
  const n = H.y.length, t = new Array(n).fill(0);
  P.factors.forEach((f, j) => { const c = H.codes[j], p = points[j];
    for (let i = 0; i < n; i++) t[i] += p[c[i]]; });
  for (let i = 0; i < n; i++) {
    if (R.score_min !== null && t[i] < R.score_min) t[i] = R.score_min;
    if (R.score_max !== null && t[i] > R.score_max) t[i] = R.score_max; }
  return t;
}
function auc(t, y) {  // Mann-Whitney: average ranks over ties
  const idx = t.map((_, i) => i).sort((a, b) => t[a] - t[b]);
  let r1 = 0, n1 = 0, i = 0;
  while (i < idx.length) { let k = i; while (k + 1 < idx.length && t[idx[k + 1]] === t[idx[i]]) k++;
    const rank = (i + k) / 2 + 1; for (let m = i; m <= k; m++) if (y[idx[m]]) { r1 += rank; n1++; }
    i = k + 1; }
  const n0 = y.length - n1;
  return (n1 && n0) ? (r1 - n1 * (n1 + 1) / 2) / (n1 * n0) : NaN;
}
function contradictions() {
  const out = [];
  P.factors.forEach((f, j) => { let w = 0, s = 0;
    f.leads.forEach((n, i) => { w += n; s += n * points[j][i]; });
    const avg = w > 0 ? s / w : 0;
    f.leads.forEach((n, i) => { if (f.significant[i] && f.side[i] !== 0 &&
      (points[j][i] - avg) * f.side[i] < 0) out.push([j, i]); }); });
  return out;
}
function pct(x) { return isNaN(x) ? '-' : (100 * x).toFixed(1) + '%'; }
function show(id, value, text) { const e = document.getElementById(id);
  e.dataset.value = String(value); e.textContent = text; }
function recompute() {
  const t = totals(), y = H.y;
  let ready = 0, won = 0;
  for (let i = 0; i < t.length; i++) if (t[i] >= threshold && !H.spam[i]) { ready++; won += y[i]; }
  const a = auc(t, y), rate = ready ? won / ready : NaN;
  show('auc', a, a.toFixed(4));
  if (parent === null) parent = {auc: a, ready: ready, rate: rate};
  document.getElementById('auc-parent').textContent = 'was ' + parent.auc.toFixed(4) +
    '; SDR-ready was ' + parent.ready.toLocaleString('en-US') + ' at ' + pct(parent.rate);
  show('sdr-ready', ready, ready.toLocaleString('en-US') + ' leads');
  document.getElementById('sdr-share').textContent = pct(ready / t.length) + ' of the holdout' +
    (P.weeks ? ', ' + (ready / P.weeks).toFixed(1) + ' per week' : '');
  show('close-rate', isNaN(rate) ? 'NaN' : rate, pct(rate));
  const bad = contradictions();
  show('contradictions', bad.length, String(bad.length));
  document.querySelectorAll('tr.slot').forEach(tr => tr.classList.remove('contradiction'));
  bad.forEach(([j, i]) => document.getElementById('row-' + j + '-' + i).classList.add('contradiction'));
}
function build() {
  const box = document.getElementById('tables');
  P.factors.forEach((f, j) => {
    const h = document.createElement('h2'); h.textContent = f.name + ' (' + f.group + ')';
    box.appendChild(h);
    if (f.event) { const e = document.createElement('p'); e.className = 'event';
      e.id = 'event-' + j; e.textContent = f.event; box.appendChild(e); }
    const tb = document.createElement('table');
    tb.innerHTML = '<thead><tr><th>level</th><th>leads</th><th>close rate</th><th>lift</th>' +
      '<th>p adjusted</th><th>points</th><th>lock</th></tr></thead>';
    const body = document.createElement('tbody');
    f.labels.forEach((label, i) => {
      const tr = document.createElement('tr'); tr.className = 'slot'; tr.id = 'row-' + j + '-' + i;
      const cells = [label, f.leads[i].toLocaleString('en-US'), f.rate[i] === null ? '' : pct(f.rate[i]),
        f.rate[i] === null || !P.overall_rate ? '' : (f.rate[i] / P.overall_rate).toFixed(2),
        f.p_adjusted[i] === null ? '' : f.p_adjusted[i].toPrecision(2)];
      cells.forEach(c => { const td = document.createElement('td'); td.textContent = c; tr.appendChild(td); });
      const inp = document.createElement('input'); inp.type = 'number'; inp.step = '1';
      inp.className = 'pts'; inp.id = 'pts-' + j + '-' + i; inp.value = f.points[i];
      inp.addEventListener('input', () => { const v = parseInt(inp.value, 10);
        if (!isNaN(v)) { points[j][i] = v; inp.classList.toggle('changed', v !== f.points[i]); recompute(); } });
      const lk = document.createElement('input'); lk.type = 'checkbox'; lk.id = 'lock-' + j + '-' + i;
      lk.addEventListener('change', () => { locked[j][i] = lk.checked; inp.disabled = lk.checked; });
      [inp, lk].forEach(e => { const td = document.createElement('td'); td.appendChild(e); tr.appendChild(td); });
      body.appendChild(tr); });
    tb.appendChild(body); box.appendChild(tb); });
  const th = document.getElementById('threshold'); th.value = threshold;
  th.addEventListener('input', () => { const v = parseInt(th.value, 10);
    if (!isNaN(v)) { threshold = v; recompute(); } });
  document.getElementById('save').addEventListener('click', save);
  document.getElementById('reset').addEventListener('click', () => location.reload());
}
function edited() {
  const rules = JSON.parse(JSON.stringify(R)), lock = {};
  P.factors.forEach((f, j) => { const fr = rules.factors[j];
    f.paths.forEach((path, i) => { if (path.length === 1) fr[path[0]] = points[j][i];
      else fr[path[0]][path[1]] = points[j][i];
      if (locked[j][i]) lock[f.name + ' = ' + f.labels[i]] = points[j][i] - points[j][f.reference]; }); });
  rules.sdr_threshold = threshold;
  return {format: P.format, parent: P.parent, locked: lock, rules: rules};
}
function save() {
  const text = JSON.stringify(edited(), null, 2) + '\n';
  const a = document.createElement('a');
  a.href = URL.createObjectURL(new Blob([text], {type: 'application/json'}));
  a.download = 'points_rules_edited.json'; document.body.appendChild(a); a.click(); a.remove();
}
build(); recompute();
