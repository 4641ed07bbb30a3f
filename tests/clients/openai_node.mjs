// The official `openai` npm package against `psf demo`, unchanged but for the base URL and
// the key: Chat Completions streamed (the stock `choices[0]` loop), the Responses API
// plain, streamed and with a function call and its output, and embeddings.
//
// Usage: node tests/clients/openai_node.mjs URL KEY   (tests/clients/package_examples.sh
// starts psf demo and passes them)
import OpenAI from "openai";

const [url, key] = process.argv.slice(2);
const client = new OpenAI({ baseURL: url, apiKey: key, maxRetries: 0, timeout: 30_000 });

function check(name, ok, detail) {
  if (!ok) {
    console.error(`FAILED ${name}: ${JSON.stringify(detail)}`);
    process.exit(1);
  }
  console.log(`ok  ${name}`);
}

const long =
  "Where is my order 5521 today? It left the warehouse on Monday, the tracking page has not changed since, " +
  "and I would like to know whether it will arrive before the weekend.";

let text = "";
for await (const chunk of await client.chat.completions.create({
  model: "assistant",
  messages: [{ role: "user", content: long }],
  stream: true,
})) {
  text += chunk.choices[0].delta.content ?? "";
}
check("a chat stream read with choices[0] is whole", text.includes(long), text);

const resp = await client.responses.create({ model: "assistant", input: "When does my parcel arrive?" });
check("responses.create answers", resp.output_text.includes("When does my parcel arrive?"), resp);

const kinds = [];
let streamed = "";
for await (const event of await client.responses.create({ model: "assistant", input: long, stream: true })) {
  kinds.push(event.type);
  if (event.type === "response.output_text.delta") streamed += event.delta;
}
check(
  "a streamed response runs from response.created to response.completed",
  kinds[0] === "response.created" && kinds.at(-1) === "response.completed",
  kinds,
);
check("a streamed response's text is whole", streamed.includes(long), streamed);

const tools = [
  {
    type: "function",
    name: "get_weather",
    parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
  },
];
const called = await client.responses.create({ model: "assistant", input: "Weather in Oslo?", tools });
const call = called.output.find((o) => o.type === "function_call");
check("a response carries the model's function call", call?.name === "get_weather", called.output);
const follow = await client.responses.create({
  model: "assistant",
  tools,
  input: [
    { role: "user", content: "Weather in Oslo?" },
    { type: "function_call", call_id: call.call_id, name: call.name, arguments: call.arguments },
    { type: "function_call_output", call_id: call.call_id, output: "4 degrees" },
  ],
});
check("the function's output reaches the model", follow.output_text.includes("4 degrees"), follow.output_text);

const vectors = await client.embeddings.create({ model: "embeddings", input: ["Returns take 14 days", "Hello"] });
check(
  "embeddings.create returns a vector of floats per input",
  vectors.data.length === 2 && vectors.data[0].embedding.every((x) => typeof x === "number"),
  vectors,
);
