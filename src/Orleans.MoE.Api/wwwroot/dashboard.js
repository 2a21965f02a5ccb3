// Orleans.MoE dashboard: polls GET /api/mesh and draws silos, expert placement and events,
// and drives a streaming chat playground against POST /v1/chat/completions.
// Every piece of server data reaches the DOM through textContent or attributes, never innerHTML.

const POLL_MS = 1500;
const MESH_TIMEOUT_MS = 5000;
const GONE_MS = 60_000;
const MAX_EVENTS = 100;
const DENSE_EXPERTS = 16; // wider models get smaller cells,
const TINY_EXPERTS = 48; // and wider still unlabelled ones (names in the tooltip and the detail line)
const KEY_STORAGE = 'orleans-moe.apiKey';

// Viridis (sequential, colour-blind safe); the same stops are the legend gradient in dashboard.css.
const LOAD_STOPS = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
// Tableau 10 (categorical) for "colour by silo".
const SILO_COLOURS = [[78, 121, 167], [242, 142, 43], [225, 87, 89], [118, 183, 178], [89, 161, 79],
  [237, 201, 72], [176, 122, 161], [255, 157, 167], [156, 117, 95], [186, 176, 172]];

const $ = id => document.getElementById(id);

const state = {
  colourBy: 'load',
  lastMesh: null,
  lastUpdate: 0,
  previousSilos: new Map(),
  gone: new Map(),
  playground: null,
};
const heatmaps = new WeakMap();
const paints = new WeakMap(); // cell -> the background|colour last written

// ---------- DOM and formatting helpers ----------

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === 'class') node.className = value;
    else if (name === 'text') node.textContent = value;
    else node.setAttribute(name, value);
  }
  node.append(...children.filter(child => child != null && child !== false));
  return node;
}

function setChildren(container, nodes) {
  const current = container.children;
  const unchanged = nodes.length === current.length && nodes.every((node, i) => current[i] === node);
  if (!unchanged) container.replaceChildren(...nodes);
}

const byName = (a, b) => a.localeCompare(b, 'en', { numeric: true });
const integers = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const formatInt = n => (Number.isFinite(n) ? integers.format(n) : '–');
const formatFixed = (n, digits) => (Number.isFinite(n) ? n.toFixed(digits) : '–');
const formatMs = n => formatFixed(n, n < 10 ? 2 : n < 100 ? 1 : 0);
const formatTime = iso => new Date(iso).toLocaleTimeString('en-GB', { hour12: false });

