// Parses each Mermaid file named on the command line with Mermaid's own parser (the library GitHub renders with),
// in Node with jsdom standing in for the browser's document. Prints "ok FILE TYPE" or "FAIL FILE ERROR" per file;
// exits 1 when any failed. Used by tests/test_diagram.py.
import { readFileSync } from "node:fs";
import { JSDOM } from "jsdom";

const dom = new JSDOM("<!DOCTYPE html><body></body>");
globalThis.window = dom.window;
globalThis.document = dom.window.document;
const { default: mermaid } = await import("mermaid");
mermaid.initialize({ startOnLoad: false });
let failed = 0;
for (const file of process.argv.slice(2)) {
  try {
    const result = await mermaid.parse(readFileSync(file, "utf8"));
    console.log(`ok ${file} ${result.diagramType}`);
  } catch (error) {
    failed += 1;
    console.log(`FAIL ${file} ${String(error).split("\n").join(" ")}`);
  }
}
process.exit(failed ? 1 : 0);
