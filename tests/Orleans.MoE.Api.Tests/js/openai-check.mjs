// The official OpenAI client against the front end: node openai-check.mjs <baseUrl> <model> [apiKey]
// Prints one JSON object with what each call returned (or the error it raised); exits 0 unless the script itself broke.
import OpenAI from 'openai';

const [baseUrl, model, apiKey] = process.argv.slice(2);
const client = new OpenAI({ baseURL: `${baseUrl}/v1`, apiKey: apiKey ?? 'no-key-needed', maxRetries: 0, timeout: 60_000 });
const prompt = 'def fibonacci(n):';
const messages = [{ role: 'user', content: prompt }];

/** Runs a call and records its result, or the error as the client raised it. */
async function attempt(call) {
  try {
    return { ok: await call() };
  } catch (e) {
    return { error: { name: e.constructor.name, status: e.status ?? null, code: e.code ?? null, type: e.type ?? null, param: e.param ?? null, message: e.message } };
  }
}

/** Reads a stream to the end: the text, how many pieces it came in, the finish reason and the usage. */
async function collect(stream, piece) {
  let text = '';
  let pieces = 0;
  let finish = null;
  let usage = null;
  for await (const chunk of stream) {
    const choice = chunk.choices[0];
    const delta = choice ? piece(choice) : '';
    if (delta) {
      text += delta;
      pieces++;
    }
    finish = choice?.finish_reason ?? finish;
    usage = chunk.usage ?? usage;
  }
  return { text, pieces, finish, usage };
}

const result = {
  models: await attempt(async () => {
    const ids = [];
    for await (const m of client.models.list()) ids.push(m.id);
    return ids;
  }),
  completion: await attempt(async () => {
    const r = await client.completions.create({ model, prompt, max_tokens: 16, temperature: 0 });
    return { text: r.choices[0].text, finish: r.choices[0].finish_reason, usage: r.usage };
  }),
  completionStream: await attempt(async () =>
    collect(await client.completions.create({ model, prompt, max_tokens: 16, temperature: 0, stream: true }), c => c.text)),
  chat: await attempt(async () => {
    const r = await client.chat.completions.create({ model, messages, max_tokens: 16, temperature: 0 });
    return { text: r.choices[0].message.content, role: r.choices[0].message.role, finish: r.choices[0].finish_reason, usage: r.usage };
  }),
  chatStream: await attempt(async () =>
    collect(await client.chat.completions.create({ model, messages, max_tokens: 16, temperature: 0, stream: true, stream_options: { include_usage: true } }), c => c.delta?.content)),
  unknownModel: await attempt(() => client.chat.completions.create({ model: 'no-such-model', messages })),
  badTemperature: await attempt(() => client.chat.completions.create({ model, messages, temperature: 7 })),
  pastContext: await attempt(() => client.chat.completions.create({ model, messages, max_tokens: 1020, stream: true })),
  // Leaving a stream after a few pieces closes the connection; the server cancels that generation and goes on.
  abandoned: await attempt(async () => {
    let pieces = 0;
    for await (const chunk of await client.chat.completions.create({ model, messages, max_tokens: 900, temperature: 0, stream: true })) {
      if (chunk.choices[0]?.delta?.content && ++pieces === 3) break;
    }
    return pieces;
  }),
  afterAbandoned: await attempt(async () => (await client.completions.create({ model, prompt, max_tokens: 4, temperature: 0 })).usage.completion_tokens),
  wrongKey: await attempt(() => new OpenAI({ baseURL: `${baseUrl}/v1`, apiKey: `${apiKey ?? ''}-wrong`, maxRetries: 0 }).models.list()),
};
console.log(JSON.stringify(result));