function formatBytes(bytes) {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${formatFixed(value, unit === 0 || value >= 100 ? 0 : 1)} ${units[unit]}`;
}

const css = rgb => `rgb(${rgb.join(' ')})`;
const isLight = ([r, g, b]) => 0.2126 * r + 0.7152 * g + 0.0722 * b > 140;

function loadColour(fraction) {
  const position = Math.min(1, Math.max(0, fraction)) * (LOAD_STOPS.length - 1);
  const i = Math.min(Math.floor(position), LOAD_STOPS.length - 2);
  const t = position - i;
  return LOAD_STOPS[i].map((c, k) => Math.round(c + (LOAD_STOPS[i + 1][k] - c) * t));
}

function siloColour(name) {
  const number = Number.parseInt(name.replace(/^\D+/, ''), 10);
  const index = Number.isFinite(number) ? number - 1 : [...name].reduce((h, ch) => h * 31 + ch.charCodeAt(0), 0);
  return SILO_COLOURS[((index % SILO_COLOURS.length) + SILO_COLOURS.length) % SILO_COLOURS.length];
}

// ---------- API access (Bearer key, 401 handling, OpenAI-style errors) ----------

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function authHeaders() {
  const key = localStorage.getItem(KEY_STORAGE);
  return key ? { Authorization: `Bearer ${key}` } : {};
}

async function errorMessage(response) {
  const text = await response.text();
  try {
    return JSON.parse(text).error?.message ?? text;
  } catch {
    return text || response.statusText || `HTTP ${response.status}`;
  }
}

async function api(path, init = {}) {
  const response = await fetch(path, { ...init, headers: { ...authHeaders(), ...init.headers } });
  if (response.status === 401) showKeyPanel();
  if (!response.ok) throw new ApiError(response.status, `${response.status}: ${await errorMessage(response)}`);
  return response;
}

function showKeyPanel() {
  const rejected = localStorage.getItem(KEY_STORAGE) !== null;
  $('key-panel').querySelector('label').textContent = rejected
    ? 'The saved API key was rejected; enter another'
    : 'This server wants an API key';
  $('key-panel').hidden = false;
}

// Orleans' dashboard (/orleans) is a page of its own: it gets the key as a cookie scoped to its path.
function shareKeyWithOrleansDashboard(key) {
  document.cookie = key
    ? `moe-api-key=${encodeURIComponent(key)}; path=/orleans; SameSite=Strict`
    : 'moe-api-key=; path=/orleans; SameSite=Strict; max-age=0';
}

function saveKey(event) {
  event.preventDefault();
  localStorage.setItem(KEY_STORAGE, $('api-key').value.trim());
  shareKeyWithOrleansDashboard(localStorage.getItem(KEY_STORAGE));
  $('api-key').value = '';
  $('key-panel').hidden = true;
  loadModels();
}

function forgetKey() {
  localStorage.removeItem(KEY_STORAGE);
  shareKeyWithOrleansDashboard(null);
  showKeyPanel();
}

// ---------- Mesh polling ----------

async function fetchMesh() {
  const response = await api('/api/mesh', { signal: AbortSignal.timeout(MESH_TIMEOUT_MS) });
  return response.json();
}

function setMeshStatus(status) {
  const pill = document.querySelector('[data-testid="mesh-status"]');
  setIfChanged(pill, 'textContent', status); // a live region: rewriting it would announce it every poll
  pill.dataset.state = status;
  document.body.classList.toggle('stale', status !== 'live');
  $('mesh-updated').textContent = updatedText(status);
}

function updatedText(status) {
  if (!state.lastMesh) return '';
  if (status === 'live') return `updated ${formatTime(state.lastMesh.time)}`;
  return `last data ${Math.round((Date.now() - state.lastUpdate) / 1000)} s ago`;
}

async function poll() {
  const mesh = await fetchMesh().catch(error => {
    setMeshStatus(error.status === 401 ? 'unauthorized' : 'disconnected');
    return null;
  });
  if (!mesh) return;
  state.lastMesh = mesh;
  state.lastUpdate = Date.now();
  render(mesh);
  setMeshStatus('live');
  if ($('pg-model').options.length === 0) loadModels();
}

function pollForever() {
  poll().finally(() => setTimeout(pollForever, POLL_MS));
}

function render(mesh) {
  renderSilos(mesh.silos ?? []);
  renderModels(mesh.models ?? [], mesh.silos ?? []);
  renderEvents(mesh.events ?? []);
}

// ---------- Silos ----------

function trackGoneSilos(silos, now) {
  const current = new Map(silos.map(silo => [silo.name, silo]));
  for (const [name, silo] of state.previousSilos) {
    if (!current.has(name) && !state.gone.has(name)) state.gone.set(name, { silo, since: now });
  }
  for (const [name, { since }] of state.gone) {
    if (current.has(name) || now - since > GONE_MS) state.gone.delete(name);
  }
  state.previousSilos = current;
}

function renderSilos(silos) {
  trackGoneSilos(silos, Date.now());
  const cards = [
    ...silos.map(silo => ({ silo, gone: false })),
    ...[...state.gone.values()].map(({ silo }) => ({ silo, gone: true })),
  ].sort((a, b) => byName(a.silo.name, b.silo.name)).map(({ silo, gone }) => siloCard(silo, gone));
  $('silos').replaceChildren(...cards);
  if (cards.length === 0) $('silos').append(el('p', { class: 'empty', text: 'No silos in the mesh' }));
  const goneText = state.gone.size ? ` · ${state.gone.size} gone` : '';
  $('silo-count').textContent = `${silos.length} live${goneText}`;
}

function siloCard(silo, gone) {
  const card = el('article', {
    class: gone ? 'silo-card gone' : 'silo-card',
    'data-testid': gone ? 'silo-card-gone' : 'silo-card',
    'data-silo': silo.name,
    'aria-label': `Silo ${silo.name}${gone ? ' (gone)' : ''}`,
  },
  el('header', { class: 'silo-head' },
    el('span', { class: 'swatch', 'aria-hidden': 'true' }),
    el('h3', { text: silo.name }),
    el('span', { class: silo.gpu ? 'badge gpu' : 'badge', text: silo.gpu ? 'GPU' : 'CPU' }),
    gone && el('span', { class: 'badge gone-badge', text: 'gone' })),
  el('div', { class: 'address', title: silo.address ?? '', text: silo.address ?? '' }),
  silo.device && el('div', { class: 'device', title: silo.device, 'data-testid': 'silo-device',
    text: `${silo.device.split(':')[0]} · ${formatBytes(silo.device_memory_used)} / ${formatBytes(silo.device_memory)} device memory` }),
  memoryBar(silo.expert_bytes, silo.expert_budget, silo.memory_note),
  el('dl', { class: 'stats' }, ...siloStats(silo).map(stat)),
  siloModels(silo));
  card.style.setProperty('--silo', css(siloColour(silo.name)));
  return card;
}

function siloStats(silo) {
  return [
    ['Experts', formatInt(silo.experts)],
    ['Activations', formatInt(silo.activations)],
    ['Queued sequences', formatInt(silo.queued_sequences), silo.queued_sequences > 0 && 'busy'],
    ['Tokens generated', formatInt(silo.tokens_generated)],
    ['Dispatch p50 / p99', `${formatFixed(silo.dispatch_us_p50, 0)} / ${formatFixed(silo.dispatch_us_p99, 0)} µs`],
    ['TTFT / inter-token p50', `${formatMs(silo.ttft_ms_p50)} / ${formatMs(silo.itl_ms_p50)} ms`],
    ['Retried expert calls', formatInt(silo.expert_call_failures), silo.expert_call_failures > 0 && 'warn'],
    ['Skipped experts', formatInt(silo.skipped_experts), silo.skipped_experts > 0 && 'bad'],
  ];
}

function stat([label, value, tone]) {
  return el('div', { class: tone ? `stat ${tone}` : 'stat' }, el('dt', { text: label }), el('dd', { text: value }));
}

function memoryBar(used, budget, note) {
  const percent = budget > 0 ? Math.min(100, (100 * used) / budget) : 0;
  const fill = el('span');
  fill.style.width = `${percent}%`;
  const bar = el('div', {
    class: percent > 85 ? 'bar high' : 'bar',
    role: 'progressbar',
    'aria-label': 'Expert memory used',
    'aria-valuemin': '0',
    'aria-valuemax': '100',
    'aria-valuenow': percent.toFixed(0),
  }, fill);
  const budgetText = budget > 0 ? formatBytes(budget) : 'no budget';
  return el('div', { class: 'memory' },
    el('div', { class: 'memory-label' },
      el('span', { text: 'Expert memory' }),
      el('span', { text: `${formatBytes(used ?? 0)} / ${budgetText}` })),
    bar,
    note && el('p', { class: 'memory-note', 'data-testid': 'memory-note', text: note }));
}

function siloModels(silo) {
  const serving = (silo.models ?? []).map(name => el('li', { class: 'chip', text: name }));
  const refused = Object.entries(silo.refused ?? {}).map(([name, reason]) =>
    el('li', { class: 'refusal' }, el('strong', { text: `refuses ${name}` }), el('span', { text: reason })));
  return el('ul', { class: 'silo-models', 'aria-label': 'Models' }, ...serving, ...refused);
}

// ---------- Experts heatmap ----------

function renderModels(models, silos) {
  const container = $('models');
  const existing = new Map([...container.querySelectorAll(':scope > .model')].map(block => [block.dataset.model, block]));
  const blocks = models.map(model => {
    const block = existing.get(model.name) ?? modelBlock(model.name);
    updateModelBlock(block, model, silos);
    return block;
  });
  setChildren(container, blocks.length ? blocks : [el('p', { class: 'empty', text: 'No models loaded' })]);
}

function modelBlock(name) {
  const meta = el('p', { class: 'model-meta' });
  const legend = el('div', { class: 'legend' });
  const grid = el('div', { class: 'heatmap', role: 'group', 'aria-label': `Experts of ${name}` });
  const detail = el('p', { class: 'cell-detail', 'aria-live': 'polite', text: 'Hover or focus a cell for details' });
  const showDetail = event => {
    const cell = event.target.closest('.cell');
    if (cell) detail.textContent = cell.title;
  };
  grid.addEventListener('mouseover', showDetail);
  grid.addEventListener('focusin', showDetail);
  grid.addEventListener('keydown', event => moveFocus(event, grid));
  const block = el('article', { class: 'model', 'data-model': name },
    el('header', { class: 'model-head' }, el('h3', { text: name }), meta),
    legend,
    el('div', { class: 'heatmap-scroll' }, grid),
    detail);
  heatmaps.set(block, { meta, legend, grid, shape: '', cells: new Map() });
  return block;
}

function cellInfos(model) {
  const placed = new Map((model.placement ?? []).map(entry => [`${entry.layer}/${entry.expert}`, entry.replicas ?? []]));
  return (model.moe_layers ?? []).flatMap(layer => Array.from({ length: model.experts ?? 0 }, (_, expert) => {
    const replicas = placed.get(`${layer}/${expert}`) ?? [];
    return {
      layer,
      expert,
      replicas,
      silos: [...new Set(replicas.map(replica => replica.silo))],
      tokens: replicas.reduce((sum, replica) => sum + (replica.tokens ?? 0), 0),
    };
  }));
}

function updateModelBlock(block, model, silos) {
  const view = heatmaps.get(block);
  const infos = cellInfos(model);
  const layers = model.moe_layers ?? [];
  const shape = `${layers.join(',')}|${model.experts}`;
  if (view.shape !== shape) buildGrid(view, model.name, layers, model.experts ?? 0, shape);
  const maxTokens = Math.max(0, ...infos.map(info => info.tokens));
  for (const info of infos) updateCell(view.cells.get(`${info.layer}/${info.expert}`), model.name, info, Math.max(1, maxTokens));
  const placedCount = infos.filter(info => info.silos.length).length;
  const replicated = infos.filter(info => info.replicas.length > 1).length;
  view.meta.textContent = [
    model.architecture,
    `${layers.length} MoE layers × ${model.experts} experts`,
    `top-${model.top_k}`,
    `plan v${model.plan_version}`,
    `${placedCount}/${infos.length} placed`,
    `${replicated} replicated`,
  ].join(' · ');
  updateLegend(view.legend, maxTokens, silos);
}

function buildGrid(view, modelName, layers, experts, shape) {
  view.shape = shape;
  view.cells.clear();
  const tiny = experts > TINY_EXPERTS;
  view.grid.style.setProperty('--experts', experts);
  view.grid.classList.toggle('dense', experts > DENSE_EXPERTS && !tiny);
  view.grid.classList.toggle('tiny', tiny);
  const columnName = expert => (tiny && expert % 8 ? '' : `E${expert}`);
  const header = [el('span', { class: 'corner', text: 'layer' }),
    ...Array.from({ length: experts }, (_, expert) => el('span', { class: 'col-head', text: columnName(expert) }))];
  const rows = layers.flatMap(layer => [
    el('span', { class: 'row-head', text: `L${layer}` }),
    ...Array.from({ length: experts }, (_, expert) => {
      const cell = el('div', {
        class: 'cell',
        tabindex: view.cells.size === 0 ? '0' : '-1',
        'data-testid': 'expert-cell',
        'data-layer': String(layer),
        'data-expert': String(expert),
      }, el('span', { class: 'cell-label' }), el('span', { class: 'cell-replicas' }));
      view.cells.set(`${layer}/${expert}`, cell);
      return cell;
    }),
  ]);
  view.grid.setAttribute('aria-label',
    `Experts of ${modelName}: ${layers.length} layers by ${experts} experts; arrow keys move between cells`);
  view.grid.replaceChildren(...header, ...rows);
}

const ARROW_STEPS = { ArrowLeft: [0, -1], ArrowRight: [0, 1], ArrowUp: [-1, 0], ArrowDown: [1, 0] };

// One tab stop per heatmap; arrow keys move the focus between cells.
function moveFocus(event, grid) {
  const step = ARROW_STEPS[event.key];
  const cell = event.target.closest('.cell');
  if (!step || !cell) return;
  const cells = [...grid.querySelectorAll('.cell')];
  const experts = Number(grid.style.getPropertyValue('--experts'));
  const index = cells.indexOf(cell);
  const row = Math.floor(index / experts) + step[0];
  const column = (index % experts) + step[1];
  const next = column >= 0 && column < experts ? cells[row * experts + column] : undefined;
  if (!next) return;
  event.preventDefault();
  cell.tabIndex = -1;
  next.tabIndex = 0;
  next.focus();
}

// Writes only what changed: thousands of cells are refreshed every poll.
function setIfChanged(target, property, value) {
  if (target[property] !== value) target[property] = value;
}

function updateCell(cell, modelName, info, maxTokens) {
  const [label, replicas] = cell.children;
  const unplaced = info.silos.length === 0;
  const silos = info.silos.join('+');
  setIfChanged(cell.dataset, 'silos', silos);
  setIfChanged(cell.dataset, 'tokens', String(info.tokens));
  cell.classList.toggle('unplaced', unplaced);
  setIfChanged(label, 'textContent', unplaced ? '–' : silos);
  setIfChanged(replicas, 'textContent', info.replicas.length > 1 ? `×${info.replicas.length}` : '');
  const details = [
    `${modelName} · layer ${info.layer} · expert ${info.expert}`,
    ...(unplaced ? ['not placed (no live activation)'] : info.replicas.map(r => `${r.silo}: ${formatInt(r.tokens)} tokens`)),
    ...(info.replicas.length > 1 ? [`total ${formatInt(info.tokens)} tokens over ${info.replicas.length} replicas`] : []),
  ];
  setIfChanged(cell, 'title', details.join('\n'));
  setIfChanged(cell, 'ariaLabel', details.join('; '));
  paintCell(cell, info, maxTokens);
}

function paintCell(cell, info, maxTokens) {
  let background = '';
  let colour = '';
  if (info.silos.length) {
    const colours = state.colourBy === 'silo' ? info.silos.map(siloColour) : [loadColour(info.tokens / maxTokens)];
    background = colours.length === 1 ? css(colours[0]) : stripes(colours);
    colour = isLight(colours[0]) ? '#111' : '#fff';
  }
  const paint = `${background}|${colour}`;
  if (paints.get(cell) === paint) return;
  paints.set(cell, paint);
  cell.style.background = background;
  cell.style.color = colour;
}

function stripes(colours) {
  const step = 100 / colours.length;
  const stops = colours.map((colour, i) => `${css(colour)} ${i * step}% ${(i + 1) * step}%`);
  return `linear-gradient(135deg, ${stops.join(', ')})`;
}

function updateLegend(legend, maxTokens, silos) {
  if (state.colourBy === 'silo') {
    const names = silos.map(silo => silo.name).sort(byName);
    legend.replaceChildren(...names.map(name => {
      const swatch = el('span', { class: 'swatch', 'aria-hidden': 'true' });
      swatch.style.setProperty('--silo', css(siloColour(name)));
      return el('span', { class: 'legend-silo' }, swatch, name);
    }), el('span', { class: 'legend-note', text: 'stripes: replicas on several silos' }));
    return;
  }
  legend.replaceChildren(
    el('span', { class: 'legend-note', text: maxTokens ? 'tokens per expert, summed over replicas' : 'no tokens routed yet' }),
    el('span', { class: 'legend-scale' },
      el('span', { text: '0' }),
      el('span', { class: 'legend-gradient', 'aria-hidden': 'true' }),
      el('span', { text: formatInt(maxTokens) })),
    el('span', { class: 'legend-unplaced' }, el('span', { class: 'swatch unplaced-swatch', 'aria-hidden': 'true' }), 'unplaced'));
}

function setColourBy(mode) {
  state.colourBy = mode;
  if (state.lastMesh) renderModels(state.lastMesh.models ?? [], state.lastMesh.silos ?? []);
}

// ---------- Events ----------

// Kinds of the balancer's event lines ("silo … left the mesh", "expert … moved to …", "replica … retired", …).
const EVENT_KINDS = [
  ['failover', /left the mesh|died|failover|reactivat/i],
  ['join', /joined/i],
  ['replication', /replica/i],
  ['move', /\bmoved?\b/i],
  ['placement', /activated|placed|plan v/i],
];

function eventKind(description) {
  return EVENT_KINDS.find(([, pattern]) => pattern.test(description))?.[0] ?? 'info';
}

function renderEvents(events) {
  const newest = [...events].sort((a, b) => Date.parse(b.time) - Date.parse(a.time)).slice(0, MAX_EVENTS);
  const rows = newest.map(event => {
    const kind = eventKind(event.description ?? '');
    const silo = el('span', { class: 'event-silo' }, el('span', { class: 'swatch', 'aria-hidden': 'true' }), event.silo ?? '');
    silo.style.setProperty('--silo', css(siloColour(event.silo ?? '')));
    return el('li', { class: `event ${kind}`, 'data-testid': 'event-row' },
      el('time', { datetime: event.time, title: event.time, text: formatTime(event.time) }),
      el('span', { class: 'event-kind', text: kind }),
      silo,
      el('span', { class: 'event-text', text: event.description ?? '' }));
  });
  $('events').replaceChildren(...rows);
  if (rows.length === 0) $('events').append(el('li', { class: 'empty', text: 'No events yet' }));
  $('event-count').textContent = events.length ? String(events.length) : '';
}

// ---------- Playground ----------

async function loadModels() {
  // A failure here (401 shows the key panel, or the server is down) is retried by the next poll.
  const response = await api('/v1/models').catch(() => null);
  if (!response) return;
  const { data } = await response.json();
  const select = $('pg-model');
  const chosen = select.value;
  select.replaceChildren(...data.map(model => el('option', { value: model.id, text: model.id })));
  if (data.some(model => model.id === chosen)) select.value = chosen;
}

function setPlaygroundStatus(text, tone) {
  const status = $('pg-status');
  status.textContent = text;
  status.dataset.tone = tone;
}

function setStreaming(streaming) {
  $('pg-send').disabled = streaming;
  $('pg-stop').disabled = !streaming;
}

async function* serverSentEvents(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) throw new Error('the stream ended before [DONE]');
      buffer += value;
      let boundary;
      while ((boundary = /\r\n\r\n|\n\n|\r\r/.exec(buffer))) {
        const block = buffer.slice(0, boundary.index);
        buffer = buffer.slice(boundary.index + boundary[0].length);
        const data = block.split(/\r\n|\n|\r/)
          .filter(line => line.startsWith('data:'))
          .map(line => line.slice(5).replace(/^ /, ''))
          .join('\n');
        if (data === '[DONE]') return;
        if (data) yield JSON.parse(data);
      }
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

function chatRequest() {
  return {
    model: $('pg-model').value,
    messages: [{ role: 'user', content: $('pg-prompt').value }],
    max_tokens: Number($('pg-max-tokens').value),
    temperature: Number($('pg-temperature').value),
    stream: true,
  };
}

function streamStats({ started, firstToken, pieces, finish }) {
  const ended = performance.now();
  const decodeSeconds = (ended - firstToken) / 1000;
  const rate = pieces > 1 && decodeSeconds > 0 ? (pieces - 1) / decodeSeconds : pieces / ((ended - started) / 1000);
  return [
    `${pieces} tokens`,
    `${formatFixed(rate, 1)} tok/s`,
    `first token ${formatFixed(firstToken - started, 0)} ms`,
    finish === 'length' ? 'stopped at max tokens' : null,
  ].filter(Boolean).join(' · ');
}

async function send(event) {
  event.preventDefault();
  const output = $('pg-output');
  const run = { controller: new AbortController(), started: performance.now(), firstToken: 0, pieces: 0, finish: null };
  state.playground = run;
  output.textContent = '';
  $('pg-stats').textContent = '';
  setStreaming(true);
  setPlaygroundStatus('waiting for first token…', 'busy');
  try {
    const response = await api('/v1/chat/completions', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'text/event-stream' },
      body: JSON.stringify(chatRequest()),
      signal: run.controller.signal,
    });
    for await (const chunk of serverSentEvents(response.body)) {
      if (chunk.error) throw new Error(chunk.error.message ?? 'error in stream');
      const choice = chunk.choices?.[0];
      const text = choice?.delta?.content;
      if (text) {
        if (!run.firstToken) {
          run.firstToken = performance.now();
          setPlaygroundStatus('streaming…', 'busy');
        }
        run.pieces++;
        output.append(text);
        output.scrollTop = output.scrollHeight;
      }
      run.finish = choice?.finish_reason ?? run.finish;
    }
    if (run.pieces) $('pg-stats').textContent = streamStats(run);
    setPlaygroundStatus('done', 'ok');
  } catch (error) {
    if (error.name === 'AbortError') setPlaygroundStatus('stopped', 'idle');
    else setPlaygroundStatus(`error: ${error.message}`, 'bad');
  } finally {
    setStreaming(false);
    state.playground = null;
  }
}

function stop() {
  state.playground?.controller.abort();
}

// ---------- Start ----------

function start() {
  $('key-panel').addEventListener('submit', saveKey);
  $('api-key-clear').addEventListener('click', forgetKey);
  $('playground-form').addEventListener('submit', send);
  $('pg-stop').addEventListener('click', stop);
  for (const radio of document.querySelectorAll('input[name="colour-by"]')) {
    radio.addEventListener('change', () => setColourBy(radio.value));
  }
  loadModels();
  pollForever();
}

start();
