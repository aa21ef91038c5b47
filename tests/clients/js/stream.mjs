// The notebook's `openai` npm streaming snippet, unchanged but for base URL, key and model,
// which come from the environment so the same file runs against any endpoint.
import OpenAI from "openai";

const openai = new OpenAI({
  baseURL: process.env.OPENCITE_CLIENT_BASE_URL + "/", // the endpoint's base URL, ending in /v1
  apiKey: process.env.OPENCITE_CLIENT_API_KEY,
});

async function main() {
  const stream = await openai.chat.completions.create({
    model: process.env.OPENCITE_CLIENT_MODEL,
    messages: [
      { role: "system", content: "You are a helpful assistant." },
      { role: "user", content: "Why is open-source software important?" },
    ],
    stream: true,
    max_tokens: 500,
  });
  for await (const chunk of stream) {
    process.stdout.write(chunk.choices[0]?.delta?.content || "");
  }
}

main();
